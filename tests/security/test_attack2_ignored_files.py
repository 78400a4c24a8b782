"""Emptying `.gitignore` must not make the user's ignored files look like the agent's work.

Attack: a command runs `printf '# build\\n' > .gitignore`; the user's `.env` and
`local.cfg`, ignored until then and untouched, must be neither committed nor
deleted by undo. Attribution compares file-system snapshots, so a file that
existed and did not change during a command is never the command's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git, make_repo
from gptoss_agent.tools import attribution, git as git_tools, host_git
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox
from gptoss_agent.tools.shell import exec_command

SECRET = "API_KEY=the-users-own\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "project")
    (root / ".gitignore").write_text(".env\nlocal.cfg\nbuild/\n")
    git(root, "add", ".gitignore")
    git(root, "commit", "-qm", "ignore")
    (root / ".env").write_text(SECRET)
    (root / "local.cfg").write_text("db=local\n")
    (root / "build").mkdir()
    (root / "build" / "out.txt").write_text("user build output\n")
    return root


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    context = ToolContext(workspace=repo, sandbox=Sandbox(repo, mode="landlock"))
    attribution.start_session(context)
    yield context
    host_git._PINS.clear()


def run(ctx: ToolContext, script: str):
    return exec_command(ctx, cmd=["bash", "-c", script])


def test_emptying_gitignore_never_commits_the_users_ignored_files(repo, ctx):
    run(ctx, "printf '# build\\n' > .gitignore")
    result = git_tools.git_commit(ctx, message="Tidy ignore rules")
    assert result.ok, result.output
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [".gitignore"]
    assert sorted(ctx.changes) == []


def test_undo_after_emptying_gitignore_keeps_the_users_ignored_files(repo, ctx):
    run(ctx, "printf '# build\\n' > .gitignore")
    git_tools.undo(ctx)
    assert (repo / ".env").read_text() == SECRET
    assert (repo / "local.cfg").read_text() == "db=local\n"
    assert (repo / "build" / "out.txt").exists()
    assert (repo / ".gitignore").read_text() == ".env\nlocal.cfg\nbuild/\n"


def test_a_file_ignored_at_session_start_is_never_committed_even_if_the_agent_edits_it(repo, ctx):
    run(ctx, "printf '' > .gitignore")
    run(ctx, "echo API_KEY=model > .env; echo new > build/new.txt; echo 'x = 1' > feature.py")
    result = git_tools.git_commit(ctx, message="Add feature")
    assert result.ok, result.output
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == [".gitignore", "feature.py"]
    assert ".env" in result.output and "build/new.txt" in result.output  # named as left out


def test_a_touched_but_unchanged_file_is_not_the_commands(repo, ctx):
    run(ctx, "touch notes.txt .env && chmod 600 local.cfg")
    assert ctx.changes == {}


def test_new_files_the_ignore_rules_hide_are_not_the_agents_work(repo, ctx):
    run(ctx, "mkdir -p build/deep && echo generated > build/deep/gen.o && echo more >> build/out.txt")
    assert ctx.changes == {}  # nothing to commit, and undo touches none of them
    assert "nothing to commit" in git_tools.git_commit(ctx, message="Build").output
