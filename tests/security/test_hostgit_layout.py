"""Repository layouts that redirect git: `.git` pointers into the work tree, a symlinked `.git`, nested repositories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import evil_program, git, make_repo, make_stat_dirty, markers
from tests.security.users import NEEDS_ANOTHER_USER, can_become_nobody
from gptoss_agent.tools import git as git_tools
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.files import repo_files
from gptoss_agent.tools.host_git import UnsafeRepository, run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


def _pointer_into_work_tree(repo: Path, tmp_path: Path) -> None:
    """CVE-2022-24765-style: the real git directory sits in the (writable) work tree and carries a filter."""
    (repo / ".gitattributes").write_text("* filter=x\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    shutil.move(repo / ".git", repo / ".realgit")
    (repo / ".git").write_text("gitdir: .realgit\n")
    git(repo, "config", "filter.x.clean", evil_program(tmp_path, "pointer"))
    make_stat_dirty(repo / "calc.py")


def test_a_git_pointer_into_the_work_tree_is_refused_by_every_host_operation(repo, tmp_path):
    _pointer_into_work_tree(repo, tmp_path)
    for operation in (git_tools.dirty_paths, git_tools.diff_text, git_tools.current_branch):
        with pytest.raises(git_tools.GitError, match="inside the work tree"):
            operation(repo)
    with pytest.raises(git_tools.GitError, match="inside the work tree"):
        git_tools.repository_root(repo)
    repo_files(repo)  # falls back to a plain walk
    ctx = ToolContext(workspace=repo)
    ctx.record_write("calc.py", b"", (repo / "calc.py").read_bytes())
    with pytest.raises(git_tools.GitError):
        git_tools.commit_changes(ctx, "x")
    assert markers(tmp_path) == []


def test_a_pointer_whose_common_dir_is_in_the_work_tree_is_refused(repo, tmp_path):
    outside = tmp_path / "outside-gitdir"
    outside.mkdir()
    (outside / "commondir").write_text(str(repo / ".realgit") + "\n")
    shutil.move(repo / ".git", repo / ".realgit")
    (repo / ".git").write_text(f"gitdir: {outside}\n")
    with pytest.raises(UnsafeRepository, match="inside the work tree"):
        run_git(repo, "status")


def test_a_symlinked_git_folder_is_refused(repo, tmp_path):
    shutil.move(repo / ".git", tmp_path / "elsewhere.git")
    (repo / ".git").symlink_to(tmp_path / "elsewhere.git")
    with pytest.raises(UnsafeRepository, match="symbolic link"):
        run_git(repo, "status")
    with pytest.raises(git_tools.GitError, match="symbolic link"):
        git_tools.repository_root(repo)


def test_a_worktree_pointer_outside_the_work_tree_is_accepted(repo, tmp_path):
    """What `batch` makes: a linked worktree whose git directory is the main repository's."""
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "task", str(linked))
    (linked / "calc.py").write_text("changed\n")
    assert git_tools.dirty_paths(linked) == {"calc.py"}
    assert git_tools.current_branch(linked) == "task"


def _embedded_repo_with_filter(repo: Path, tmp_path: Path, *, commit_gitlink: bool) -> Path:
    """What a model can do inside the sandbox: `git init vendor/lib`, a filter in its config, attributes."""
    nested = repo / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q", "-b", "main")
    git(nested, "config", "user.email", "m@example.com")
    git(nested, "config", "user.name", "M")
    (nested / ".gitattributes").write_text("* filter=x diff=x\n")
    (nested / "code.py").write_text("print('x')\n")
    git(nested, "add", "-A")
    git(nested, "commit", "-qm", "nested")
    git(nested, "config", "filter.x.clean", evil_program(tmp_path, "nested-clean"))
    git(nested, "config", "diff.x.textconv", evil_program(tmp_path, "nested-textconv"))
    git(nested, "config", "core.fsmonitor", evil_program(tmp_path, "nested-fsmonitor"))
    if commit_gitlink:
        git(repo, "add", "vendor/lib")
        git(repo, "commit", "-qm", "embedded")
    make_stat_dirty(nested / "code.py")
    (nested / "code.py").write_text("print('changed')\n")
    return nested


@pytest.mark.parametrize("commit_gitlink", [False, True], ids=["untracked", "embedded"])
def test_host_git_never_descends_into_a_nested_repository(repo, tmp_path, commit_gitlink):
    _embedded_repo_with_filter(repo, tmp_path, commit_gitlink=commit_gitlink)
    dirty = git_tools.dirty_paths(repo)
    git_tools.diff_text(repo)
    repo_files(repo)
    assert markers(tmp_path) == []
    assert not any(p.startswith("vendor/lib/") and not p.endswith("/") for p in dirty)


def test_the_agent_never_commits_a_nested_repository_and_says_so(repo, tmp_path):
    _embedded_repo_with_filter(repo, tmp_path, commit_gitlink=False)
    ctx = ToolContext(workspace=repo)
    before = (repo / "calc.py").read_bytes()
    (repo / "calc.py").write_text("fixed\n")
    ctx.record_write("calc.py", before, b"fixed\n")
    report = git_tools.commit_agent_changes(ctx, "Fix calc")
    assert report.files == ["calc.py"]
    assert "vendor/lib/" in report.skipped and "nested repository" in report.skipped["vendor/lib/"]
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD").split() == ["README.md", "calc.py", "notes.txt"]
    assert markers(tmp_path) == []


def test_an_agent_edit_inside_a_nested_repository_is_not_committed_into_the_outer_one(repo, tmp_path):
    nested = _embedded_repo_with_filter(repo, tmp_path, commit_gitlink=False)
    ctx = ToolContext(workspace=repo)
    ctx.record_write("vendor/lib/code.py", (nested / "code.py").read_bytes(), b"agent\n")
    (nested / "code.py").write_bytes(b"agent\n")
    ctx.record_write("calc.py", (repo / "calc.py").read_bytes(), b"fixed\n")
    (repo / "calc.py").write_bytes(b"fixed\n")
    report = git_tools.commit_agent_changes(ctx, "x")
    assert report.files == ["calc.py"] and "nested repository" in report.skipped["vendor/lib/code.py"]
    assert markers(tmp_path) == []


def test_a_commondir_file_in_git_cannot_redirect_git(repo, tmp_path):
    elsewhere = make_repo(tmp_path / "attacker")
    (repo / ".git" / "commondir").write_text(str(elsewhere / ".git") + "\n")
    with pytest.raises(UnsafeRepository, match="commondir"):
        run_git(repo, "status")


def _repository_owned_by_someone_else(repo: Path) -> Path:
    """`repo` handed to nobody (real root), or this project's own checkout when someone else owns it
    (the unprivileged CI run, as nobody, over root's checkout); skipped where neither exists."""
    if can_become_nobody():
        for path in [repo / ".git", *(repo / ".git").rglob("*")]:
            os.lchown(path, 65534, 65534)
        return repo
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / ".git").is_dir() and (checkout / ".git").stat().st_uid != os.geteuid():
        return checkout
    pytest.skip(NEEDS_ANOTHER_USER)


def test_a_repository_owned_by_someone_else_is_refused_unless_the_user_trusts_it(repo, tmp_path, monkeypatch):
    """CVE-2022-24765: git skips its ownership check when GIT_DIR is set, so the runner makes it."""
    foreign = _repository_owned_by_someone_else(repo)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(UnsafeRepository, match="safe.directory"):
        run_git(foreign, "status")
    (home / ".gitconfig").write_text(f"[safe]\n\tdirectory = {foreign}\n")
    assert run_git(foreign, "status").ok


def test_a_commondir_link_or_fifo_is_refused_without_hanging(repo, tmp_path):
    (repo / ".git" / "commondir").symlink_to(tmp_path)
    with pytest.raises(UnsafeRepository):
        run_git(repo, "status")
    (repo / ".git" / "commondir").unlink()
    os.mkfifo(repo / ".git" / "commondir")
    with pytest.raises(UnsafeRepository):
        run_git(repo, "status")
