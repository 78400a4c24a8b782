"""Commits hold only the agent's own work; undo restores only it, never through links, never a user's commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git, make_repo
from gptoss_agent.tools import attribution, git as git_tools
from gptoss_agent.tools.commit_message import SUBJECT_LIMIT, TRAILER, compose, subject_line
from gptoss_agent.tools.context import ToolContext


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    return ToolContext(workspace=repo)


def agent_writes(ctx: ToolContext, path: str, data: bytes | None) -> None:
    """What apply_patch does: write the file and record the before/after contents."""
    target = ctx.workspace / path
    before = target.read_bytes() if target.exists() else None
    if data is None:
        target.unlink()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    ctx.record_write(path, before, data)


def committed_files(repo: Path) -> list[str]:
    return git(repo, "show", "--name-only", "--format=", "HEAD").split()


def test_the_users_concurrent_edits_and_new_files_are_never_committed_or_undone(repo, ctx):
    agent_writes(ctx, "calc.py", b"def add(a, b):\n    return a + b\n")
    (repo / "README.md").write_text("# project\nmy notes while the agent works\n")
    (repo / "private.txt").write_text("mine")
    git(repo, "add", "private.txt")  # even staged
    sha, files, _ = git_tools.commit_changes(ctx, "Fix add")
    assert files == ["calc.py"] and committed_files(repo) == ["calc.py"]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["private.txt"]  # still staged, not committed
    git_tools.undo(ctx)
    assert (repo / "README.md").read_text().endswith("my notes while the agent works\n")
    assert (repo / "private.txt").read_text() == "mine"
    assert git(repo, "diff", "--cached", "--name-only").split() == ["private.txt"]
    assert "a - b" in (repo / "calc.py").read_text()


def test_a_file_the_user_changed_after_the_agent_is_a_conflict_not_committed(repo, ctx):
    agent_writes(ctx, "calc.py", b"agent\n")
    agent_writes(ctx, "notes.txt", b"agent notes\n")
    (repo / "notes.txt").write_text("the user rewrote it\n")
    report = git_tools.commit_agent_changes(ctx, "Change calc")
    assert report.files == ["calc.py"] and "conflict" in report.skipped["notes.txt"]
    assert (repo / "notes.txt").read_text() == "the user rewrote it\n"
    with pytest.raises(git_tools.GitError, match="notes.txt changed since the agent edited them"):
        git_tools.undo(ctx)
    assert (repo / "notes.txt").read_text() == "the user rewrote it\n"


def test_a_file_holding_the_users_uncommitted_work_is_not_committed(repo, ctx):
    (repo / "notes.txt").write_text("user draft\n")
    agent_writes(ctx, "notes.txt", b"user draft\nagent line\n")
    agent_writes(ctx, "calc.py", b"agent\n")
    report = git_tools.commit_agent_changes(ctx, "x")
    assert report.files == ["calc.py"] and "uncommitted changes of yours" in report.skipped["notes.txt"]
    assert "user draft" not in git(repo, "show", "HEAD:notes.txt")


def test_the_commit_is_built_from_the_agents_bytes_and_leaves_a_clean_status(repo, ctx):
    agent_writes(ctx, "calc.py", b"agent version\n")
    report = git_tools.commit_agent_changes(ctx, "x")
    assert git(repo, "show", f"{report.sha}:calc.py") == "agent version\n"
    assert git(repo, "status", "--porcelain").strip() == ""


def test_undo_through_a_planted_directory_symlink_is_refused_and_nothing_outside_changes(repo, ctx, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mod.py").write_text("outside original\n")
    agent_writes(ctx, "pkg/mod.py", b"agent\n")
    agent_writes(ctx, "pkg/new.py", b"new\n")
    # The model swaps the folder for a link to a folder outside the repository, with the same file names.
    os.rename(repo / "pkg", tmp_path / "pkg-moved")
    (repo / "pkg").symlink_to(outside)
    (outside / "new.py").write_text("new\n")
    with pytest.raises(git_tools.GitError, match="symbolic link"):
        git_tools.undo(ctx)
    assert (outside / "mod.py").read_text() == "outside original\n" and (outside / "new.py").exists()


def test_undo_of_a_deleted_file_never_restores_it_through_a_link(repo, ctx, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (repo / "docs").mkdir()
    (repo / "docs" / "guide.md").write_text("guide\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "docs")
    agent_writes(ctx, "docs/guide.md", None)
    (repo / "docs").rmdir()
    (repo / "docs").symlink_to(home)
    with pytest.raises(git_tools.GitError, match="symbolic link"):
        git_tools.undo(ctx)
    assert list(home.iterdir()) == []


def test_undo_of_a_commit_replaces_a_planted_file_link_instead_of_writing_through_it(repo, ctx, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("victim\n")
    agent_writes(ctx, "calc.py", b"agent\n")
    git_tools.commit_changes(ctx, "x")
    (repo / "calc.py").unlink()
    (repo / "calc.py").symlink_to(victim)
    with pytest.raises(git_tools.GitError):
        git_tools.undo(ctx)
    assert victim.read_text() == "victim\n"


def test_undo_never_resets_a_commit_from_a_session_log(repo, ctx):
    """A resumed session's log names commits; the agent did not make them in this process."""
    (repo / "user.txt").write_text("user work")
    git(repo, "add", "user.txt")
    git(repo, "commit", "-qm", "the user's commit")
    user_commit = git(repo, "rev-parse", "HEAD").strip()
    ctx.agent_commits.append(user_commit)  # what restoring a forged or stale log does
    with pytest.raises(git_tools.GitError, match="only undoes its own commits"):
        git_tools.undo(ctx)
    assert git(repo, "rev-parse", "HEAD").strip() == user_commit and (repo / "user.txt").exists()


def test_undo_refuses_once_the_user_committed_on_top(repo, ctx):
    agent_writes(ctx, "calc.py", b"agent\n")
    git_tools.commit_changes(ctx, "x")
    (repo / "notes.txt").write_text("more\n")
    git(repo, "commit", "-qam", "user on top")
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(git_tools.GitError, match="not the agent's last commit"):
        git_tools.undo(ctx)
    assert git(repo, "rev-parse", "HEAD").strip() == head


def test_undo_of_a_commit_restores_exactly_the_before_state(repo, ctx):
    head = git(repo, "rev-parse", "HEAD").strip()
    agent_writes(ctx, "calc.py", b"agent\n")
    agent_writes(ctx, "notes.txt", None)
    agent_writes(ctx, "src/new.py", b"x = 1\n")
    (repo / "user-new.txt").write_text("user\n")
    _, files, _ = git_tools.commit_changes(ctx, "x")
    assert files == ["calc.py", "notes.txt", "src/new.py"]
    assert "reverted" in git_tools.undo(ctx)
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "status", "--porcelain").split("\n")[0] == "?? user-new.txt"
    assert (repo / "notes.txt").read_text() == "plain notes\n" and not (repo / "src" / "new.py").exists()


def test_what_a_command_wrote_is_the_agents_and_test_run_artefacts_are_not(repo, ctx):
    from gptoss_agent.tools.sandbox import Sandbox

    sandbox = Sandbox(repo, mode="auto")
    if sandbox.mechanism is None:
        pytest.skip(sandbox.report.reason)
    with attribution.recording(ctx):
        sandbox.run(["sh", "-c", "echo formatted > calc.py; echo made > generated.py"], timeout_s=30)
    with attribution.recording(ctx, run_artefacts=True):
        sandbox.run(["sh", "-c", "mkdir -p reports; echo run > reports/last-run.txt; echo tested >> notes.txt"],
                    timeout_s=30)
    assert sorted(ctx.changes) == ["calc.py", "generated.py", "notes.txt"]
    _, files, _ = git_tools.commit_changes(ctx, "Format")
    assert files == ["calc.py", "generated.py", "notes.txt"]
    assert "reports/last-run.txt" not in committed_files(repo) and (repo / "reports" / "last-run.txt").exists()


def test_a_users_file_untouched_by_the_command_is_not_attributed_to_it(repo, ctx):
    (repo / "draft.txt").write_text("user draft\n")
    before = attribution.take(repo)
    (repo / "calc.py").write_text("command wrote this\n")
    attribution.record_changes(ctx, before, attribution.take(repo))
    assert list(ctx.changes) == ["calc.py"]


@pytest.mark.parametrize("proposed, subject", [
    ("Fix `add` so it adds instead of subtracting, which broke every caller of the helper module today",
     "Fix `add` so it adds instead of subtracting, which broke every caller of"),
    ("## Fixed the `parse_date helper\n\nDetails here", "Fixed the parse_date helper"),
    ("- **Refactor** config loading", "**Refactor** config loading"),
    ("", "Changes by gptoss-agent"),
    ("x" * 100, "x" * 72),
])
def test_commit_subjects_are_short_whole_words_and_leave_no_markup_open(proposed, subject):
    assert subject_line(proposed) == subject
    assert len(subject_line(proposed)) <= SUBJECT_LIMIT


def test_commit_message_has_body_test_result_and_one_trailer():
    text = compose(f"Fix add\n\nIt subtracted.\n\n{TRAILER}", tests="2 passed, 0 failed")
    assert text.split("\n\n") == ["Fix add", "It subtracted.", "Tests: 2 passed, 0 failed", TRAILER + "\n"]
    assert text.count(TRAILER) == 1


def test_the_git_commit_tool_uses_a_short_subject(repo, ctx):
    agent_writes(ctx, "calc.py", b"agent\n")
    result = git_tools.git_commit.function(ctx, message="Fix the add helper so that it really adds the two "
                                                          "numbers given `a and b, as the tests expect it to")
    assert result.ok, result.output
    subject = git(repo, "log", "-1", "--format=%s").strip()
    assert len(subject) <= 72 and "`" not in subject and subject.startswith("Fix the add helper")
    assert git(repo, "log", "-1", "--format=%B").strip().endswith(TRAILER)


def test_a_new_file_the_repository_ignores_is_not_committed(repo, ctx):
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore build")
    agent_writes(ctx, "build/out.txt", b"generated\n")
    agent_writes(ctx, "calc.py", b"agent\n")
    report = git_tools.commit_agent_changes(ctx, "x")
    assert report.files == ["calc.py"] and ".gitignore" in report.skipped["build/out.txt"]


def test_a_same_size_rewrite_between_snapshots_is_attributed_despite_the_snapshot_cache(repo, ctx):
    """Snapshots reuse unchanged files' bytes; a rewrite of the same size must still be seen."""
    (repo / "calc.py").write_text("aaaa\n")
    first = attribution.take(repo)
    (repo / "calc.py").write_text("bbbb\n")
    attribution.record_changes(ctx, first, attribution.take(repo))
    assert ctx.changes["calc.py"].before == b"aaaa\n" and ctx.changes["calc.py"].after == b"bbbb\n"


def test_file_names_that_look_like_options_globs_or_pathspec_magic_are_taken_literally(repo, ctx):
    names = [":(glob)*", "-rf", "*", "new\nline.txt", "ü.txt"]
    for name in names:
        agent_writes(ctx, name, b"x\n")
    (repo / "user.txt").write_text("user\n")  # a glob or magic taken as a pattern would sweep this in
    report = git_tools.commit_agent_changes(ctx, "names")
    assert sorted(report.files) == sorted(names)
    tree = git(repo, "ls-tree", "-r", "-z", "--name-only", "HEAD").split("\0")
    assert "user.txt" not in tree and set(names) <= set(tree)
    git_tools.undo(ctx)
    assert sorted(p.name for p in repo.iterdir()) == [".git", "README.md", "calc.py", "notes.txt", "user.txt"]


def test_undo_never_rewrites_git_config_through_a_link_to_git(repo, ctx, tmp_path):
    """Issue #11: undo restored `pkg/config` through `pkg -> .git`, and the next git status ran a filter."""
    config = (repo / ".git" / "config").read_bytes()
    agent_writes(ctx, "pkg/config", b"[filter \"x\"]\n\tclean = touch /tmp/never\n")
    (repo / "pkg" / "config").unlink()
    (repo / "pkg").rmdir()
    (repo / "pkg").symlink_to(".git")
    with pytest.raises(git_tools.GitError, match="symbolic link"):
        git_tools.undo(ctx)
    assert (repo / ".git" / "config").read_bytes() == config
