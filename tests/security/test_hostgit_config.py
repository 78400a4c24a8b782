"""A repository's git config names programs; host git (status, diff, commit, undo, file listing) runs none."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import evil_program, git, make_repo, make_stat_dirty, markers
from gptoss_agent.tools import git as git_tools
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.files import repo_files
from gptoss_agent.tools.host_git import HostGitError, UnsafeRepository, program_overrides, run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


def _every_host_operation(repo: Path) -> None:
    """What the agent does on the host over a session: scan, list, diff, commit its edit, undo it."""
    ctx = ToolContext(workspace=repo)
    git_tools.dirty_paths(repo)
    repo_files(repo)
    git_tools.current_branch(repo)
    before = (repo / "calc.py").read_bytes()
    after = before.replace(b"a - b", b"a + b")
    (repo / "calc.py").write_bytes(after)
    ctx.record_write("calc.py", before, after)
    git_tools.diff_text(repo)
    sha, files, _ = git_tools.commit_changes(ctx, "Fix add")
    assert files == ["calc.py"] and git(repo, "rev-parse", "HEAD").strip() == sha
    git_tools.diff_text(repo)
    assert "reverted" in git_tools.undo(ctx)
    assert (repo / "calc.py").read_bytes() == before


def _filter_everything(repo: Path, driver_kind: str = "filter", name: str = "x") -> None:
    (repo / ".gitattributes").write_text(f"* {driver_kind}={name}\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    for path in ("calc.py", "notes.txt", "README.md"):
        make_stat_dirty(repo / path)  # so the next status must re-read (and would re-filter) each file


@pytest.mark.parametrize("key", ["clean", "smudge", "process"])
def test_a_filter_the_repository_configures_never_runs(repo, tmp_path, key):
    _filter_everything(repo)
    git(repo, "config", f"filter.x.{key}", evil_program(tmp_path, key))
    _every_host_operation(repo)
    assert markers(tmp_path) == []


def test_a_required_filter_without_its_program_does_not_break_the_agent(repo, tmp_path):
    _filter_everything(repo)
    git(repo, "config", "filter.x.clean", evil_program(tmp_path, "clean"))
    git(repo, "config", "filter.x.required", "true")
    _every_host_operation(repo)
    assert markers(tmp_path) == []


@pytest.mark.parametrize("key", ["textconv", "command"])
def test_a_diff_driver_never_runs_for_the_diff_the_user_sees(repo, tmp_path, key):
    _filter_everything(repo, "diff", "y")
    git(repo, "config", f"diff.y.{key}", evil_program(tmp_path, key))
    _every_host_operation(repo)
    (repo / "calc.py").write_text("changed\n")
    assert "+changed" in git_tools.diff_text(repo)
    assert markers(tmp_path) == []


def test_an_external_diff_and_pagers_never_run(repo, tmp_path):
    git(repo, "config", "diff.external", evil_program(tmp_path, "external"))
    git(repo, "config", "core.pager", evil_program(tmp_path, "pager"))
    git(repo, "config", "pager.diff", evil_program(tmp_path, "pagerdiff"))
    git(repo, "config", "pager.status", "true")
    _every_host_operation(repo)
    (repo / "notes.txt").write_text("new notes\n")
    assert "+new notes" in git_tools.diff_text(repo)
    assert markers(tmp_path) == []


def test_signing_programs_never_run_and_the_commit_is_unsigned(repo, tmp_path):
    git(repo, "config", "commit.gpgsign", "true")
    git(repo, "config", "gpg.program", evil_program(tmp_path, "gpg"))
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "gpg.ssh.program", evil_program(tmp_path, "sshsign"))
    git(repo, "config", "log.showSignature", "true")
    _every_host_operation(repo)
    assert markers(tmp_path) == []


def test_hooks_never_run_on_commit_or_undo(repo, tmp_path):
    hooks = repo / ".git" / "hooks"
    for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction", "post-index-change",
                 "post-checkout", "prepare-commit-msg", "post-rewrite"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch '{tmp_path}/ran-{name}'\n")
        (hooks / name).chmod(0o755)
    custom = tmp_path / "myhooks"
    custom.mkdir()
    (custom / "reference-transaction").write_text(f"#!/bin/sh\ntouch '{tmp_path}/ran-hookspath'\n")
    (custom / "reference-transaction").chmod(0o755)
    git(repo, "config", "core.hooksPath", str(custom))
    _every_host_operation(repo)
    assert markers(tmp_path) == []


def test_fsmonitor_never_runs(repo, tmp_path):
    git(repo, "config", "core.fsmonitor", evil_program(tmp_path, "fsmonitor"))
    _every_host_operation(repo)
    assert markers(tmp_path) == []


def _filter_config(path: Path, tmp_path: Path) -> None:
    path.write_text(f"[filter \"inc\"]\n\tclean = {evil_program(tmp_path, 'included')}\n"
                    f"\tsmudge = {evil_program(tmp_path, 'included-smudge')}\n"
                    f"[core]\n\tfsmonitor = {evil_program(tmp_path, 'included-fsm')}\n")


@pytest.mark.parametrize("key", ["include.path", "includeIf.gitdir:{repo}/.git.path"])
def test_a_config_include_from_the_work_tree_is_refused_outright(repo, tmp_path, key):
    """The model can rewrite a work-tree file between the config listing and the git call it protects."""
    _filter_everything(repo, "filter", "inc")
    _filter_config(repo / "settings.gitconfig", tmp_path)
    git(repo, "config", key.format(repo=repo), "../settings.gitconfig")
    for operation in (git_tools.dirty_paths, git_tools.diff_text, git_tools.current_branch):
        with pytest.raises(git_tools.GitError, match="file in the work tree"):
            operation(repo)
    assert markers(tmp_path) == []


def test_an_include_not_yet_written_into_the_work_tree_is_refused_too(repo, tmp_path):
    git(repo, "config", "include.path", "../later.gitconfig")
    with pytest.raises(git_tools.GitError, match="file in the work tree"):
        git_tools.dirty_paths(repo)


def test_filters_from_an_included_file_outside_the_work_tree_never_run(repo, tmp_path):
    _filter_everything(repo, "filter", "inc")
    _filter_config(tmp_path / "outside.gitconfig", tmp_path)
    git(repo, "config", "include.path", str(tmp_path / "outside.gitconfig"))
    _every_host_operation(repo)
    assert markers(tmp_path) == []


def test_a_filter_added_after_start_is_caught_on_the_next_call(repo, tmp_path):
    ctx = ToolContext(workspace=repo)
    git_tools.dirty_paths(repo)
    _filter_everything(repo, "filter", "late")
    git(repo, "config", "filter.late.clean", evil_program(tmp_path, "late"))
    git_tools.dirty_paths(repo)
    git_tools.diff_text(repo)
    assert markers(tmp_path) == [] and ctx.changes == {}


def test_core_worktree_cannot_point_host_git_at_another_folder(repo, tmp_path):
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("user data")
    git(repo, "config", "core.worktree", str(elsewhere))
    assert "secret.txt" not in repo_files(repo)
    assert not any("secret" in p for p in git_tools.dirty_paths(repo))
    assert "calc.py" in repo_files(repo)


def test_the_agents_environment_cannot_steer_host_git(repo, tmp_path, monkeypatch):
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", evil_program(tmp_path, "envdiff"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.fsmonitor'='{evil_program(tmp_path, 'envfsm')}'")
    monkeypatch.setenv("GIT_PAGER", evil_program(tmp_path, "envpager"))
    (repo / "calc.py").write_text("x\n")
    assert git_tools.dirty_paths(repo) == {"calc.py"}
    assert "+x" in git_tools.diff_text(repo)
    assert markers(tmp_path) == []


def test_transports_and_unneeded_subcommands_are_refused(repo, tmp_path):
    git(repo, "config", "core.sshCommand", evil_program(tmp_path, "ssh"))
    git(repo, "remote", "add", "origin", "ssh://example.invalid/x.git")
    for args in (("push", "origin", "main"), ("fetch", "origin"), ("submodule", "update"), ("clone", "x")):
        with pytest.raises(HostGitError, match="refuses"):
            run_git(repo, *args)
    from gptoss_agent.tools.sandbox import run_trusted

    assert run_trusted(["git", "push", "origin", "main"], cwd=repo).returncode != 0
    assert markers(tmp_path) == []


def test_an_empty_override_really_disables_each_program_in_this_git(repo, tmp_path):
    """The design rests on git treating an empty command as 'none' or failing closed: check this git does."""
    _filter_everything(repo)
    git(repo, "config", "filter.x.clean", evil_program(tmp_path, "clean"))
    git(repo, "config", "filter.x.smudge", evil_program(tmp_path, "smudge"))
    git(repo, "config", "diff.x.textconv", evil_program(tmp_path, "textconv"))
    git(repo, "config", "diff.external", evil_program(tmp_path, "external"))
    overrides = program_overrides(subprocess.run(["git", "config", "--list", "-z"], cwd=repo,
                                                 capture_output=True).stdout)
    flags = [arg for key, value in overrides for arg in ("-c", f"{key}={value}")]
    for args in (["status", "--porcelain"], ["diff", "HEAD"], ["cat-file", "--filters", "HEAD:calc.py"],
                 ["log", "-p", "-1"]):
        subprocess.run(["git", *flags, *args], cwd=repo, capture_output=True)
    assert markers(tmp_path) == []
    subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert markers(tmp_path) == ["ran-clean"]  # the same repository, with plain git: the attack is real


def test_a_config_naming_thousands_of_programs_is_refused_not_half_neutralised(repo):
    lines = "".join(f"[filter \"f{i}\"]\n\tclean = x\n" for i in range(2_100))
    with open(repo / ".git" / "config", "a") as handle:
        handle.write(lines)
    with pytest.raises(UnsafeRepository, match="names .* programs"):
        run_git(repo, "status")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_config_include_that_never_ends_is_stopped_in_bounded_time(repo, tmp_path):
    fifo = tmp_path / "hang"
    os.mkfifo(fifo)
    git(repo, "config", "include.path", str(fifo))
    with pytest.raises(HostGitError, match="took too long"):
        run_git(repo, "status", timeout_s=1.5)
