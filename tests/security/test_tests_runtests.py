"""run_tests as a hostile model and a hostile repository would use it: options smuggled in as paths,
a read-only session, a test run that spoils its own JUnit report, tracebacks that name host files."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from gptoss_agent.agent.model.completion import ToolCallRequest
from gptoss_agent.agent.approvals import APPROVAL_MODES, Refused, approval_for, policy_approver
from tests.fixtures.repos import git, make_calc_repo
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.junit_report import ReportUnusable, read_junit
from gptoss_agent.tools.sandbox import Sandbox
from gptoss_agent.tools.tests import TestArgumentRefused, check_paths, inside_repository, run_tests


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_calc_repo(tmp_path / "project")
    (root / "README.md").write_text("# the user's readme\n")
    (root / "src").mkdir()
    (root / "src" / "keep.py").write_text("KEEP = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "readme and src")
    return root


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    return ToolContext(workspace=repo, sandbox=Sandbox(repo))


@pytest.fixture
def each_ctx(repo: Path, mechanism: str) -> ToolContext:
    """The same, once under bubblewrap and once under the Landlock fallback (tests/security/conftest.py)."""
    return ToolContext(workspace=repo, sandbox=Sandbox(repo, mode=mechanism))


def run_bounded(function, *args, seconds: float = 90, **kwargs):
    """Call `function` in a thread; a hang fails the test instead of hanging the suite."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", function(*args, **kwargs)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} did not return within {seconds}s"
    return box["result"]


# ---------------------------------------------------------------------- options smuggled in as arguments

@pytest.mark.parametrize("paths", [
    ["--junitxml=README.md"],
    ["--basetemp=src"],
    ["-p", "tests.evil"],
    ["-c", "/dev/null"],
    ["--", "--junitxml=README.md"],
    ["tests/test_calc.py", "--rootdir=/"],
])
def test_options_in_paths_are_refused_and_nothing_is_written(ctx, repo, paths):
    before = {p: p.read_bytes() for p in (repo / "README.md", repo / "src" / "keep.py")}
    result = run_tests.function(ctx, paths=paths)
    assert not result.ok and result.output.startswith("run_tests refused")
    assert "never options" in result.output
    assert {p: p.read_bytes() for p in before} == before
    assert git(repo, "status", "--porcelain") == ""


def test_an_option_smuggled_through_select_is_refused(ctx, repo):
    result = run_tests.function(ctx, select="--junitxml=README.md")
    assert not result.ok and "not an option" in result.output
    assert (repo / "README.md").read_text() == "# the user's readme\n"


def test_a_file_named_like_an_option_is_still_refused(ctx, repo):
    (repo / "--junitxml=README.md").write_text("")
    result = run_tests.function(ctx, paths=["--junitxml=README.md"])
    assert not result.ok and "never options" in result.output
    assert (repo / "README.md").read_text() == "# the user's readme\n"


def test_an_argument_file_cannot_smuggle_options(ctx, repo):
    (repo / "args.txt").write_text("--junitxml=README.md\n")
    (repo / "@args.txt").write_text("")
    result = run_tests.function(ctx, paths=["@args.txt"])
    assert not result.ok and "@argument files" in result.output
    assert (repo / "README.md").read_text() == "# the user's readme\n"


@pytest.mark.parametrize("select", ["@opts.txt", " @opts.txt", "-p tests.evil", "--basetemp=src"])
def test_an_argument_file_or_option_through_select_is_refused(ctx, repo, select):
    (repo / "opts.txt").write_text("--junitxml=README.md\n--basetemp=src\n")
    result = run_tests.function(ctx, select=select)
    assert not result.ok and "name filter" in result.output
    assert (repo / "README.md").read_text() == "# the user's readme\n"
    assert (repo / "src" / "keep.py").read_text() == "KEEP = 1\n"


@pytest.mark.parametrize("runner,base", [("pytest", ["python3", "-m", "pytest"]),
                                         ("unittest", ["python3", "-m", "unittest"]),
                                         ("cargo", ["cargo", "test"])])  # go joins it: `-run=@opts.txt`
def test_no_argument_built_from_model_input_is_an_argument_file(runner, base, tmp_path):
    from gptoss_agent.tools.tests import build_command, check_built_command

    command = build_command(runner, base, ["tests/test_calc.py"], "@opts.txt", tmp_path, configured=False)
    with pytest.raises(TestArgumentRefused):
        check_built_command(command, base)
    check_built_command(build_command(runner, base, ["tests/test_calc.py"], "calc", tmp_path, configured=False),
                        base)


def test_real_test_ids_and_select_still_work(ctx):
    result = run_tests.function(ctx, paths=["tests/test_calc.py::test_mul"])
    assert result.ok and result.data["passed"] == 1 and result.data["failed"] == 0
    selected = run_tests.function(ctx, paths=["tests"], select="mul or nothing")
    assert selected.ok and selected.data["passed"] == 1


def test_paths_outside_the_repository_give_the_same_answer_whether_they_exist_or_not(ctx, repo, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "test_secret.py").write_text("def test_x():\n    pass\n")
    exists = run_tests.function(ctx, paths=["../outside/test_secret.py"])
    missing = run_tests.function(ctx, paths=["../outside/test_nothing.py"])
    absolute = run_tests.function(ctx, paths=[str(tmp_path / "outside" / "test_secret.py")])
    assert not exists.ok and not missing.ok and not absolute.ok
    assert exists.output.replace("secret", "X") == missing.output.replace("nothing", "X")
    assert "no such file or folder inside the repository" in absolute.output


def test_a_symlink_that_leads_out_of_the_repository_is_refused(ctx, repo, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "test_far.py").write_text("def test_far():\n    pass\n")
    os.symlink(tmp_path / "elsewhere", repo / "linked")
    result = run_tests.function(ctx, paths=["linked/test_far.py"])
    assert not result.ok and "inside the repository" in result.output


# ---------------------------------------------------------------------- approval modes

WRITERS = {"repo_browser.apply_patch", "container.exec", "functions.run_tests", "functions.git_commit"}
READERS = {"repo_browser.print_tree", "repo_browser.list_dir", "repo_browser.open_file", "repo_browser.search",
           "functions.update_plan", "functions.find_symbol"}


def test_every_tool_is_classified_and_every_writer_is_gated():
    tools = default_registry().tools
    assert set(tools) == WRITERS | READERS, "a new tool must be classified as a writer or a reader here"
    for name in WRITERS:
        assert tools[name].spec.mutating, f"{name} can write, so approval must gate it"


@pytest.mark.parametrize("mode,expected", [
    ("read-only", {"repo_browser.apply_patch": "refuse", "container.exec": "refuse",
                   "functions.run_tests": "refuse", "functions.git_commit": "refuse"}),
    ("ask", {"repo_browser.apply_patch": "ask", "container.exec": "ask",
             "functions.run_tests": "ask", "functions.git_commit": "ask"}),
    ("auto-edit", {"repo_browser.apply_patch": "allow", "container.exec": "ask",
                   "functions.run_tests": "ask", "functions.git_commit": "ask"}),
    ("full-auto", {"repo_browser.apply_patch": "allow", "container.exec": "allow",
                   "functions.run_tests": "allow", "functions.git_commit": "allow"}),
    ("readonly", {name: "refuse" for name in WRITERS}),  # a typo fails closed
])
def test_each_mode_means_what_it_says(mode, expected):
    tools = default_registry().tools
    assert {name: approval_for(mode, tools[name].spec) for name in WRITERS} == expected
    assert all(approval_for(mode, tools[name].spec) == "allow" for name in READERS)


def test_headless_read_only_refuses_run_tests_before_any_test_code_runs(repo):
    marker = repo / "conftest_ran"
    (repo / "conftest.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    spec = default_registry().tools["functions.run_tests"].spec
    request = ToolCallRequest("functions.run_tests", '{"paths": ["--junitxml=README.md"]}')
    with pytest.raises(Refused, match="read-only"):
        policy_approver("read-only")(request, spec)
    assert all(policy_approver(m) for m in APPROVAL_MODES)
    assert not marker.exists()


def test_a_read_only_session_through_the_loop_writes_nothing(codec, repo):
    from gptoss_agent.agent.model.backends.replay import ReplayBackend
    from gptoss_agent.agent.events import ToolFinished
    from gptoss_agent.agent.loop import Agent
    from tests.fixtures.repos import FIX_PATCH, call, final

    marker = repo / "conftest_ran"
    (repo / "conftest.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    git(repo, "commit", "-qam", "conftest that leaves a mark")
    events = []
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    backend = ReplayBackend([call("functions.run_tests", {"paths": ["--junitxml=README.md"]}),
                             call("functions.run_tests", {}),
                             call("container.exec", {"cmd": "touch pwned"}),
                             call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                             final("done")], codec)
    agent = Agent(backend, codec, default_registry(), ctx, sink=events.append,
                  approver=policy_approver("read-only"))
    agent.start(instructions="x", reasoning="low")
    assert agent.run("try everything").status == "completed"
    results = [e for e in events if isinstance(e, ToolFinished)]
    assert len(results) == 4 and not any(r.ok for r in results)
    assert not marker.exists() and not (repo / "pwned").exists()
    assert git(repo, "status", "--porcelain") == ""


# ---------------------------------------------------------------------- the JUnit report the run controls

SPOIL_REPORT = """
import os
def pytest_unconfigure(config):
    path = getattr(config.option, "xmlpath", None)
    if path and os.path.exists(path):
        os.remove(path)
        {action}
"""


@pytest.mark.parametrize("action,reason", [
    ("os.mkfifo(path)", "not a regular file"),
    ("os.symlink('/dev/zero', path)", "symbolic link"),
    ("os.mkdir(path)", "not a regular file"),
])
def test_a_spoiled_report_never_hangs_or_floods_and_counts_come_from_the_summary(each_ctx, repo, action, reason):
    (repo / "conftest.py").write_text("import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n"
                                      + SPOIL_REPORT.format(action=action))
    result = run_bounded(run_tests.function, each_ctx)
    assert "JUnit report unusable" in result.output and reason in result.output
    assert result.data["passed"] == 1 and result.data["failed"] == 1
    assert result.data["failing"] == ["tests/test_calc.py::test_add"]


def test_a_report_linked_to_a_host_secret_is_not_read(each_ctx, repo, tmp_path):
    secret = tmp_path / "host-secret.xml"
    secret.write_text('<testsuite><testcase name="t"><failure message="SECRET-TOKEN-123">x</failure>'
                      '</testcase></testsuite>')
    (repo / "conftest.py").write_text("import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n"
                                      + SPOIL_REPORT.format(action=f"os.symlink({str(secret)!r}, path)"))
    result = run_bounded(run_tests.function, each_ctx)
    assert "SECRET-TOKEN-123" not in result.output and "symbolic link" in result.output


def write(folder: Path, text: str | bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "junit.xml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_entity_expansion_is_refused(tmp_path):
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
                        for i in range(9))
              + ']><testsuite><testcase name="a"><failure message="&lol8;"/></testcase></testsuite>')
    write(tmp_path / "r", laughs)
    with pytest.raises(ReportUnusable, match="DOCTYPE"):
        read_junit(tmp_path / "r", "junit.xml")


def test_a_hard_link_is_refused(tmp_path):
    original = write(tmp_path / "a", "<testsuite/>")
    (tmp_path / "b").mkdir()
    os.link(original, tmp_path / "b" / "junit.xml")
    with pytest.raises(ReportUnusable, match="hard link"):
        read_junit(tmp_path / "b", "junit.xml")


def test_an_oversized_report_is_read_only_up_to_the_cap(tmp_path):
    case = '<testcase classname="t" name="ok"/>'
    body = "<testsuite>" + case * 200_000 + "</testsuite>"  # about 7 MB
    write(tmp_path / "r", body)
    counts = read_junit(tmp_path / "r", "junit.xml", max_bytes=1 << 20)
    assert counts.truncated and 0 < counts.passed < 200_000


def test_malformed_xml_is_a_clear_error(tmp_path):
    write(tmp_path / "r", "<testsuite><testcase name='a'>")
    with pytest.raises(ReportUnusable, match="well-formed"):
        read_junit(tmp_path / "r", "junit.xml")


# ---------------------------------------------------------------------- the failure locator

def test_locations_never_point_outside_and_do_not_reveal_host_files(ctx, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "probe.py").write_text("x = 1\n")
    os.symlink(outside, repo / "escape")
    trace = f"\\n{outside / 'probe.py'}:7: in probe\\n../outside/probe.py:8: in probe\\nescape/probe.py:9: boom"
    (repo / "tests" / "test_calc.py").write_text(f"def test_add():\n    raise AssertionError('{trace}')\n")
    first = run_tests.function(ctx).data["failures"][0]["location"]
    (outside / "probe.py").unlink()
    second = run_tests.function(ctx).data["failures"][0]["location"]
    assert first == second == "tests/test_calc.py:2"


def test_inside_repository_walks_links_without_leaving(repo, tmp_path):
    os.symlink("tests", repo / "alias")
    os.symlink("loop", repo / "loop")
    os.symlink(str(tmp_path), repo / "out")
    assert inside_repository(repo, "alias/test_calc.py") == "tests/test_calc.py"
    assert inside_repository(repo, str(repo / "calc.py")) == "calc.py"
    assert inside_repository(repo, "loop/x.py") is None
    assert inside_repository(repo, "out/project/calc.py") is None
    assert inside_repository(repo, "tests/../../project/calc.py") is None
    with pytest.raises(TestArgumentRefused):
        check_paths(repo, ["out"])


# ---------------------------------------------------------------------- honest results

def test_a_forged_summary_line_in_test_output_does_not_set_the_counts(repo):
    (repo / "tests" / "test_calc.py").write_text(
        "def test_add():\n    print('999 passed in 0.01s')\n    assert False, '999 passed in 0.01s'\n")
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo),
                      test_command="sh -c 'python3 -m pytest -q -p no:cacheprovider -s; exit $?'")
    result = run_tests.function(ctx)
    assert result.data["runner"] == "custom" and result.data["results"] == "parsed"
    assert result.data["passed"] == 0 and result.data["failed"] == 1 and not result.ok


def test_a_hanging_suite_says_timed_out_and_names_the_test(repo, mechanism):
    (repo / "tests" / "test_calc.py").write_text(
        "import signal, time\n\ndef test_quick():\n    pass\n\ndef test_stuck_forever():\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # deaf to the per-test limit: only the suite's stops it\n"
        "    time.sleep(120)\n")
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo, mode=mechanism), test_timeout_s=5)
    result = run_bounded(run_tests.function, ctx, seconds=60)
    assert not result.ok and result.data["timed_out"] is True
    assert result.data["running"] == "tests/test_calc.py::test_stuck_forever"
    assert "timed out after 5s" in result.output
    assert "Running when time ran out: tests/test_calc.py::test_stuck_forever" in result.output.split(">>", 1)[1]  # in the fence


def test_unrecognised_output_says_unknown_instead_of_a_fake_failure(repo):
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), test_command="sh -c 'echo all good I promise'")
    result = run_tests.function(ctx)
    assert result.data["results"] == "unknown" and result.data["failing"] == []
    assert result.ok  # exit code 0 is the only truth there is
    assert "unknown" in result.output


def test_runner_detection_reads_no_fifo_and_follows_no_link(tmp_path):
    from gptoss_agent.tools.tests import detect_runner

    root = tmp_path / "node-project"
    root.mkdir()
    os.mkfifo(root / "package.json")
    assert run_bounded(detect_runner, root, seconds=10)[0] == "pytest"  # the FIFO was not opened for reading
    os.unlink(root / "package.json")
    os.symlink("/dev/zero", root / "package.json")
    assert run_bounded(detect_runner, root, seconds=10)[0] == "pytest"
    os.unlink(root / "package.json")
    os.symlink("/dev/zero", root / "setup.cfg")
    assert run_bounded(detect_runner, root, None, lambda python: False, seconds=10)[0] == "unittest"


@pytest.mark.parametrize("runner,base", [
    ("pytest", ["python3", "-m", "pytest"]), ("unittest", ["python3", "-m", "unittest"]),
    ("go", ["go", "test", "-json"]), ("cargo", ["cargo", "test"]), ("npm", ["npm", "test", "--silent"]),
    ("custom", ["make", "test"]),
])
def test_model_input_never_lands_where_a_runner_reads_options(runner, base, tmp_path):
    from gptoss_agent.tools.tests import build_command

    command = build_command(runner, base, ["tests/test_calc.py"], "add", tmp_path, configured=False,
                            workspace=tmp_path)
    at = [i for i, arg in enumerate(command) if "tests/test_calc.py" in arg]
    if runner in ("pytest", "npm"):  # after the end-of-options marker
        assert at and command[at[0] - 1] == "--"
    if runner == "cargo":
        assert not at and command[-2:] == ["--", "add"]
    if "add" in command:  # a filter is always an option's value, never an option itself
        assert command[command.index("add") - 1] in ("-k", "--")
    assert command[:len(base)] == base


def test_in_the_tui_read_only_wins_over_an_earlier_always(repo):
    from gptoss_agent.agent.frontends.tui.app import GptossApp

    app = GptossApp(lambda *args, **kwargs: None, approval="ask")
    tools = default_registry().tools
    app._always.update(WRITERS)  # the user said "always" to each writer while in ask mode...
    app.approval = "read-only"   # ...then switched to read-only
    for name in WRITERS:
        with pytest.raises(Refused, match="read-only"):
            app._approve(ToolCallRequest(name, "{}"), tools[name].spec)
    app.approval = "full-auto"
    assert app._approve(ToolCallRequest("container.exec", "{}"), tools["container.exec"].spec) is None
