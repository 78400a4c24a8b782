"""Which files the agent's commands wrote: the work tree's changed files before and after each command.

The agent's patches record their own writes (ToolContext.record_write). A
command (`container.exec`, `run_tests`) can write files too; this module takes
a snapshot of every changed or untracked file (content, read without following
links) before the command and after it, and records each file whose content
differs as written by the agent, with its exact before-content, so undo can
restore it and commit can include it.

Run artefacts are left out: files that did not exist before a `run_tests` call
are not recorded (reports, caches), so they are never committed.

Limit, said plainly: this is exact for files nobody else touches while a
command runs. A file the user edits *during* a command is indistinguishable
here from one the command wrote (it needs the sandbox to give commands a
copy-on-write view of the work tree). Such a file is at least never lost:
undo restores the before-content only if the file still holds what the
command left, and commit refuses any file whose content changed afterwards.
"""

from __future__ import annotations

import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tools import worktree_io
from tools.host_git import HostGitError, run_git

FILE_CAP = 16 * 2**20
SNAPSHOT_CAP = 256 * 2**20
RACY_NS = 2_000_000_000  # files changed more recently than this are always re-read


@dataclass(frozen=True)
class Snapshot:
    """Changed and untracked files (path → bytes, None when deleted), and what could not be captured."""

    files: dict[str, bytes | None] = field(default_factory=dict)
    untracked: frozenset[str] = frozenset()
    uncaptured: frozenset[str] = frozenset()  # links, special files, files over the caps, nested repositories
    ok: bool = True


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
    """Read every changed or untracked file (no links followed, capped)."""
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
    return Snapshot(files, untracked, frozenset(uncaptured))


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
    """Record in ctx every file whose content differs between the snapshots; returns the recorded paths."""
    if not (before.ok and after.ok):
        return []
    recorded = []
    for path in sorted((set(before.files) | set(after.files)) - before.uncaptured - after.uncaptured):
        old = before.files[path] if path in before.files else _committed(ctx.workspace, path, after)
        new = after.files[path] if path in after.files else _committed(ctx.workspace, path, before)
        if old is _UNKNOWN or new is _UNKNOWN or old == new:
            continue
        if run_artefacts and old is None and path not in ctx.changes:
            continue  # a file the test run created: an artefact, not the agent's work
        ctx.record_write(path, old, new)
        ctx.changes[path].by_command = True
        recorded.append(path)
    return recorded


_UNKNOWN = object()


def _committed(workspace: Path, path: str, other: Snapshot):
    """A file missing from one snapshot was unchanged then: its content is HEAD's (None if untracked)."""
    if path in other.untracked:
        return None
    done = run_git(workspace, "cat-file", "--filters", f"HEAD:{path}")
    return done.stdout if done.ok else _UNKNOWN


@contextmanager
def recording(ctx, *, run_artefacts: bool = False) -> Iterator[None]:
    """Around one command: attribute what it wrote to the agent (see the module docstring)."""
    before = take(ctx.workspace)
    try:
        yield
    finally:
        try:
            record_changes(ctx, before, take(ctx.workspace), run_artefacts=run_artefacts)
        except HostGitError:
            pass  # unattributed writes are simply not the agent's: never committed, never undone
