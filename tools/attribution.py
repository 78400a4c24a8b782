"""Which files the agent's commands wrote: exactly, from each command's overlay, or by snapshots.

The agent's patches record their own writes (ToolContext.record_write). A
command (`container.exec`, `run_tests`) can write files too.

Exact (bubblewrap, where tools.sandbox_overlay's probe holds): each command
runs on a copy-on-write view of the work tree, so it never writes the work tree
itself; afterwards its upper layer, which holds exactly what it wrote, is
carried into the work tree by tools.overlay_changes and handed here. Only
those files are recorded. A file the user edits while the command runs is not
in that layer: never committed, never undone. A file both changed is a
conflict: the user's version stays, the command's is kept aside and named in
the command's result, and nothing is recorded for it. No walk of the work tree
is needed before or after the command.

By snapshots (the Landlock fallback, `--sandbox none`, or where the overlay
cannot work; `gptoss-agent doctor` says which): around each command this
module takes a snapshot of EVERY file under the work tree,
ignored or not (path → size, mtime, ctime, inode, mode; read without following
links; `.git` entries, nested repositories and any folder that is itself a git
directory left out), plus the content of every changed or untracked file
(so undo can restore it). A file whose stat data is unchanged is not the
command's; one whose stat data changed is read and recorded only when its
content differs, with its exact before-content. Limit of this mode, said
plainly: a file the user edits *during* a command is indistinguishable here
from one the command wrote. Such a file is at least never lost: undo restores
the before-content only if the file still holds what the command left, and
commit refuses any file whose content changed afterwards.

In both modes: a command that edits `.gitignore` cannot make the user's ignored
`.env` look new; a folder holding a nested repository or a git directory is
never work; a file whose before-content is unknown (ignored, a link, a special
file, over the size cap) is never recorded, nor is a new file the ignore rules
hide (build output, `npm install`). The ignore rules as they were at session
start are kept (`start_session`) so a commit never includes a file they ignore,
however `.gitignore` was changed since.

Run artefacts are left out: files that did not exist before a `run_tests` call
are not recorded (reports, caches), so they are never committed; they stay in
the work tree.
"""

from __future__ import annotations

import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from gptoss_agent.tools import worktree_io
from gptoss_agent.tools.sandbox import overlay as sandbox_overlay, overlay_changes
from gptoss_agent.tools.host_git import HostGitError, pin, run_git

FILE_CAP = 16 * 2**20
SNAPSHOT_CAP = 256 * 2**20
RACY_NS = 2_000_000_000  # files changed more recently than this are always re-read
MAX_WALKED = 1_000_000  # a work tree with more entries than this is not attributed at all (nothing recorded)


@dataclass(frozen=True)
class Snapshot:
    """Changed and untracked files (path → bytes, None when deleted), and what could not be captured."""

    files: dict[str, bytes | None] = field(default_factory=dict)
    untracked: frozenset[str] = frozenset()
    uncaptured: frozenset[str] = frozenset()  # links, special files, files over the caps, nested repositories
    ok: bool = True
    stats: dict[str, tuple[int, ...]] = field(default_factory=dict)  # every file: path → stat signature


def start_session(ctx) -> None:
    """At session start: pin the repository's git directory and keep which files the ignore rules exclude.

    Pinning (tools.host_git.pin) makes a `.git` the model repoints stop host git instead of
    redirecting it. The ignored set (files, and folders ending in '/') is what `ignored_at_start`
    consults, so emptying `.gitignore` later never makes the user's ignored files committable.
    """
    pin(ctx.workspace)
    ctx.ignored_at_start = _ignored_now(ctx.workspace)


def _ignored_now(workspace: Path) -> frozenset[str]:
    done = run_git(workspace, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory",
                   check=True)
    return frozenset(p.decode("utf-8", "surrogateescape") for p in done.stdout.split(b"\0") if p)


def ignored_at_start(ctx, path: str) -> bool:
    """Whether the ignore rules at session start excluded `path` (itself, or a folder holding it)."""
    ignored = getattr(ctx, "ignored_at_start", None)
    if not ignored:
        return False
    if path in ignored:
        return True
    parts = path.split("/")
    return any("/".join(parts[:depth]) + "/" in ignored for depth in range(1, len(parts)))


def is_git_dir(folder: Path) -> bool:
    """A folder laid out like a git directory (HEAD, objects/, refs/): someone's repository, never work."""
    return (os.path.isfile(folder / "HEAD") and os.path.isdir(folder / "objects")
            and os.path.isdir(folder / "refs") and not os.path.islink(folder))


def file_stats(workspace: Path) -> tuple[dict[str, tuple[int, ...]], set[str]] | None:
    """Every entry under the work tree (no links followed) → its stat signature; and the skipped folders.

    `.git` entries are skipped everywhere; a folder holding a `.git` entry (a nested repository) or
    laid out as a git directory is skipped whole and named (ending in '/'). None past MAX_WALKED.
    """
    stats: dict[str, tuple[int, ...]] = {}
    skipped: set[str] = set()
    pending = [""]
    while pending:
        prefix = pending.pop()
        folder = workspace / prefix if prefix else workspace
        try:
            entries = list(os.scandir(folder))
        except OSError:
            skipped.add(prefix)
            continue
        for entry in entries:
            if entry.name == ".git":
                continue
            relative = f"{prefix}{entry.name}"
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                child = workspace / relative
                if os.path.lexists(child / ".git") or is_git_dir(child):
                    skipped.add(relative + "/")
                else:
                    pending.append(relative + "/")
                continue
            stats[relative] = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_mode)
            if len(stats) > MAX_WALKED:
                return None
    return stats, skipped


def status_entries(workspace: Path) -> list[tuple[str, str]]:
    """(two-letter status, path) for every changed or untracked path; nested repositories end in '/'."""
    done = run_git(workspace, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames",
                   check=True)
    entries: list[tuple[str, str]] = []
    for raw in done.stdout.split(b"\0"):
        if len(raw) > 3:
            entries.append((raw[:2].decode(), raw[3:].decode("utf-8", "surrogateescape")))
    return entries


def take(workspace: Path) -> Snapshot:
    """Stat every file; read every changed or untracked one (no links followed, capped)."""
    walked = file_stats(workspace)
    if walked is None:
        return Snapshot(ok=False)
    stats, skipped = walked
    try:
        entries = status_entries(workspace)
    except HostGitError:
        return Snapshot(ok=False)
    files: dict[str, bytes | None] = {}
    uncaptured: set[str] = set()
    total = 0
    cache = _CACHES.setdefault(str(workspace), {})
    for _, path in entries:
        if path.endswith("/"):
            uncaptured.add(path)
            continue
        try:
            content = _read_cached(workspace, path, cache)
        except OSError:
            uncaptured.add(path)
            continue
        total += len(content or b"")
        if total > SNAPSHOT_CAP:
            uncaptured.add(path)
            continue
        files[path] = content
    untracked = frozenset(path for code, path in entries if code == "??")
    for stale in set(cache) - set(files):
        del cache[stale]
    return Snapshot(files, untracked, frozenset(uncaptured | skipped), stats=stats)


# Per work tree: path → (stat signature, bytes) from the last snapshot, so an unchanged file is not re-read.
# The signature includes the inode change time, which no unprivileged process can set back.
_CACHES: dict[str, dict[str, tuple[tuple[int, ...], bytes | None]]] = {}


def _read_cached(workspace: Path, path: str, cache: dict) -> bytes | None:
    try:
        info = os.lstat(workspace / path)
        signature = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode)
    except OSError:
        signature = None
    hit = cache.get(path)
    if signature is not None and hit is not None and hit[0] == signature:
        return hit[1]
    content = worktree_io.read_file(workspace, path, cap=FILE_CAP)
    # Timestamps are coarse (a clock tick): a file changed within the last seconds may change again unseen.
    if signature is not None and stat.S_ISREG(signature[-1]) and time.time_ns() - signature[4] > RACY_NS:
        cache[path] = (signature, content)
    return content


def record_changes(ctx, before: Snapshot, after: Snapshot, *, run_artefacts: bool = False) -> list[str]:
    """Record in ctx every file the command changed (stat data and content differ); returns the recorded paths."""
    if not (before.ok and after.ok):
        return []
    recorded = []
    changed = {p for p in set(before.stats) | set(after.stats) if before.stats.get(p) != after.stats.get(p)}
    for path in sorted(changed):
        if _skipped(path, before.uncaptured | after.uncaptured):
            continue
        old = _before_content(ctx.workspace, path, before)
        new = _after_content(ctx.workspace, path, after, created=old is None)
        if old is _UNKNOWN or new is _UNKNOWN or old == new:
            continue
        if run_artefacts and old is None and path not in ctx.changes:
            continue  # a file the test run created: an artefact, not the agent's work
        ctx.record_write(path, old, new)
        ctx.changes[path].by_command = True
        recorded.append(path)
    return recorded


_UNKNOWN = object()


def _skipped(path: str, uncaptured: frozenset[str]) -> bool:
    if path in uncaptured:
        return True
    parts = path.split("/")
    return any("/".join(parts[:depth]) + "/" in uncaptured for depth in range(1, len(parts)))


def _before_content(workspace: Path, path: str, before: Snapshot):
    """What the file held before: captured if it was changed or untracked, HEAD's if tracked and clean.

    A file that existed but was neither (ignored, or HEAD unreadable) has unknown content: not recorded.
    """
    if path in before.files:
        return before.files[path]
    if path not in before.stats:
        return None
    done = run_git(workspace, "cat-file", "--filters", f"HEAD:{path}")
    return done.stdout if done.ok else _UNKNOWN


def _after_content(workspace: Path, path: str, after: Snapshot, *, created: bool):
    """What the file holds now. A new file the ignore rules hide (a build or `npm install` output) is not
    read: never committed anyway, it is left out rather than costing a read of every such file."""
    if path in after.files:
        return after.files[path]
    if path not in after.stats:
        return None
    if created:
        return _UNKNOWN
    try:
        return worktree_io.read_file(workspace, path, cap=FILE_CAP)
    except OSError:
        return _UNKNOWN


class ExpectedBefore:
    """What the agent knows a path held before a command: its own last write, else HEAD's, else UNKNOWN.

    Asked only for entries that changed on the host while the command ran. HEAD's file list is read
    once, on the first question, so a path HEAD lacks costs no git process.
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._head: frozenset[str] | None = None

    def __call__(self, path: str) -> object:
        change = self.ctx.changes.get(path)
        if change is not None:
            return change.after
        try:
            if self._head is None:
                listing = run_git(self.ctx.workspace, "ls-tree", "-r", "-z", "--name-only", "HEAD")
                self._head = frozenset(p.decode("utf-8", "surrogateescape") for p in listing.stdout.split(b"\0")
                                       if p) if listing.ok else frozenset()
            if path not in self._head:
                return overlay_changes.UNKNOWN
            done = run_git(self.ctx.workspace, "cat-file", "--filters", f"HEAD:{path}")
        except HostGitError:
            return overlay_changes.UNKNOWN
        return done.stdout if done.ok else overlay_changes.UNKNOWN


def record_outcome(ctx, outcome: overlay_changes.Outcome, *, run_artefacts: bool = False) -> list[str]:
    """Record in ctx the files an overlay command wrote (exact mode); returns the recorded paths."""
    unknown = overlay_changes.UNKNOWN
    candidates = []
    nested: dict[str, bool] = {}
    for change in outcome.changes:
        if unknown in (change.before, change.after) or change.before == change.after:
            continue  # links, special files, files over the cap, folders; or nothing changed
        if _in_nested_repository(ctx.workspace, change.path, nested) or ignored_at_start(ctx, change.path):
            continue
        if run_artefacts and change.before is None and change.path not in ctx.changes:
            continue  # a file the test run created: an artefact, not the agent's work
        candidates.append(change)
    visible = _tracked_or_not_ignored(ctx.workspace, [c.path for c in candidates if c.after is not None])
    recorded = []
    for change in candidates:
        if change.after is None or change.path in visible:
            ctx.record_write(change.path, change.before, change.after)
            recorded.append(change.path)
    return recorded


def _in_nested_repository(workspace: Path, path: str, cache: dict[str, bool]) -> bool:
    parts = path.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if folder not in cache:
            cache[folder] = os.path.lexists(workspace / folder / ".git") or is_git_dir(workspace / folder)
        if cache[folder]:
            return True
    return False


def _tracked_or_not_ignored(workspace: Path, paths: list[str]) -> set[str]:
    """Which of `paths` git tracks or would show as untracked (the rest are ignored).

    Each `ls-files -o` walks the folders its pathspecs name, so many paths are asked for in one call
    by their folders (at most 500 of them, else the whole tree), not in chunks that each walk again:
    40k new files in one folder cost one walk, not eighty.
    """
    if len(paths) > 500:
        folders = sorted({path.rsplit("/", 1)[0] for path in paths if "/" in path})
        whole = len(folders) > 500 or any("/" not in path for path in paths)
        spec = [] if whole else [folder for i, folder in enumerate(folders)  # drop folders inside another
                                 if not any(folder.startswith(other + "/") for other in folders[:i])]
        done = run_git(workspace, "ls-files", "-z", "-c", "-o", "--exclude-standard", "--", *spec, check=True)
        listed = {p.decode("utf-8", "surrogateescape") for p in done.stdout.split(b"\0") if p}
        return listed & set(paths)
    found: set[str] = set()
    for start in range(0, len(paths), 500):
        chunk = paths[start:start + 500]  # host git makes every pathspec literal
        done = run_git(workspace, "ls-files", "-z", "-c", "-o", "--exclude-standard", "--", *chunk, check=True)
        found |= {p.decode("utf-8", "surrogateescape") for p in done.stdout.split(b"\0") if p}
    return found


@contextmanager
def recording(ctx, *, run_artefacts: bool = False) -> Iterator[None]:
    """Around one command: attribute what it wrote to the agent (see the module docstring)."""
    if getattr(ctx, "ignored_at_start", None) is None:
        try:
            ctx.ignored_at_start = _ignored_now(ctx.workspace)
        except HostGitError:
            pass
    if getattr(getattr(ctx, "sandbox", None), "exact_attribution", False):
        with sandbox_overlay.collecting(ExpectedBefore(ctx),
                                        lambda path: not ignored_at_start(ctx, path)) as collector:
            try:
                yield
            finally:
                for outcome in collector.outcomes:
                    try:
                        record_outcome(ctx, outcome, run_artefacts=run_artefacts)
                    except HostGitError:
                        pass  # unattributed writes are simply not the agent's: never committed, never undone
        return
    before = take(ctx.workspace)
    try:
        yield
    finally:
        try:
            record_changes(ctx, before, take(ctx.workspace), run_artefacts=run_artefacts)
        except HostGitError:
            pass  # unattributed writes are simply not the agent's: never committed, never undone
