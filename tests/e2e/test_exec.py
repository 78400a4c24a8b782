"""`gptoss-agent exec` and `fix` as a subprocess on a real repository, driven by the replay backend."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from pathlib import Path

import pytest

from tests.fixtures.repos import FIX_PATCH, call, final, git, make_calc_repo, write_replay

HAPPY = [
    call("repo_browser.open_file", {"path": "calc.py"}, analysis="The add test fails; look at calc.py."),
    call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="add subtracts. Fix it."),
    call("functions.run_tests", {}),
    call("functions.git_commit", {"message": "Fix add() to add"}),
    final("Fixed `add` in calc.py; the suite passes and the fix is committed."),
]


def agent(*args, cwd, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args, "--cwd", str(cwd)], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def readme_event_types() -> set[str]:
    """The types the README's "JSONL events" section documents (one `- `type`` item each)."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("### JSONL events", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^- `([a-z_]+)`", section, re.M))


def test_the_readme_documents_exactly_the_types_that_can_be_printed():
    from gptoss_agent.agent.frontends.headless import BATCH_JSONL_TYPES, JSONL_TYPES

    assert readme_event_types() == JSONL_TYPES | BATCH_JSONL_TYPES


def test_the_readme_documents_exactly_the_run_statuses():
    from gptoss_agent.agent.events import RUN_STATUSES

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = re.search(r"^- `run_finished`: `status` \(`([^`]+)`\)", text, re.M).group(1)
    assert documented.split(" | ") == list(RUN_STATUSES)


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


def test_exec_fixes_the_bug_runs_the_tests_and_commits(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", HAPPY)
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "Fix the failing test", cwd=repo)
    assert done.returncode == 0, done.stderr
    stream = events(done.stdout)
    kinds = [e["type"] for e in stream]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert set(kinds) <= readme_event_types()
    assert stream[-1]["status"] == "completed" and stream[-1]["steps"] == 5
    assert [e["name"] for e in stream if e["type"] == "tool_call"] == [
        "repo_browser.open_file", "repo_browser.apply_patch", "functions.run_tests", "functions.git_commit"]
    tests = next(e for e in stream if e["type"] == "tests")
    assert tests["failed"] == 0 and tests["passed"] == 2
    commit = next(e for e in stream if e["type"] == "commit")
    assert git(repo, "log", "-1", "--format=%s").strip() == "Fix add() to add"
    assert git(repo, "rev-parse", "HEAD").strip() == commit["sha"]
    assert len(git(repo, "log", "--oneline").splitlines()) == 2
    assert subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo,
                          capture_output=True).returncode == 0
    assert stream[-1]["cached_tokens"] > 0  # each step reused the previous prompt


def test_the_model_starts_with_the_repo_map_and_project_instructions(repo, tmp_path, codec):
    (repo / "AGENTS.md").write_text("Always run the tests with -q.\n")
    git(repo, "add", "AGENTS.md")
    git(repo, "commit", "-qm", "agents")
    state = tmp_path / "state"
    replay = write_replay(tmp_path / "replay.json", [final("ok")])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "Look at calc.py", cwd=repo,
                 env={**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state)})
    assert done.returncode == 0, done.stderr
    log = next((state / "sessions").glob("*.jsonl")).read_text().splitlines()
    developer = next(json.loads(l) for l in log if '"segment": "developer"' in l)
    text = codec.decode(developer["tokens"])
    assert "Always run the tests with -q." in text
    assert "Repository map" in text and "calc.py:\n  1: def add(a, b):" in text


def test_bad_model_output_gets_a_precise_error_and_the_run_recovers(repo, tmp_path):
    bad_then_good = [
        "<|channel|>commentary to=repo_browser.open_file <|constrain|>json<|message|>{\"path\": \"calc.py\"<|call|>",
        call("functions.frobnicate", {"x": 1}),
        call("repo_browser.apply_patch", {"patch": FIX_PATCH.replace("a - b", "a / b")}),
        call("repo_browser.open_file", {"path": "calc.py"}, channel="analysis"),
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
        final("Done."),
    ]
    replay = write_replay(tmp_path / "replay.json", bad_then_good)
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "Fix add", cwd=repo)
    assert done.returncode == 0, done.stderr
    results = [e for e in events(done.stdout) if e["type"] == "tool_result"]
    assert "not valid JSON" in results[0]["output"]
    assert "no tool named 'functions.frobnicate'" in results[1]["output"]
    assert "context not found" in results[2]["output"] and "return a - b" in results[2]["output"]
    assert results[3]["ok"] and "def add" in results[3]["output"]  # the call on the analysis channel ran
    assert results[4]["ok"] and "a + b" in (repo / "calc.py").read_text()


def test_replay_running_out_is_an_error_exit(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.open_file", {"path": "calc.py"})])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "Fix add", cwd=repo)
    assert done.returncode == 1
    last = events(done.stdout)[-1]
    assert last["status"] == "error" and "no completion left" in last["reason"]


def test_max_steps_stops_the_run(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.search", {"query": f"q{i}"}) for i in range(10)])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "--max-steps", "3", "search", cwd=repo)
    assert done.returncode == 1
    assert events(done.stdout)[-1]["status"] == "max_steps" and events(done.stdout)[-1]["steps"] == 3


def test_the_same_call_three_times_is_warned_then_stopped(repo, tmp_path, codec):
    same = call("repo_browser.open_file", {"path": "calc.py"})
    replay = write_replay(tmp_path / "replay.json", [same] * 6)
    state = tmp_path / "state"
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "loop", cwd=repo,
                 env={**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state)})
    stream = events(done.stdout)
    assert done.returncode == 1 and stream[-1]["status"] == "failed" and "repeated" in stream[-1]["reason"]
    results = [e for e in stream if e["type"] == "tool_result"]
    assert len(results) == 3
    log = [json.loads(l) for l in next((state / "sessions").glob("*.jsonl")).read_text().splitlines()]
    notices = [codec.decode(r["tokens"]) for r in log if r["kind"] == "segment" and r["segment"] != "tool"]
    assert any("one more identical call ends the run" in text for text in notices)  # a notice, not tool output


def test_not_a_git_repo_is_a_usage_error(tmp_path, vocab_dir):
    done = agent("exec", "--backend", "replay:x.json", "task", cwd=tmp_path)
    assert done.returncode == 2 and "not inside a git repository" in done.stderr


def test_fix_on_a_green_suite_exits_0_without_the_model(repo, tmp_path):
    (repo / "calc.py").write_text((repo / "calc.py").read_text().replace("a - b", "a + b"))
    git(repo, "commit", "-qam", "fixed by hand")
    done = agent("fix", "--backend", "replay:/nonexistent.json", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert events(done.stdout)[-1]["reason"] == "tests already pass"


def test_fix_patches_runs_the_suite_and_commits(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", [
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="add subtracts"),
        call("functions.run_tests", {"paths": ["tests/test_calc.py"]}),
        final("add() subtracted instead of adding; it now adds."),
    ])
    done = agent("fix", "--backend", f"replay:{replay}", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr + done.stdout
    assert git(repo, "log", "-1", "--format=%s").startswith("Fix failing tests: add() subtracted")
    assert git(repo, "status", "--porcelain") == ""
    kinds = [e["type"] for e in events(done.stdout)]
    assert set(kinds) <= readme_event_types()
    # tests and commit come before the one run_finished that ends the stream
    assert kinds[-4:] == ["tests", "attempt_finished", "commit", "run_finished"] and kinds.count("run_finished") == 1
    assert events(done.stdout)[-1]["status"] == "completed"


def test_fix_refuses_a_dirty_work_tree(repo, tmp_path):
    (repo / "calc.py").write_text((repo / "calc.py").read_text() + "\n# my edit\n")
    done = agent("fix", "--backend", "replay:/nonexistent.json", cwd=repo)
    assert done.returncode == 2 and "uncommitted changes" in done.stderr
    assert "# my edit" in (repo / "calc.py").read_text()


def test_a_killed_run_can_be_resumed_from_its_session_log(repo, tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state)}
    first = write_replay(tmp_path / "first.json", [
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
        call("container.exec", {"cmd": "sleep 60"}),
    ])
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "exec", "--backend", f"replay:{first}", "--json",
                                "--cwd", str(repo), "Fix add"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    deadline = time.monotonic() + 60
    logs = []
    while time.monotonic() < deadline:
        logs = list((state / "sessions").glob("*.jsonl")) if (state / "sessions").exists() else []
        if logs and '"tool_started"' in logs[0].read_text() and "container.exec" in logs[0].read_text():
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with open(logs[0], "a") as handle:
        handle.write('{"kind": "event", "t": 1, "event": {"ty')  # a torn last line, as after power loss
    second = write_replay(tmp_path / "second.json", [final("The fix is in place.")])
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "resume", "--last", "--backend", f"replay:{second}",
                           "--json", "--cwd", str(repo)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "was interrupted and not re-run" in done.stderr and "torn" in done.stderr
    assert events(done.stdout)[-1]["status"] == "completed"
    listing = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "sessions"], capture_output=True, text=True, env=env,
                             cwd=repo)
    assert "completed" in listing.stdout and "Fix add" in listing.stdout


def test_ctrl_c_mid_generation_cancels_keeps_the_session_and_exits_130(repo, tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state), "GPTOSS_AGENT_REPLAY_TOKEN_DELAY": "0.01"}
    replay = write_replay(tmp_path / "slow.json", [final("counting " * 2000)])
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "exec", "--backend", f"replay:{replay}",
                                "--cwd", str(repo), "count"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = list((state / "sessions").glob("*.jsonl")) if (state / "sessions").exists() else []
        if logs and '"step"' not in logs[0].read_text() and '"segment"' in logs[0].read_text():
            break
        time.sleep(0.05)
    time.sleep(0.5)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert time.monotonic() - started < 5
    assert "cancelling" in err and "cancelled" in out
    log = next((state / "sessions").glob("*.jsonl")).read_text()
    assert '"status": "cancelled"' in log and '"kind": "step"' in log  # the partial step is in the log


def test_fix_stops_when_the_failing_set_does_not_shrink(repo, tmp_path, codec):
    state = tmp_path / "state"
    env = {**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state)}
    replay = write_replay(tmp_path / "replay.json", [final("I looked; it seems fine."), final("Still fine to me."),
                                                     final("unused")])
    done = agent("fix", "--backend", f"replay:{replay}", "--json", cwd=repo, env=env)
    assert done.returncode == 1
    stream = events(done.stdout)
    assert any(e["type"] == "error" and "no progress" in e["message"] for e in stream)
    assert len([e for e in stream if e["type"] == "tests"]) == 3  # before, after attempt 1, after attempt 2
    assert "raised reasoning effort to high" in done.stderr
    assert len(git(repo, "log", "--oneline").splitlines()) == 1  # nothing committed
    # exactly one run_finished, last, with the true outcome; one attempt_finished per attempt
    assert [e["type"] for e in stream].count("run_finished") == 1 and stream[-1]["type"] == "run_finished"
    assert stream[-1]["status"] == "failed" and "no progress" in stream[-1]["reason"] and stream[-1]["steps"] == 2
    attempts = [e for e in stream if e["type"] == "attempt_finished"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "failed"), (2, "failed")]
    listing = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "sessions"], capture_output=True, text=True,
                             env=env, cwd=repo)
    assert " failed " in listing.stdout and "completed" not in listing.stdout
    log = [json.loads(l) for l in next((state / "sessions").glob("*.jsonl")).read_text().splitlines()]
    asks = [codec.decode(r["tokens"]) for r in log if r["kind"] == "segment" and r["segment"] == "user"]
    # the second attempt is asked with the failures that are left
    assert len(asks) == 2 and "<|message|>The test suite still fails:\n1 passed, 1 failed" in asks[1]


def test_readable_transcript_without_json(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", HAPPY)
    done = agent("exec", "--backend", f"replay:{replay}", "Fix the failing test", cwd=repo)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "▶ Fix the failing test" in out and "→ repo_browser.apply_patch" in out
    assert "+    return a + b" in out and "● committed" in out and "■ completed after 5 steps" in out
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal
    assert not out.lstrip().startswith("{")
