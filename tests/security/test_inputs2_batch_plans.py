"""Batch plans and the names they fan out over: a hostile repository file name prints as escapes in
`batch --dry-run`, and malformed plans (a FIFO, wrong types, deep nesting, non-UTF-8, a 5000-digit
number) are one-line errors with exit 2, never a hang or a traceback."""

from __future__ import annotations

import os

import pytest

from tests.fixtures.repos import git
from tests.security.settings_helpers import cli, repo  # noqa: F401 (fixture)

TASK = '[[tasks]]\nid = "t"\ninstruction = "Fix it"\n'


def test_dry_run_shows_a_hostile_file_name_as_escapes(repo, tmp_path):
    hostile = "e\x1b]0;T\x07\x1b[2J\u202ex.py"
    (repo / hostile).write_text("")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "names")
    plan = tmp_path / "plan.toml"
    plan.write_text('[[tasks]]\nid = "t"\ninstruction = "Fix {file}"\nfiles = ["*.py"]\nper_file = true\n')
    done = cli("batch", str(plan), "--dry-run", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\x1b" not in done.stdout + done.stderr and "\u202e" not in done.stdout + done.stderr
    assert "task(s); nothing was run" in done.stdout


PLANS = {
    "id is a number": ("[[tasks]]\nid = 5\ninstruction = \"x\"\n", "id must be a string"),
    "tasks are numbers": ("tasks = [1]\n", "tasks must be [[tasks]] tables"),
    "defaults is a number": ("defaults = 5\n" + TASK, "[defaults] must be a table"),
    "files is a string": (TASK + 'files = "*"\n', "files must be a list"),
    "max_steps is text": (TASK + 'max_steps = "9"\n', "max_steps must be an integer"),
    "deep nesting": ("x = " + "[" * 5000 + "]" * 5000 + "\n" + TASK, "not valid TOML"),
    "a 5000-digit number": (TASK + "max_steps = " + "9" * 5000 + "\n", "not valid TOML"),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_a_malformed_plan_is_a_one_line_error(repo, tmp_path, name):
    text, expected = PLANS[name]
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    done = cli("batch", str(plan), "--dry-run", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert expected in done.stderr and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_non_utf8_plan_is_a_one_line_error(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_bytes(TASK.encode() + b"# \xff\xfe\n")
    done = cli("batch", str(plan), "--dry-run", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 2 and "not UTF-8" in done.stderr, done.stderr[-2000:]


def test_a_fifo_plan_is_refused_at_once_not_waited_on(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    os.mkfifo(plan)
    done = cli("batch", str(plan), "--dry-run", "--cwd", str(repo), cwd=tmp_path, timeout=30)
    assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr[-2000:]


def test_a_manifest_planted_as_a_link_is_refused_before_any_task_runs(repo, tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(TASK)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    plan.with_suffix(".manifest.jsonl").symlink_to(victim)
    replay = tmp_path / "r.json"
    replay.write_text('["<|channel|>final<|message|>done<|return|>"]')
    done = cli("batch", str(plan), "--backend", f"replay:{replay}", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "is a link or not a regular file" in done.stderr and "Traceback" not in done.stderr
    assert "started" not in done.stdout + done.stderr  # refused before the first task
    assert victim.read_text() == "precious\n"
    assert git(repo, "branch", "--list", "gptoss/*") == ""


def test_a_task_that_crashes_is_an_error_outcome_and_the_batch_still_reports(repo, tmp_path):
    from gptoss_agent.agent.frontends.batch import BatchTask, TaskOutcome, run_batch

    def run_task(task, root, branch):
        if task.id == "a":
            raise RuntimeError("backend went away")
        return TaskOutcome(task.id, "failed", branch, reason="nothing changed")

    plan = tmp_path / "plan.toml"
    notes: list[str] = []
    _, outcomes = run_batch(plan, repo, [BatchTask("a", "x"), BatchTask("b", "y")], run_task,
                            on_progress=notes.append)
    assert [(o.task, o.status) for o in outcomes] == [("a", "error"), ("b", "failed")]
    assert "RuntimeError: backend went away" in outcomes[0].reason
    assert plan.with_suffix(".report.md").exists() and plan.with_suffix(".manifest.jsonl").read_text().count("\n") == 2
