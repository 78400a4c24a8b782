"""Regressions for the attacks on the overlay carry (attack report A1): real bubblewrap, overlay and git.

Each test is one way the carry once lost or misattributed the user's work: a folder
the user moved into one the command deleted, a mount appearing in the tree, a save
landing between the check and the replace, the user's edit moved by the command into
a new file, a carry failing half-way, contents too large to keep for /undo, a file
replaced by a link, a folder the user deleted coming back. Where a race has to be
placed exactly, the real carry runs and only the moment of the user's save is chosen
(a hook on the rename it is about to make).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git
from tests.security.test_worksafety_overlay import committed, ctx, repo, run_while_user_edits  # noqa: F401
from gptoss_agent.tools import attribution
from gptoss_agent.tools.sandbox import overlay as sandbox_overlay, overlay_changes, overlay_fs
from gptoss_agent.tools import git as git_tools


def conflicts(result, path: str) -> list[str]:
    return [note for note in result.notes if note.startswith(f"conflict: {path}:")]


def run(ctx, script: str, **options):
    with attribution.recording(ctx):
        return ctx.sandbox.run(["sh", "-c", script], timeout_s=options.pop("timeout_s", 30), **options)


# -- 2: a deletion is carried only where it is provably the command's

def test_a_folder_the_user_moves_into_one_the_command_deletes_is_kept(ctx, repo, tmp_path):
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("object\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "build")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "diary.txt").write_text("my precious notes\n")
    os.utime(notes / "diary.txt", (1, 1))

    result = run_while_user_edits(ctx, tmp_path, before="rm -rf build",
                                  user_edit=lambda: os.rename(notes, repo / "build" / "notes"))
    assert result.exit_code == 0, result.output
    assert (repo / "build" / "notes" / "diary.txt").read_text() == "my precious notes\n"
    assert conflicts(result, "build"), result.notes
    assert "build/notes/diary.txt" not in ctx.changes


def test_a_folder_nobody_touched_is_still_deleted_by_the_command(ctx, repo):
    result = run(ctx, "rm -rf docs")
    assert result.exit_code == 0 and not (repo / "docs").exists(), result.notes
    assert ctx.changes["docs/a.md"].after is None


# -- 3: mounts inside the work tree

def _mount_tmpfs(target: Path) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")


def test_a_mount_appearing_after_the_probe_turns_the_overlay_off_for_the_next_command(ctx, repo):
    assert ctx.sandbox.exact_attribution
    (repo / "data").mkdir()
    _mount_tmpfs(repo / "data")
    try:
        assert not ctx.sandbox.exact_attribution
        assert not sandbox_overlay.usable(repo)[0] and "mounted inside" in sandbox_overlay.usable(repo)[1]
        exact = [p for p in ctx.sandbox.properties() if p.name.startswith("exact attribution")]
        assert exact and not exact[0].holds and "mounted inside" in exact[0].detail
    finally:
        subprocess.run(["umount", str(repo / "data")], check=True)
    assert ctx.sandbox.exact_attribution


def test_a_deletion_is_never_carried_across_a_mount_that_appeared_during_the_command(ctx, repo, tmp_path):
    (repo / "data").mkdir()
    (repo / "data" / "old.txt").write_text("under the mount\n")
    mounted = []

    def user_mounts() -> None:
        if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(repo / "data")]).returncode == 0:
            mounted.append(True)
            (repo / "data" / "precious.db").write_text("user data\n")

    try:
        result = run_while_user_edits(ctx, tmp_path, after="rm -rf data", user_edit=user_mounts)
        if not mounted:
            pytest.skip("cannot mount here")
        assert (repo / "data" / "precious.db").read_text() == "user data\n"
        assert any("mounted there" in note for note in result.notes), result.notes
    finally:
        if mounted:
            subprocess.run(["umount", str(repo / "data")], check=True)


# -- 4: a save between the check and the replace

@pytest.mark.parametrize("how", ["in place", "by rename"])
def test_a_save_landing_while_the_carry_replaces_the_file_is_kept(ctx, repo, monkeypatch, how):
    real = overlay_changes.rename2
    saved = []

    def user_saves_first(src_dir, src, dst_dir, dst, flags):
        if flags == overlay_changes.RENAME_EXCHANGE and dst == "notes.txt" and not saved:
            saved.append(how)
            if how == "in place":
                with open(repo / "notes.txt", "r+") as handle:
                    handle.truncate(0)
                    handle.write("USER SAVED THIS\n")
            else:
                (repo / "notes.tmp").write_text("USER SAVED THIS\n")
                os.rename(repo / "notes.tmp", repo / "notes.txt")
        return real(src_dir, src, dst_dir, dst, flags)

    monkeypatch.setattr(overlay_changes, "rename2", user_saves_first)
    result = run(ctx, "echo agent > notes.txt")
    assert saved, result.notes
    assert (repo / "notes.txt").read_text() == "USER SAVED THIS\n"
    conflict = conflicts(result, "notes.txt")
    assert conflict and "being carried" in conflict[0], result.notes
    assert Path(conflict[0].rsplit(" kept at ", 1)[1]).read_text() == "agent\n"
    assert "notes.txt" not in ctx.changes
    assert not [p for p in os.listdir(repo) if p.endswith(".gptoss-tmp")]


def test_a_save_landing_while_the_carry_deletes_the_file_is_kept(ctx, repo, monkeypatch):
    real_rename = os.rename
    saved = []

    def user_saves_first(src, dst, *args, **kwargs):
        if src == "notes.txt" and str(dst).endswith(".gptoss-tmp") and not saved:
            saved.append(True)
            with open(repo / "notes.txt", "a") as handle:
                handle.write("USER SAVED THIS\n")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(overlay_changes.os, "rename", user_saves_first)
    result = run(ctx, "rm notes.txt")
    assert saved
    assert (repo / "notes.txt").read_text() == "plain notes\nUSER SAVED THIS\n"
    assert conflicts(result, "notes.txt"), result.notes
    assert "notes.txt" not in ctx.changes


# -- 5: the user's edit, moved or copied by the command into a new file, is not the agent's

@pytest.mark.parametrize("command", ["mv notes.txt moved.txt", "cp notes.txt copied.txt"])
def test_a_new_file_made_from_the_users_edit_is_a_conflict_not_the_agents(ctx, repo, tmp_path, command):
    mine = "plain notes\nAPI_TOKEN = 'user-only-do-not-commit'\n"
    result = run_while_user_edits(ctx, tmp_path, after=command,
                                  user_edit=lambda: (repo / "notes.txt").write_text(mine))
    assert result.exit_code == 0, result.output
    made = command.split()[-1]
    assert conflicts(result, made), result.notes
    assert not (repo / made).exists()
    assert (repo / "notes.txt").read_text() == mine
    assert made not in ctx.changes
    with pytest.raises(git_tools.GitError):
        git_tools.commit_changes(ctx, "nothing of the user's")


def test_a_file_the_command_moves_that_the_user_did_not_touch_is_the_agents(ctx, repo):
    result = run(ctx, "mv notes.txt moved.txt")
    assert result.exit_code == 0 and not result.notes, result.notes
    assert (repo / "moved.txt").read_text() == "plain notes\n"
    _, files, _ = git_tools.commit_changes(ctx, "Move notes")
    assert files == ["moved.txt", "notes.txt"]


# -- 6: a carry that fails half-way

def test_an_entry_that_cannot_be_carried_is_kept_and_everything_else_is_recorded(ctx, repo, monkeypatch):
    real = overlay_changes._Applier.leaf

    def failing(self, path, layer, host, name, *rest):
        if name == "b.txt":
            raise OSError(36, "File name too long")
        return real(self, path, layer, host, name, *rest)

    monkeypatch.setattr(overlay_changes._Applier, "leaf", failing)
    result = run(ctx, "echo agent > README.md; echo b > b.txt; echo agent > notes.txt")
    assert (repo / "README.md").read_text() == "agent\n" and (repo / "notes.txt").read_text() == "agent\n"
    assert sorted(ctx.changes) == ["README.md", "notes.txt"]
    left = [note for note in result.notes if note.startswith("could not be carried")]
    assert left and "b.txt (File name too long)" in left[0], result.notes
    kept = Path(left[0].rsplit("; kept at ", 1)[1])
    assert (kept / "b.txt").read_text() == "b\n"
    assert "restored" in git_tools.undo(ctx)
    assert (repo / "README.md").read_text() == "# project\n"
    sandbox_overlay.remove_tree(kept.parent)


def test_folders_the_command_leaves_without_permissions_are_carried_and_recorded(ctx, repo):
    result = run(ctx, "echo agent > README.md; mkdir m && echo x > m/f && chmod 555 m; "
                      "mkdir n && echo y > n/g && chmod 000 n")
    assert result.exit_code == 0 and not result.notes, result.notes
    assert oct((repo / "m").stat().st_mode & 0o777) == "0o555" and oct((repo / "n").stat().st_mode & 0o777) == "0o0"
    os.chmod(repo / "n", 0o700)
    assert (repo / "m" / "f").read_text() == "x\n" and (repo / "n" / "g").read_text() == "y\n"
    assert {"README.md", "m/f"} <= set(ctx.changes)  # n/g too where git could list n (as root)
    os.chmod(repo / "m", 0o755)
    assert "restored" in git_tools.undo(ctx)
    assert (repo / "README.md").read_text() == "# project\n"


def test_past_the_time_limit_nothing_more_is_carried_and_the_layer_is_named(ctx, repo, monkeypatch):
    monkeypatch.setattr(overlay_changes, "CARRY_SECONDS", 0.0)
    result = run(ctx, "echo agent > README.md")
    assert (repo / "README.md").read_text() == "# project\n" and not ctx.changes
    left = [note for note in result.notes if note.startswith("could not be carried")]
    assert left and "the carry stopped" in left[0], result.notes
    kept = Path(left[0].rsplit("; kept at ", 1)[1])
    assert (kept / "README.md").read_text() == "agent\n"
    sandbox_overlay.remove_tree(kept.parent)


# -- 7: nothing /undo cannot reverse

@pytest.mark.parametrize("spent", ["new files spend the budget first", "the user's file is over the budget"])
def test_a_users_file_is_never_overwritten_where_undo_could_not_bring_it_back(ctx, repo, monkeypatch, spent):
    mine = "USER'S UNCOMMITTED WORK\n"
    (repo / "notes.txt").write_text(mine)
    if spent.startswith("new files"):
        monkeypatch.setattr(overlay_changes, "AFTER_BUDGET", 4096)
        script = "for i in 1 2 3 4; do head -c 2048 /dev/zero > 0pad$i; done; echo gone > notes.txt"
    else:
        monkeypatch.setattr(overlay_changes, "BEFORE_BUDGET", 10)
        script = "echo gone > notes.txt"
    result = run(ctx, script)
    if (repo / "notes.txt").read_text() == "gone\n":
        assert ctx.changes["notes.txt"].before == mine.encode()
        git_tools.undo(ctx)
    else:
        assert conflicts(result, "notes.txt"), result.notes
    assert (repo / "notes.txt").read_text() == mine


def test_a_file_too_large_to_keep_is_not_deleted(ctx, repo, monkeypatch):
    monkeypatch.setattr(overlay_changes, "FILE_CAP", 8)
    result = run(ctx, "rm notes.txt")
    assert (repo / "notes.txt").read_text() == "plain notes\n"
    assert conflicts(result, "notes.txt") and "too large" in conflicts(result, "notes.txt")[0]


def test_a_users_file_is_never_replaced_by_a_link_and_a_later_link_does_not_block_undo(ctx, repo):
    mine = "USER'S UNCOMMITTED WORK\n"
    (repo / "notes.txt").write_text(mine)
    result = run(ctx, "ln -sf README.md notes.txt")
    assert not (repo / "notes.txt").is_symlink() and (repo / "notes.txt").read_text() == mine
    assert conflicts(result, "notes.txt"), result.notes

    run(ctx, "echo agent > README.md")
    result = run(ctx, "ln -sf /dev/null README.md")
    assert conflicts(result, "README.md") and not (repo / "README.md").is_symlink()
    assert "restored" in git_tools.undo(ctx)
    assert (repo / "README.md").read_text() == "# project\n" and (repo / "notes.txt").read_text() == mine


def test_a_recorded_file_replaced_by_a_folder_is_a_conflict_and_undo_still_works(ctx, repo):
    run(ctx, "echo agent > README.md")
    result = run(ctx, "rm README.md && mkdir README.md && echo x > README.md/f")
    assert conflicts(result, "README.md") and (repo / "README.md").read_text() == "agent\n", result.notes
    assert "restored" in git_tools.undo(ctx)
    assert (repo / "README.md").read_text() == "# project\n"


def test_a_new_link_where_nothing_was_is_still_carried_as_a_link(ctx, repo):
    result = run(ctx, "ln -s README.md readme-link")
    assert os.readlink(repo / "readme-link") == "README.md", result.notes


# -- 8: a folder the user deleted during the command

def test_a_folder_the_user_deletes_while_the_command_writes_in_it_does_not_come_back(ctx, repo, tmp_path):
    import shutil

    result = run_while_user_edits(ctx, tmp_path, before="echo 'doc a, v2' > docs/a.md",
                                  user_edit=lambda: shutil.rmtree(repo / "docs"))
    assert not (repo / "docs").exists()
    conflict = conflicts(result, "docs")
    assert conflict and "deleted or moved by you" in conflict[0], result.notes
    assert Path(conflict[0].rsplit(" kept at ", 1)[1], "a.md").read_text() == "doc a, v2\n"
    assert not ctx.changes


# -- lower severity: sparse files, killed agents' layers

def test_a_sparse_file_is_copied_hole_by_hole_and_the_bytes_copied_are_capped(tmp_path):
    source = tmp_path / "sparse"
    with open(source, "wb") as handle:
        handle.truncate(256 * 2**20)
        handle.seek(128 * 2**20)
        handle.write(b"data" * 1024)
    if os.stat(source).st_blocks * 512 > 2**20:
        pytest.skip("this file system does not keep holes")
    src = os.open(source, os.O_RDONLY)
    dst = os.open(tmp_path / "copy", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        left = overlay_fs.copy_sparse(src, dst, 2**20)
    finally:
        os.close(dst)
    copy = tmp_path / "copy"
    assert copy.stat().st_size == 256 * 2**20 and copy.stat().st_blocks * 512 < 2**20
    assert left >= 2**20 - 64 * 2**10
    with open(copy, "rb") as handle:
        handle.seek(128 * 2**20)
        assert handle.read(4096) == b"data" * 1024
    dst = os.open(tmp_path / "copy2", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError):
            overlay_fs.copy_sparse(src, dst, 100)
    finally:
        os.close(dst)
        os.close(src)


def test_layers_of_a_killed_agent_are_swept_and_kept_writes_are_named_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_overlay, "_STALE_SWEPT", [])
    monkeypatch.setattr(sandbox_overlay, "_STALE_TOLD", False)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = sandbox_overlay._owner_of(child.pid)
    child.communicate(b"")
    base = tmp_path / "overlay"
    owners = {"cmd-alive": sandbox_overlay._owner_of(os.getpid()), "cmd-other-namespace": "1 1 1"}
    for name, writes in (("cmd-empty", False), ("cmd-wrote", True), ("cmd-alive", True),
                         ("cmd-other-namespace", False)):
        (base / name / "upper").mkdir(parents=True)
        (base / name / "owner").write_text(owners.get(name, owner))
        if writes:
            (base / name / "upper" / "work.py").write_text("x = 1\n")
    kept = sandbox_overlay.sweep_stale(base)
    assert kept == [base / "cmd-wrote" / "upper"]
    assert sorted(p.name for p in base.iterdir()) == ["cmd-alive", "cmd-other-namespace", "cmd-wrote"]
    notice = sandbox_overlay.stale_notice()
    assert notice and str(base / "cmd-wrote" / "upper") in notice
    assert sandbox_overlay.stale_notice() is None
    monkeypatch.setattr(sandbox_overlay, "_STALE_SWEPT", [])  # the next start: told already, not again
    monkeypatch.setattr(sandbox_overlay, "_STALE_TOLD", False)
    assert sandbox_overlay.sweep_stale(base) == [] and sandbox_overlay.stale_notice() is None
    assert (base / "cmd-wrote" / "upper" / "work.py").exists()


def test_many_new_files_are_recorded_in_one_pass_and_ignored_ones_left_out(ctx, repo):
    (repo / ".gitignore").write_text("out/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "ignore out")
    attribution.start_session(ctx)
    result = run(ctx, "mkdir -p gen/a gen/b out && for i in $(seq 400); do echo $i > gen/a/$i.py; "
                      "echo $i > gen/b/$i.py; echo $i > out/$i.o; done")
    assert result.exit_code == 0, result.output
    assert len(ctx.changes) == 800 and all(path.startswith("gen/") for path in ctx.changes)
