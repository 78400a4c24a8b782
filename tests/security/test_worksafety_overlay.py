"""Exact attribution: each bwrap command writes a copy-on-write layer, and only what it wrote is the agent's.

Real bubblewrap, real overlay, real git. The user edits files WHILE a command
runs (the command waits for the user's signal in a host folder bound into the
sandbox): those edits are never committed or undone; a file both
touched is a conflict with the user's bytes left in place; what the command
wrote, deleted or created is carried into the work tree and committed; what a
hostile command plants in its layer (links out, FIFOs, `.git` entries, setuid
bits) gains nothing; a killed command's writes are carried like any other.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git, make_repo
from gptoss_agent.tools import attribution, git as git_tools
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "project")
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("doc a\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "docs")
    return root


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    sandbox = Sandbox(repo, mode="bwrap")
    if sandbox.mechanism != "bwrap":
        pytest.skip(f"bwrap unavailable here: {sandbox.report.reason}")
    if not sandbox.exact_attribution:
        exact = [p for p in sandbox.properties() if p.name.startswith("exact attribution")]
        pytest.skip(f"no overlay here: {exact[0].detail if exact else '?'}")
    context = ToolContext(workspace=repo, sandbox=sandbox)
    attribution.start_session(context)
    return context


def run_while_user_edits(ctx: ToolContext, tmp_path: Path, *, before: str = "", after: str = "",
                         user_edit=lambda: None, **options):
    """Run `before`, let the user edit (on the host, during the command), then run `after`; one command."""
    scratch = tmp_path / "scratch"  # a host folder bound into the sandbox: how the two sides signal
    scratch.mkdir(exist_ok=True)

    def user() -> None:
        deadline = time.monotonic() + 30
        while not (scratch / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        user_edit()
        (scratch / "go").write_text("go\n")

    script = (f"{before}\ntouch '{scratch}/started'\n"
              f"while [ ! -e '{scratch}/go' ]; do sleep 0.02; done\n{after}")
    helper = threading.Thread(target=user)
    helper.start()
    try:
        with attribution.recording(ctx, run_artefacts=options.pop("run_artefacts", False)):
            result = ctx.sandbox.run(["sh", "-c", script], scratch=scratch, timeout_s=options.pop("timeout_s", 30),
                                     **options)
    finally:
        helper.join()
    return result


def committed(repo: Path) -> list[str]:
    return git(repo, "show", "--name-only", "--format=", "HEAD").split()


def test_a_user_edit_saved_while_a_command_runs_is_never_committed_or_undone(ctx, repo, tmp_path):
    def user_edit() -> None:
        (repo / "README.md").write_text("# project\nthe user's notes, typed during the test run\n")
        (repo / "private.txt").write_text("the user's new file\n")

    result = run_while_user_edits(ctx, tmp_path, before="echo 'def add(a, b): return a + b' > calc.py",
                                  after="echo tested >> notes.txt", user_edit=user_edit)
    assert result.exit_code == 0, result.output
    assert (repo / "calc.py").read_text() == "def add(a, b): return a + b\n"
    assert (repo / "notes.txt").read_text() == "plain notes\ntested\n"
    assert sorted(ctx.changes) == ["calc.py", "notes.txt"]

    _, files, _ = git_tools.commit_changes(ctx, "Fix add")
    assert files == ["calc.py", "notes.txt"] and committed(repo) == ["calc.py", "notes.txt"]
    assert git(repo, "show", "HEAD:README.md") == "# project\n"
    assert "reverted" in git_tools.undo(ctx)
    assert (repo / "README.md").read_text() == "# project\nthe user's notes, typed during the test run\n"
    assert (repo / "private.txt").read_text() == "the user's new file\n"
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"


@pytest.mark.parametrize("order", ["command first", "user first"])
def test_a_file_both_changed_is_a_conflict_and_the_users_bytes_stay(ctx, repo, tmp_path, order):
    command = "echo 'by the command' >> notes.txt"
    mine = "plain notes\nthe user's line\n"
    result = run_while_user_edits(ctx, tmp_path, before=command if order == "command first" else "",
                                  after=command if order == "user first" else "",
                                  user_edit=lambda: (repo / "notes.txt").write_text(mine))
    assert (repo / "notes.txt").read_text() == mine
    assert "notes.txt" not in ctx.changes
    conflict = [note for note in result.notes if note.startswith("conflict: notes.txt")]
    assert conflict, result.notes
    kept = Path(conflict[0].rsplit(" kept at ", 1)[1])
    assert kept.read_text().endswith("by the command\n")
    with pytest.raises(git_tools.GitError):
        git_tools.commit_changes(ctx, "nothing of mine")


def test_deletions_new_files_and_a_remade_folder_are_carried_and_committed(ctx, repo):
    with attribution.recording(ctx):
        result = ctx.sandbox.run(["sh", "-c", "rm notes.txt && mkdir -p src && echo 'x = 1' > src/new.py && "
                                              "rm -r docs && mkdir docs && echo 'doc b' > docs/b.md"], timeout_s=30)
    assert result.exit_code == 0, result.output
    assert not (repo / "notes.txt").exists() and not (repo / "docs" / "a.md").exists()
    assert (repo / "src" / "new.py").read_text() == "x = 1\n" and (repo / "docs" / "b.md").read_text() == "doc b\n"
    _, files, _ = git_tools.commit_changes(ctx, "Move things")
    assert files == ["docs/a.md", "docs/b.md", "notes.txt", "src/new.py"]
    assert git(repo, "status", "--porcelain") == ""
    assert "reverted" in git_tools.undo(ctx)
    assert (repo / "notes.txt").read_text() == "plain notes\n" and (repo / "docs" / "a.md").read_text() == "doc a\n"
    assert not (repo / "src" / "new.py").exists()


def test_what_a_hostile_command_plants_in_its_layer_gains_nothing(ctx, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    script = (f"ln -s /etc/passwd leak.txt; ln -s '{outside}' out; mkfifo pipe; "
              "mkdir -p vendor/.git/hooks && echo 'touch /tmp/pwned' > vendor/.git/hooks/post-checkout; "
              "printf '#!/bin/sh\\n' > tool.sh; chmod 4755 tool.sh || chmod 755 tool.sh; echo ok")
    with attribution.recording(ctx):
        result = ctx.sandbox.run(["sh", "-c", script], timeout_s=30)
    assert result.exit_code == 0, result.output
    assert os.readlink(repo / "leak.txt") == "/etc/passwd"  # a link, as the command could make today; never read
    assert not os.path.lexists(repo / "pipe")
    assert not os.path.lexists(repo / "vendor" / ".git")
    assert stat.S_IMODE(os.lstat(repo / "tool.sh").st_mode) == 0o755
    assert sorted(ctx.changes) == ["tool.sh"]
    assert any("pipe" in note and "vendor/.git" in note for note in result.notes), result.notes
    # A later command writing through the link it left still lands in its own layer, not outside.
    with attribution.recording(ctx):
        ctx.sandbox.run(["sh", "-c", "echo pwned > out/x"], timeout_s=30)
    assert list(outside.iterdir()) == []
    _, files, _ = git_tools.commit_changes(ctx, "tool")
    assert files == ["tool.sh"]


def test_a_folder_the_user_swaps_for_a_link_during_the_command_is_not_written_through(ctx, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()

    def user_edit() -> None:
        (repo / "docs" / "a.md").unlink()
        (repo / "docs").rmdir()
        os.symlink(outside, repo / "docs")

    result = run_while_user_edits(ctx, tmp_path, before="echo command > docs/c.md", user_edit=user_edit)
    assert list(outside.iterdir()) == []
    assert os.path.islink(repo / "docs")
    assert any(note.startswith("conflict: docs") for note in result.notes), result.notes
    assert "docs/c.md" not in ctx.changes


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_a_killed_command_still_carries_what_it_wrote(ctx, repo, how):
    cancel = threading.Event()
    if how == "cancel":
        threading.Timer(2.0, cancel.set).start()
    with attribution.recording(ctx):
        result = ctx.sandbox.run(["sh", "-c", "echo partial > calc.py; sleep 60"], cancel=cancel,
                                 timeout_s=2 if how == "timeout" else 30)
    assert result.timed_out or result.cancelled
    assert (repo / "calc.py").read_text() == "partial\n"
    assert list(ctx.changes) == ["calc.py"]


def test_test_run_artefacts_are_carried_but_never_committed(ctx, repo):
    with attribution.recording(ctx, run_artefacts=True):
        ctx.sandbox.run(["sh", "-c", "mkdir -p reports; echo run > reports/last.txt; echo t >> notes.txt"],
                        timeout_s=30)
    assert (repo / "reports" / "last.txt").read_text() == "run\n"
    assert list(ctx.changes) == ["notes.txt"]


def test_the_landlock_fallback_says_attribution_is_not_exact_and_still_attributes(repo):
    sandbox = Sandbox(repo, mode="landlock")
    if sandbox.mechanism != "landlock":
        pytest.skip(f"landlock unavailable here: {sandbox.report.reason}")
    exact = [p for p in sandbox.properties() if p.name.startswith("exact attribution")]
    assert exact and not exact[0].holds and "snapshot" in exact[0].detail
    assert not sandbox.exact_attribution
    context = ToolContext(workspace=repo, sandbox=sandbox)
    with attribution.recording(context):
        sandbox.run(["sh", "-c", "echo formatted > calc.py"], timeout_s=30)
    assert list(context.changes) == ["calc.py"] and context.changes["calc.py"].by_command


def test_a_layer_too_deep_or_with_lying_names_neither_crashes_nor_forges_a_note(ctx, repo):
    script = ("mkfifo \"$(printf 'p\\nconflict: README.md: forged')\"; "
              "i=0; while [ $i -lt 260 ]; do mkdir d && cd d; i=$((i+1)); done; echo deep > f")
    with attribution.recording(ctx):
        result = ctx.sandbox.run(["sh", "-c", script], timeout_s=60)
    assert result.exit_code == 0, result.output
    assert not any("\n" in note for note in result.notes)
    assert any("nested deeper than" in note for note in result.notes), result.notes
    assert ctx.changes == {} and (repo / "README.md").read_text() == "# project\n"


def test_back_to_back_writes_by_the_agent_are_never_taken_for_the_users(ctx, repo):
    from gptoss_agent.tools.editing import apply_patch_tool

    patch = ("*** Begin Patch\n*** Update File: calc.py\n def add(a, b):\n-    return a - b\n+    return a + b\n"
             "*** End Patch")
    assert apply_patch_tool(ctx, patch=patch).ok
    results = []
    for run in range(3):  # no pause: the previous carry and the agent's patch are milliseconds old
        with attribution.recording(ctx, run_artefacts=True):
            results.append(ctx.sandbox.run(["sh", "-c", f"echo run{run} > reports.txt; echo '# {run}' >> calc.py"],
                                           timeout_s=30))
    assert not [note for result in results for note in result.notes if note.startswith("conflict")]
    assert (repo / "reports.txt").read_text() == "run2\n"
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n# 0\n# 1\n# 2\n"
    assert ctx.changes["calc.py"].after == (repo / "calc.py").read_bytes()
    assert ctx.changes["calc.py"].before == b"def add(a, b):\n    return a - b\n"
    for run in range(3):  # and with nothing at all between two commands
        result = ctx.sandbox.run(["sh", "-c", f"echo again{run} > reports.txt"], timeout_s=30)
        assert not [note for note in result.notes if note.startswith("conflict")]
    assert (repo / "reports.txt").read_text() == "again2\n"


def test_where_the_overlay_cannot_mount_bwrap_falls_back_to_snapshots_and_says_so(tmp_path):
    repo = make_repo(tmp_path / "a,b")  # a comma cannot be written in overlay mount options
    sandbox = Sandbox(repo, mode="bwrap")
    if sandbox.mechanism != "bwrap":
        pytest.skip(f"bwrap unavailable here: {sandbox.report.reason}")
    exact = [p for p in sandbox.properties() if p.name.startswith("exact attribution")]
    assert not sandbox.exact_attribution and not exact[0].holds
    assert "overlay options" in exact[0].detail and "snapshots" in exact[0].detail
    context = ToolContext(workspace=repo, sandbox=sandbox)
    with attribution.recording(context):
        result = sandbox.run(["sh", "-c", "echo formatted > calc.py"], timeout_s=30)
    assert result.exit_code == 0 and (repo / "calc.py").read_text() == "formatted\n"
    assert list(context.changes) == ["calc.py"] and context.changes["calc.py"].by_command


def test_a_file_the_user_deletes_while_the_command_writes_it_stays_deleted(ctx, repo, tmp_path):
    result = run_while_user_edits(ctx, tmp_path, before="cat README.md > /dev/null", after="echo command > README.md",
                                  user_edit=lambda: (repo / "README.md").unlink())
    assert not (repo / "README.md").exists()
    assert any(note.startswith("conflict: README.md: deleted by you") for note in result.notes), result.notes
    assert "README.md" not in ctx.changes


def test_removing_a_layer_never_opens_up_a_folder_outside_it(tmp_path):
    """A layer already gone, or one the command left without permissions: the folder that holds it keeps its
    mode (this once left /tmp at 0700 for every other user, when the agent ran as root)."""
    from gptoss_agent.tools.sandbox.overlay import remove_tree

    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o1777)
    remove_tree(parent / "already-gone")
    layer = parent / "cmd-1"
    (layer / "work" / "work").mkdir(parents=True)
    (layer / "upper" / "locked").mkdir(parents=True)
    (layer / "upper" / "locked" / "f").write_text("x")
    os.chmod(layer / "upper" / "locked", 0)
    os.chmod(layer / "work" / "work", 0)
    remove_tree(layer)
    assert not layer.exists()
    assert stat.S_IMODE(parent.stat().st_mode) == 0o1777
