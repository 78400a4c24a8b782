"""`fix` and `exec` tell the truth: what was committed, what was not and why, what the tests said, who stopped it.

The real CLI as a subprocess on a real repository, driven by the replay backend.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.repos import FIX_PATCH, call, final, git, make_calc_repo, write_replay

CHECK_OK = "import sys\nfrom calc import add\nsys.exit(0 if add(2, 3) == 5 else 1)\n"


def agent(*args, cwd: Path, timeout: int = 120):
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args, "--cwd", str(cwd)], capture_output=True,
                          text=True, timeout=timeout)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture
def repo(tmp_path, vocab_dir):
    root = make_calc_repo(tmp_path / "project")
    (root / "check.py").write_text(CHECK_OK)
    (root / "README.md").write_text("calc\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "check")
    return root


def test_fix_whose_file_held_the_users_edits_is_not_reported_as_committed(repo, tmp_path):
    with open(repo / "calc.py", "a") as handle:
        handle.write("\n\n# TODO(user): add div\n")
    replay = write_replay(tmp_path / "r.json", [
        call("repo_browser.apply_patch",
             {"patch": FIX_PATCH.replace("*** End Patch", "*** Update File: README.md\n-calc\n+calc: add, mul\n"
                                                          "*** End Patch")}),
        final("Fixed add() to return the sum")])
    head = git(repo, "rev-parse", "HEAD")
    done = agent("fix", "--backend", f"replay:{replay}", "--json", "--allow-dirty", "--test-cmd", "python3 check.py",
                 cwd=repo)
    assert done.returncode == 1, done.stdout + done.stderr
    last = events(done.stdout)[-1]
    assert last["type"] == "run_finished" and last["status"] == "failed"
    assert "not committed" in last["reason"] and "calc.py" in last["reason"]
    assert git(repo, "rev-parse", "HEAD") == head  # no commit that claims a fix it does not hold
    assert "a + b" in (repo / "calc.py").read_text() and "TODO(user)" in (repo / "calc.py").read_text()
    assert (repo / "README.md").read_text() == "calc: add, mul\n"


def test_fix_with_unparsed_test_results_says_so_in_the_commit(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                final("Fixed add")])
    done = agent("fix", "--backend", f"replay:{replay}", "--json", "--test-cmd", "python3 check.py", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    body = git(repo, "log", "-1", "--format=%B")
    assert "Tests: result unknown (exit code 0)" in body and "0 passed" not in body


def test_a_commit_body_keeps_its_lines_and_tabs(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
        call("functions.git_commit", {"message": "Fix add\n\n- handle tabs\n\tindented\x1b[31m\n- more\n\nSee 12."}),
        final("done")])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "task", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    body = git(repo, "log", "-1", "--format=%B")
    assert body.startswith("Fix add\n\n- handle tabs\n\tindented[31m\n- more\n\nSee 12.\n")
    assert "\x1b" not in body


def test_ctrl_c_during_the_check_run_is_a_cancelled_attempt_not_a_failed_fix(repo, tmp_path):
    marker = repo / "checking.marker"
    (repo / "check.py").write_text(
        "import sys, time\nfrom calc import add\nif add(2, 3) != 5:\n    sys.exit(1)\n"
        f"open({str(marker)!r}, 'w').close()\ntime.sleep(60)\n")
    git(repo, "commit", "-qam", "slow check")
    replay = write_replay(tmp_path / "r.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                final("Fixed add")])
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "fix", "--backend", f"replay:{replay}", "--json",
                                "--test-cmd", "python3 check.py", "--cwd", str(repo)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # The check run has started (the first run fails at once). Under bwrap its marker sits in the
        # command's copy-on-write layer until the command ends (tools.sandbox_overlay); else in the repo.
        layers = Path(os.environ["GPTOSS_AGENT_STATE_DIR"]) / "overlay"
        while not (marker.exists() or list(layers.glob(f"cmd-*/upper/{marker.name}"))):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the check run never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    stream = events(out)
    assert process.returncode == 130, err
    assert stream[-1]["type"] == "run_finished" and stream[-1]["status"] == "cancelled"
    attempt = [e for e in stream if e["type"] == "attempt_finished"]
    assert attempt and attempt[-1]["status"] == "cancelled"
    assert "still fails" not in out
    assert len(git(repo, "log", "--oneline").splitlines()) == 3  # nothing committed
