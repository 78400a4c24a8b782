"""A `.git` the model repoints during a session must not move the agent's commits into another repository.

Attack (issue #10/#11 follow-up): under the Landlock fallback a worktree's `.git`
pointer file is writable, so a command can point it at the user's main git
directory; in a plain repository a command can move `.git` away and leave a
pointer to another repository. The agent pins its git directory at session
start and refuses host git once `.git` no longer is what it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git, make_repo
from gptoss_agent.tools import attribution, git as git_tools, host_git
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox
from gptoss_agent.tools.shell import exec_command


def session(workspace: Path, mode: str = "landlock") -> ToolContext:
    """A session as the CLI starts one: a real sandbox, the repository pinned at start."""
    ctx = ToolContext(workspace=workspace, sandbox=Sandbox(workspace, mode=mode))
    attribution.start_session(ctx)
    return ctx


def run(ctx: ToolContext, script: str):
    return exec_command(ctx, cmd=["bash", "-c", script])


@pytest.fixture
def main_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "main")


@pytest.fixture(autouse=True)
def _forget_pins():
    yield
    host_git._PINS.clear()


def test_a_worktree_pointer_repointed_at_the_main_repository_never_commits_there(main_repo, tmp_path):
    worktree = tmp_path / "wt"
    git(main_repo, "worktree", "add", "-q", "-b", "task", str(worktree))
    pointer = (worktree / ".git").read_bytes()
    main_head = git(main_repo, "rev-parse", "main").strip()
    ctx = session(worktree)
    run(ctx, f"echo 'gitdir: {main_repo}/.git' > .git; echo 'def add(a, b):\n    return a + b' > calc.py")
    result = git_tools.git_commit(ctx, message="Fix add")
    assert not result.ok and ".git changed during the session" in result.output
    assert git(main_repo, "rev-parse", "main").strip() == main_head  # the user's branch did not move
    assert git(main_repo, "rev-parse", "task").strip() == main_head
    assert (worktree / ".git").read_bytes() == pointer  # put back, no link followed
    again = git_tools.git_commit(ctx, message="Fix add")  # and it stays refused for the session
    assert not again.ok and "runs no more git" in again.output


def test_a_moved_git_folder_and_a_pointer_elsewhere_never_redirect_the_commit(main_repo, tmp_path):
    other = make_repo(tmp_path / "other")
    other_head = git(other, "rev-parse", "HEAD").strip()
    ctx = session(main_repo, mode="none")  # both sandboxes now keep `.git` from being moved; the user may turn them off
    run(ctx, f"mv .git .git-old && echo 'gitdir: {other}/.git' > .git && echo changed > notes.txt")
    result = git_tools.git_commit(ctx, message="Update notes")
    assert not result.ok and ".git changed during the session" in result.output
    assert "put it back yourself" in result.output
    assert git(other, "rev-parse", "HEAD").strip() == other_head
    assert git(other, "ls-tree", "-r", "--name-only", "HEAD").split() == ["README.md", "calc.py", "notes.txt"]


def test_a_folder_holding_a_git_directory_is_never_the_agents_work(main_repo):
    ctx = session(main_repo)
    run(ctx, "mkdir -p copy && cp -r .git copy/repo.git && echo fixed > notes.txt")
    assert sorted(ctx.changes) == ["notes.txt"]
    result = git_tools.git_commit(ctx, message="Update notes")
    assert result.ok, result.output
    assert git(main_repo, "show", "--name-only", "--format=", "HEAD").split() == ["notes.txt"]


def test_an_unchanged_repository_keeps_working_after_pinning(main_repo):
    ctx = session(main_repo)
    run(ctx, "echo 'def add(a, b):\n    return a + b' > calc.py")
    assert git_tools.git_commit(ctx, message="Fix add").ok
