"""The CLI on a hostile repository (replay backend): start-up, commit and batch run nothing the repository controls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import FIX_PATCH, call, final, make_calc_repo, write_replay
from tests.security.hostgit_fixtures import evil_program, git, make_stat_dirty, markers


def hostile_repo(root: Path, evidence: Path) -> Path:
    """The calc repository, carrying every program-naming setting git has, each leaving a marker if run."""
    repo = make_calc_repo(root)
    (repo / ".gitattributes").write_text("* filter=x diff=x merge=x\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    settings = {
        "filter.x.clean": "clean", "filter.x.smudge": "smudge", "filter.x.process": "process",
        "diff.x.textconv": "textconv", "diff.x.command": "diffcommand", "merge.x.driver": "merge",
        "diff.external": "external", "core.pager": "pager", "pager.diff": "pagerdiff", "core.editor": "editor",
        "core.fsmonitor": "fsmonitor", "gpg.program": "gpg", "core.sshCommand": "ssh",
        "credential.helper": "credential",
    }
    for key, tag in settings.items():
        git(repo, "config", key, evil_program(evidence, tag))
    git(repo, "config", "commit.gpgsign", "true")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch '{evidence}/ran-hook'\n")
    hook.chmod(0o755)
    for path in repo.rglob("*.py"):
        make_stat_dirty(path)
    return repo


def agent(*args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args, "--cwd", str(cwd)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    folder.mkdir()
    return folder


def test_exec_start_up_patch_and_commit_run_nothing_from_the_repository(tmp_path, evidence, vocab_dir):
    repo = hostile_repo(tmp_path / "project", evidence)
    replay = write_replay(tmp_path / "replay.json", [
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
        call("functions.git_commit", {"message": "Fix add() to add"}),
        final("Fixed."),
    ])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "--approval", "full-auto", "Fix add", cwd=repo)
    assert markers(evidence) == [], done.stderr
    assert done.returncode == 0, done.stderr
    assert git(repo, "log", "-1", "--format=%s").strip() == "Fix add() to add"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["calc.py"]


def test_fix_start_up_runs_nothing_from_the_repository(tmp_path, evidence, vocab_dir):
    repo = hostile_repo(tmp_path / "project", evidence)
    replay = write_replay(tmp_path / "replay.json", [final("I give up.")])
    agent("fix", "--backend", f"replay:{replay}", "--json", cwd=repo)
    assert markers(evidence) == []


def test_batch_start_up_with_an_invalid_plan_runs_nothing_from_the_repository(tmp_path, evidence, vocab_dir):
    repo = hostile_repo(tmp_path / "project", evidence)
    plan = tmp_path / "plan.toml"
    plan.write_text("[[tasks]]\nthis is not toml = = =\n")
    done = agent("batch", str(plan), cwd=repo)
    assert done.returncode != 0
    assert markers(evidence) == []


def test_map_and_the_tui_git_scan_run_nothing_from_the_repository(tmp_path, evidence, vocab_dir):
    repo = hostile_repo(tmp_path / "project", evidence)
    agent("map", cwd=repo)
    from gptoss_agent.agent.operations import repository_operations  # what the TUI's git scan calls

    assert repository_operations(repo).git_state().startswith("main")
    assert markers(evidence) == []


def test_exec_refuses_a_git_pointer_into_the_work_tree_before_anything_runs(tmp_path, evidence, vocab_dir):
    repo = hostile_repo(tmp_path / "project", evidence)
    (repo / ".git").rename(repo / ".hidden-git")
    (repo / ".git").write_text("gitdir: .hidden-git\n")
    replay = write_replay(tmp_path / "replay.json", [final("ok")])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "Look", cwd=repo)
    assert done.returncode != 0 and "inside the work tree" in (done.stderr + done.stdout)
    assert markers(evidence) == []


def test_fix_commits_a_short_subject_and_the_test_result_not_the_whole_answer(tmp_path, vocab_dir):
    repo = make_calc_repo(tmp_path / "project")
    answer = ("Fixed `add` in calc.py: it subtracted its arguments instead of adding them, so every caller "
              "got the wrong sign\n\n## Details\n\n- changed `a - b` to `a + b`\n")
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final(answer)])
    done = agent("fix", "--backend", f"replay:{replay}", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    subject = git(repo, "log", "-1", "--format=%s").strip()
    body = git(repo, "log", "-1", "--format=%b")
    assert subject.startswith("Fix failing tests: Fixed `add` in calc.py") and len(subject) <= 72
    assert subject.count("`") % 2 == 0 and not subject.endswith(("of", "the"))
    assert "Tests: 2 passed, 0 failed" in body and "## Details" not in body
