"""One composition root: batch honours the same flags and settings as exec (it used to wire the agent
a second way and ignore --sandbox, --test-cmd, --allow-remote, the map size and max_tokens_per_step)."""

from __future__ import annotations

import json

from tests.fixtures.repos import FIX_PATCH, call, final, git
from tests.security.settings_helpers import cli, escape_attempt, repo  # noqa: F401 (repo is a fixture)


def test_batch_refuses_no_commit_instead_of_ignoring_it(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "a"\ninstruction = "x"\n')
    done = cli("batch", str(plan), "--no-commit", "--backend", "replay:x.json", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 2 and "--no-commit" in done.stderr
    assert git(repo, "branch").strip() == "* main"


def test_batch_sandbox_none_is_honoured(repo, tmp_path):
    target, script = escape_attempt(tmp_path)
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "a"\ninstruction = "touch"\n')
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"a": script}))
    done = cli("batch", str(plan), "--sandbox", "none", "--backend", f"replay:{replay}", "--cwd", str(repo),
               cwd=tmp_path)
    assert target.exists(), "batch ignored --sandbox none"
    assert "the --sandbox flag" in done.stderr


def test_batch_keeps_the_sandbox_by_default(repo, tmp_path):
    target, script = escape_attempt(tmp_path)
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "a"\ninstruction = "touch"\n')
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"a": script}))
    cli("batch", str(plan), "--backend", f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path)
    assert not target.exists()


def test_batch_honours_the_test_cmd_flag(repo, tmp_path):
    (repo / "calc.py").write_text((repo / "calc.py").read_text().replace("a - b", "a + b"))
    git(repo, "commit", "-qam", "green")
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "a"\ninstruction = "Say hi"\n')
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"a": [final("hi")]}))
    done = cli("batch", str(plan), "--json", "--test-cmd", "python3 -c 'raise SystemExit(3)'", "--backend",
               f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path)
    report = json.loads(plan.with_suffix(".report.json").read_text())
    assert done.returncode == 1 and report["tasks"][0]["status"] == "failed", done.stderr
    assert "tests fail" in report["tasks"][0]["reason"]


def test_batch_refuses_a_remote_backend_without_allow_remote_before_any_task(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "a"\ninstruction = "x"\n')
    done = cli("batch", str(plan), "--backend", "http://8.8.8.8:9", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 2 and "--allow-remote" in done.stderr
    assert git(repo, "branch").strip() == "* main"


def test_batch_max_steps_flag_wins_over_the_plan(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[defaults]\nmax_steps = 10\n[[tasks]]\nid = "a"\ninstruction = "look"\n')
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"a": [call("repo_browser.search", {"query": f"q{i}"}) for i in range(4)]
                                  + [final("done")]}))
    cli("batch", str(plan), "--max-steps", "2", "--backend", f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path)
    task = json.loads(plan.with_suffix(".report.json").read_text())["tasks"][0]
    assert task["status"] == "failed" and "max_steps" in task["reason"] and task["steps"] == 2


def test_batch_honours_the_approval_flag(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "a"\ninstruction = "fix"\n')
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"a": [call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("done")]}))
    cli("batch", str(plan), "--approval", "read-only", "--backend", f"replay:{replay}", "--cwd", str(repo),
        cwd=tmp_path)
    task = json.loads(plan.with_suffix(".report.json").read_text())["tasks"][0]
    assert task["commit"] is None and task["files"] == []  # the patch was refused, nothing to commit
