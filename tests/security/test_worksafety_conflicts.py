"""A file the user edits between two of the agent's patches is both theirs and the agent's: a conflict.

Real apply_patch, real git: the agent never commits such a file as its own,
undo never reverts the user's bytes, and git_commit's result names the conflict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git
from gptoss_agent.tools import git as git_tools
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.editing import apply_patch_tool

SOURCE = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"


def patch(old: str, new: str, path: str = "a.py") -> str:
    return f"*** Begin Patch\n*** Update File: {path}\n def f():\n-    return {old}\n+    return {new}\n*** End Patch"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "a.py").write_text(SOURCE)
    (root / "b.py").write_text("B = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def user_edits(repo: Path) -> None:
    path = repo / "a.py"
    path.write_text(path.read_text().replace("return 2", "return 2  # USER EDIT"))


def two_patches_with_a_user_edit_between(repo: Path) -> ToolContext:
    ctx = ToolContext(workspace=repo)
    assert apply_patch_tool(ctx, patch=patch("1", "10")).ok
    user_edits(repo)
    assert apply_patch_tool(ctx, patch=patch("10", "11")).ok
    return ctx


def test_undo_reverts_only_the_agents_last_edit_and_keeps_the_users_bytes(repo):
    ctx = two_patches_with_a_user_edit_between(repo)
    said = git_tools.undo(ctx)
    text = (repo / "a.py").read_text()
    assert "# USER EDIT" in text, said
    assert "return 10" in text and "return 11" not in text  # back to the state right before the last write
    assert "you edited it between the agent's edits" in said


def test_undo_refuses_when_the_file_changed_after_the_agents_last_edit(repo):
    ctx = two_patches_with_a_user_edit_between(repo)
    (repo / "a.py").write_text((repo / "a.py").read_text() + "# later\n")
    with pytest.raises(git_tools.GitError, match="changed since the agent edited"):
        git_tools.undo(ctx)
    assert (repo / "a.py").read_text().endswith("# later\n")


def test_commit_leaves_a_file_both_edited_to_the_user_and_says_it_is_a_conflict(repo):
    ctx = two_patches_with_a_user_edit_between(repo)
    assert apply_patch_tool(ctx, patch="*** Begin Patch\n*** Update File: b.py\n-B = 1\n+B = 2\n*** End Patch").ok
    result = git_tools.git_commit(ctx, message="Return 11 from f")
    assert result.ok, result.output
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["b.py"]
    assert "USER EDIT" not in git(repo, "show", "HEAD:a.py")
    assert result.data["conflicts"] == ["a.py"]
    assert "Conflicts" in result.output and "a.py" in result.output
    assert "# USER EDIT" in (repo / "a.py").read_text() and "return 11" in (repo / "a.py").read_text()


def test_a_commit_of_only_a_conflicted_file_is_refused_with_the_reason(repo):
    ctx = two_patches_with_a_user_edit_between(repo)
    result = git_tools.git_commit(ctx, message="Return 11 from f")
    assert not result.ok and "a conflict" in result.output and "a.py" in result.output
    assert len(git(repo, "log", "--oneline").splitlines()) == 1


def test_two_agent_patches_without_a_user_edit_commit_and_undo_as_before(repo):
    ctx = ToolContext(workspace=repo)
    assert apply_patch_tool(ctx, patch=patch("1", "10")).ok
    assert apply_patch_tool(ctx, patch=patch("10", "11")).ok
    result = git_tools.git_commit(ctx, message="Return 11 from f")
    assert result.ok and result.data["files"] == ["a.py"] and result.data["conflicts"] == []
    git_tools.undo(ctx)
    assert (repo / "a.py").read_text() == SOURCE
