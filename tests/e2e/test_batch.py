"""`gptoss-agent batch` on a real repository with per-task replay scripts and real git worktrees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.repos import call, final, git, make_calc_repo

ADD_DOC = "*** Begin Patch\n*** Add File: docs/{name}.md\n+# {name}\n*** End Patch"
BREAK = "*** Begin Patch\n*** Update File: calc.py\n-    return a * b\n+    return a ** b\n*** End Patch"

PLAN = """
[defaults]
test_cmd = "python3 -m pytest -q -p no:cacheprovider tests/test_ok.py tests/test_mul.py"
max_steps = 10

[[tasks]]
id = "docs-a"
instruction = "Write docs A"

[[tasks]]
id = "docs-b"
instruction = "Write docs B"

[[tasks]]
id = "break-mul"
instruction = "Make mul faster"
"""


def batch(*args, cwd, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "batch", *args, "--cwd", str(cwd)],
                          capture_output=True, text=True, timeout=timeout, env=env or os.environ)


@pytest.fixture
def repo(tmp_path, vocab_dir):
    root = make_calc_repo(tmp_path / "project")
    (root / "calc.py").write_text((root / "calc.py").read_text().replace("a - b", "a + b"))
    (root / "tests" / "test_ok.py").write_text("def test_ok():\n    assert len('ok') == 2\n")
    (root / "tests" / "test_mul.py").write_text("from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "baseline")
    return root


def scripts(names):
    data = {}
    for name in names:
        if name == "break-mul":
            data[name] = [call("repo_browser.apply_patch", {"patch": BREAK}), final("Made it faster.")]
        else:
            letter = name[-1]
            data[name] = [call("repo_browser.apply_patch", {"patch": ADD_DOC.format(name=letter)}), final("Docs written.")]
    return data


def write(tmp_path, repo, plan=PLAN, tasks=("docs-a", "docs-b", "break-mul")):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(plan)
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(scripts(tasks)))
    return plan_path, replay


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_two_succeed_one_fails_and_the_checkout_is_untouched(repo, tmp_path, jobs):
    plan, replay = write(tmp_path, repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    done = batch(str(plan), "--backend", f"replay:{replay}", "--jobs", jobs, cwd=repo)
    assert done.returncode == 1, done.stderr  # one task failed
    report = json.loads(plan.with_suffix(".report.json").read_text())
    status = {t["task"]: t["status"] for t in report["tasks"]}
    assert status == {"docs-a": "done", "docs-b": "done", "break-mul": "failed"}
    assert git(repo, "rev-parse", "HEAD").strip() == head and git(repo, "status", "--porcelain").strip() == ""
    assert not (repo / "docs").exists()
    by_task = {t["task"]: t for t in report["tasks"]}
    for name in ("docs-a", "docs-b"):
        branch = by_task[name]["branch"]
        assert git(repo, "show", f"{branch}:docs/{name[-1]}.md").strip() == f"# {name[-1]}"
        assert git(repo, "rev-parse", branch).strip() == by_task[name]["commit"]
        assert by_task[name]["files"] == [f"docs/{name[-1]}.md"] and by_task[name]["added"] == 1
    failed = by_task["break-mul"]
    assert "tests fail" in failed["reason"] and "a ** b" in git(repo, "show", f"{failed['branch']}:calc.py")
    assert report["merge"] == f"git merge {by_task['docs-a']['branch']} {by_task['docs-b']['branch']}"
    assert "git merge" in plan.with_suffix(".report.md").read_text()
    manifest = [json.loads(l) for l in plan.with_suffix(".manifest.jsonl").read_text().splitlines()]
    assert sorted(r["task"] for r in manifest) == ["break-mul", "docs-a", "docs-b"]
    assert git(repo, "worktree", "list").count("\n") == 1  # worktrees removed, branches kept


def test_per_file_fans_out_one_task_per_matching_file(repo, tmp_path):
    (repo / "pkg").mkdir()
    for name in ("one.py", "two.py", "three.py"):
        (repo / "pkg" / name).write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pkg")
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "hint"\ninstruction = "Add type hints to {file}"\nfiles = ["pkg/*.py"]\nper_file = true\n')
    done = batch(str(plan), "--backend", "replay:x.json", "--dry-run", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == ["hint-pkg-one-py: Add type hints to pkg/one.py",
                                            "hint-pkg-three-py: Add type hints to pkg/three.py",
                                            "hint-pkg-two-py: Add type hints to pkg/two.py"]


@pytest.mark.parametrize("plan_text, message", [
    ('[[tasks]]\nid = "a"\ninstruction = "x"\ncolour = "red"\n', "unknown key(s) colour"),
    ('[[tasks]]\nid = "a"\ninstruction = "x"\nfiles = ["nothing/*.rs"]\n', "match no file"),
    ('[[tasks]]\nid = "a"\ninstruction = "x"\n[[tasks]]\nid = "a"\ninstruction = "y"\n', "is used twice"),
])
def test_bad_plans_fail_before_any_work(repo, tmp_path, plan_text, message):
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text)
    done = batch(str(plan), "--backend", "replay:x.json", cwd=repo)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert git(repo, "branch").strip() == "* main"


def test_a_dirty_checkout_is_refused(repo, tmp_path):
    plan, replay = write(tmp_path, repo)
    (repo / "calc.py").write_text("# mine\n")
    done = batch(str(plan), "--backend", f"replay:{replay}", cwd=repo)
    assert done.returncode == 2 and "uncommitted changes" in done.stderr
    assert (repo / "calc.py").read_text() == "# mine\n"


def test_an_interrupted_batch_resumes_with_only_the_rest(repo, tmp_path):
    plan, replay = write(tmp_path, repo)
    data = json.loads(replay.read_text())
    data["docs-b"].insert(0, call("container.exec", {"cmd": "sleep 30"}))
    replay.write_text(json.dumps(data))
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "batch", str(plan), "--backend", f"replay:{replay}",
                                "--cwd", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = plan.with_suffix(".manifest.jsonl")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (manifest.exists() and "docs-a" in manifest.read_text()):
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [json.loads(l)["task"] for l in manifest.read_text().splitlines()] == ["docs-a"]
    data["docs-b"].pop(0)
    replay.write_text(json.dumps(data))
    done = batch(str(plan), "--backend", f"replay:{replay}", "--resume", "--json", cwd=repo)
    ran = {json.loads(l)["task"] for l in done.stdout.splitlines() if '"task"' in l}
    assert ran == {"docs-b", "break-mul"}, done.stderr
    from tests.e2e.test_exec import readme_event_types

    printed = [json.loads(l)["type"] for l in done.stdout.splitlines()]
    assert set(printed) <= readme_event_types() and printed[-1] == "batch_finished"
    report = json.loads(plan.with_suffix(".report.json").read_text())
    assert [t["status"] for t in report["tasks"]] == ["done", "done", "failed"]
