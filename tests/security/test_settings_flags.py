"""One composition root: every flag means the same through exec, fix, resume and the Python API.

Each case runs the real command (or the API) on a real repository with the
replay backend and checks what a user would notice: a commit that did not
happen, a sandbox that stayed on, a test command that ran, a warning that names
the right source, a repo map that is there or not. Batch's cases are in
test_settings_flags_batch.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gptoss_agent.agent.frontends.api import run_task
from tests.fixtures.repos import call, final, git, write_replay
from tests.security.settings_helpers import (COMMIT_ANYWAY, cli, commits, developer_text, escape_attempt, events,
                                             repo)  # noqa: F401 (repo is a fixture)


def test_exec_no_commit_takes_git_commit_away_from_the_model(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", COMMIT_ANYWAY)
    done = cli("exec", "--no-commit", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), "Fix add",
               cwd=tmp_path)
    assert commits(repo) == 1, "exec --no-commit still committed"
    result = next(e for e in events(done.stdout) if e["type"] == "tool_result" and "git_commit" in e["name"])
    assert result["ok"] is False
    assert "return a + b" in (repo / "calc.py").read_text()  # the edit itself happened


def test_exec_without_no_commit_lets_the_model_commit(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", COMMIT_ANYWAY)
    done = cli("exec", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), "Fix add", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert commits(repo) == 2


def test_fix_no_commit_neither_commits_itself_nor_lets_the_model(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", COMMIT_ANYWAY)
    done = cli("fix", "--no-commit", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert commits(repo) == 1
    last = events(done.stdout)[-1]
    assert last["type"] == "run_finished" and last["status"] == "completed" and "--no-commit" in last["reason"]


def test_api_no_commit_takes_git_commit_away(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", COMMIT_ANYWAY)
    result = run_task(repo, "Fix add", backend=f"replay:{replay}", no_commit=True)
    assert commits(repo) == 1
    assert any(e.type == "tool_result" and "git_commit" in e.name and not e.ok for e in result.events)


def test_exec_sandbox_none_is_honoured_and_blames_the_flag(repo, tmp_path):
    target, script = escape_attempt(tmp_path)
    replay = write_replay(tmp_path / "replay.json", script)
    done = cli("exec", "--sandbox", "none", "--backend", f"replay:{replay}", "--cwd", str(repo), "touch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert target.exists()
    assert "sandbox is OFF" in done.stderr and "the --sandbox flag" in done.stderr


def test_exec_keeps_the_sandbox_when_only_the_repository_asks_for_none(repo, tmp_path):
    (repo / ".gptoss-agent.toml").write_text('sandbox = "none"\n')
    git(repo, "add", ".gptoss-agent.toml")
    git(repo, "commit", "-qm", "settings")
    target, script = escape_attempt(tmp_path)
    replay = write_replay(tmp_path / "replay.json", script)
    done = cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "touch", cwd=tmp_path)
    assert not target.exists(), "a repository file turned the sandbox off"
    assert "sandbox is OFF" not in done.stderr
    assert done.stderr.count(".gptoss-agent.toml") == 1 and "sandbox" in done.stderr


def test_api_sandbox_none_names_the_argument(repo, tmp_path):
    target, script = escape_attempt(tmp_path)
    replay = write_replay(tmp_path / "replay.json", script)
    result = run_task(repo, "touch", backend=f"replay:{replay}", sandbox="none")
    assert target.exists()
    warning = next(e.text for e in result.events if e.type == "notice" and "sandbox is OFF" in e.text)
    assert "run_task() argument sandbox" in warning and "--sandbox" not in warning


def test_fix_with_the_users_sandbox_none_says_so_before_the_repositorys_tests_run(repo, tmp_path):
    """The repository's conftest.py waits for a go-ahead file; the warning must come before it runs."""
    ran, go = tmp_path / "conftest-ran", tmp_path / "go"
    (repo / "conftest.py").write_text(
        "import os, sys, time\nsys.path.insert(0, os.path.dirname(__file__))\n"
        f"deadline = time.time() + 60\nwhile not os.path.exists({str(go)!r}) and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        f"open({str(ran)!r}, 'w').close()\n")
    git(repo, "commit", "-qam", "conftest")
    replay = write_replay(tmp_path / "replay.json", [final("nothing")])
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "fix", "--backend", f"replay:{replay}", "--cwd",
                                str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "GPTOSS_AGENT_SANDBOX": "none"}, cwd=tmp_path)
    try:
        first = process.stderr.readline()
        assert not ran.exists(), "the repository's code ran before the warning"
        assert "sandbox is OFF" in first and "GPTOSS_AGENT_SANDBOX" in first and "--sandbox" not in first
    finally:
        go.touch()
        process.communicate(timeout=120)
    assert ran.exists()


def test_exec_honours_the_test_cmd_flag(repo, tmp_path):
    marker = "custom-runner-ran"
    replay = write_replay(tmp_path / "replay.json", [call("functions.run_tests", {}), final("ok")])
    done = cli("exec", "--json", "--test-cmd", f"touch {marker}", "--backend", f"replay:{replay}", "--cwd",
               str(repo), "run the tests", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (repo / marker).exists()


@pytest.mark.parametrize("front_end", ["exec", "batch"])
@pytest.mark.parametrize("map_tokens, has_map", [("0", False), ("1024", True)])
def test_map_tokens_is_honoured_by_every_front_end(repo, tmp_path, codec, front_end, map_tokens, has_map):
    state = tmp_path / "state"
    env = {"GPTOSS_AGENT_STATE_DIR": str(state), "GPTOSS_AGENT_MAP_TOKENS": map_tokens}
    if front_end == "exec":
        replay = write_replay(tmp_path / "replay.json", [final("ok")])
        cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "Look at calc.py", cwd=tmp_path, env=env)
    else:
        plan = tmp_path / "plan.toml"
        plan.write_text('[[tasks]]\nid = "a"\ninstruction = "Look at calc.py"\n')
        replay = tmp_path / "replay.json"
        replay.write_text(json.dumps({"a": [final("ok")]}))
        cli("batch", str(plan), "--backend", f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path, env=env)
    text = developer_text(state, codec)
    assert text, "no developer message was logged"
    assert ("def add(a, b)" in text) == has_map


@pytest.mark.parametrize("front_end", ["exec", "batch", "api"])
def test_max_tokens_per_step_is_honoured_by_every_front_end(repo, tmp_path, front_end):
    long_answer = final("word " * 400)
    env = {"GPTOSS_AGENT_MAX_TOKENS_PER_STEP": "64"}
    if front_end == "exec":
        replay = write_replay(tmp_path / "replay.json", [long_answer] * 3)
        done = cli("exec", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), "talk", cwd=tmp_path,
                   env=env)
        stream = events(done.stdout)
        steps = [e for e in stream if e["type"] == "run_finished"]
        # The answer alone is about 400 tokens: each of the three steps is cut at 64, and a
        # cut-off answer is never reported as a completed run.
        assert 0 < steps[-1]["completion_tokens"] <= 3 * 64 and steps[-1]["status"] != "completed"
    elif front_end == "api":
        replay = write_replay(tmp_path / "replay.json", [long_answer] * 3)
        result = run_task(repo, "talk", backend=f"replay:{replay}", settings={"max_tokens_per_step": 64})
        finished = [e for e in result.events if e.type == "run_finished"][-1]
        assert 0 < finished.completion_tokens <= 3 * 64 and finished.status != "completed"
    else:
        plan = tmp_path / "plan.toml"
        plan.write_text('[[tasks]]\nid = "a"\ninstruction = "talk"\n')
        replay = tmp_path / "replay.json"
        replay.write_text(json.dumps({"a": [long_answer] * 3}))
        cli("batch", str(plan), "--backend", f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path, env=env)
        task = json.loads(plan.with_suffix(".report.json").read_text())["tasks"][0]
        assert 0 < task["tokens"] <= 3 * 64


@pytest.mark.parametrize("front_end", ["exec", "api"])
def test_a_remote_backend_needs_allow_remote_in_every_front_end(repo, tmp_path, front_end):
    from gptoss_agent.agent.runtime import SetupError

    if front_end == "exec":
        done = cli("exec", "--backend", "http://8.8.8.8:9", "--cwd", str(repo), "hi", cwd=tmp_path)
        assert done.returncode == 2 and "--allow-remote" in done.stderr
    else:
        with pytest.raises(SetupError, match="allow-remote"):
            run_task(repo, "hi", backend="http://8.8.8.8:9")


def test_a_repository_file_cannot_allow_a_remote_backend(repo, tmp_path):
    (repo / ".gptoss-agent.toml").write_text('allow_remote = true\n')
    done = cli("exec", "--backend", "http://8.8.8.8:9", "--cwd", str(repo), "hi", cwd=tmp_path)
    assert done.returncode == 2 and "--allow-remote" in done.stderr
    assert "ignored allow_remote" in done.stderr


def test_fix_honours_the_test_cmd_flag(repo, tmp_path):
    """calc.py's suite fails under pytest; a test command that passes means fix has nothing to do."""
    done = cli("fix", "--json", "--test-cmd", "python3 -c 'raise SystemExit(0)'", "--backend", "replay:/none.json",
               "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert events(done.stdout)[-1]["reason"] == "tests already pass"


def test_api_honours_test_cmd(repo, tmp_path):
    replay = write_replay(tmp_path / "replay.json", [call("functions.run_tests", {}), final("ok")])
    run_task(repo, "run the tests", backend=f"replay:{replay}", test_cmd="touch api-runner-ran")
    assert (repo / "api-runner-ran").exists()


def test_resume_honours_no_commit(repo, tmp_path):
    state = tmp_path / "state"
    env = {"GPTOSS_AGENT_STATE_DIR": str(state)}
    first = write_replay(tmp_path / "first.json", [final("Ready.")])
    assert cli("exec", "--backend", f"replay:{first}", "--cwd", str(repo), "wait", cwd=tmp_path, env=env).returncode == 0
    second = write_replay(tmp_path / "second.json", COMMIT_ANYWAY)
    done = cli("resume", "--last", "--no-commit", "--json", "--message", "now fix it", "--backend", f"replay:{second}",
               "--cwd", str(repo), cwd=tmp_path, env=env)
    assert "return a + b" in (repo / "calc.py").read_text(), done.stderr
    assert commits(repo) == 1
