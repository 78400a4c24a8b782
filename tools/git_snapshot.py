"""Snapshot and restore the parts of `.git` that decide what host git runs, never following a link.

The Landlock fallback cannot always make `.git` read-only (it needs a mount
namespace for that), so the sandbox snapshots `.git/config`, `config.worktree`,
`commondir`, `hooks/` and `info/` before a command and puts them back after
it. A command can plant links there (`.git/config` → a work-tree file it keeps
writing, `.git/hooks` → a folder of its own), so every step here works on
descriptors: entries are opened relative to `.git`'s descriptor with
O_NOFOLLOW, a link is recorded as a link (never read through), and a restore
removes whatever is there before re-creating the original with O_EXCL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

WATCHED_FILES = ("config", "config.worktree", "commondir")
WATCHED_FOLDERS = ("hooks", "info")
MAX_BYTES = 4 * 2**20  # a hook or config bigger than this is recorded by size only


@dataclass(frozen=True)
class Entry:
    """What one watched name was: a file (content and mode), a folder, a link (its target), or other."""

    kind: str
    data: bytes = b""
    mode: int = 0o644


Snapshot = dict[str, Entry]


def _entry(dir_fd: int, name: str) -> Entry | None:
    try:
        info = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return Entry("link", os.readlink(name, dir_fd=dir_fd).encode(errors="surrogateescape"))
    if stat.S_ISDIR(info.st_mode):
        return Entry("folder", mode=stat.S_IMODE(info.st_mode))
    if not stat.S_ISREG(info.st_mode):
        return Entry("other", mode=info.st_mode)
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, MAX_BYTES) if size <= MAX_BYTES else f"<{size} bytes>".encode()
    finally:
        os.close(fd)
    return Entry("file", data, stat.S_IMODE(info.st_mode))


def _open_dir(name: str, dir_fd: int | None = None) -> int | None:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None


def take(workspace: Path) -> Snapshot | None:
    """The watched entries of `workspace/.git`, or None when `.git` is not a real folder."""
    git = _open_dir(str(Path(workspace) / ".git"))
    if git is None:
        return None
    try:
        snapshot: Snapshot = {}
        for name in WATCHED_FILES + WATCHED_FOLDERS:
            entry = _entry(git, name)
            if entry is not None:
                snapshot[name] = entry
        for folder in WATCHED_FOLDERS:
            if snapshot.get(folder, Entry("")).kind != "folder":
                continue
            sub = _open_dir(folder, git)
            if sub is None:
                continue
            try:
                for name in sorted(os.listdir(sub)):
                    entry = _entry(sub, name)
                    if entry is not None:
                        snapshot[f"{folder}/{name}"] = entry
            finally:
                os.close(sub)
        return snapshot
    finally:
        os.close(git)


def _remove(dir_fd: int, name: str) -> None:
    try:
        info = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # rmtree with dir_fd never follows links
    else:
        os.unlink(name, dir_fd=dir_fd)


def _create(dir_fd: int, name: str, entry: Entry) -> None:
    """Re-create `name` as `entry`. A file or link is written under a fresh name and renamed into place:
    a process still writing `.git` (a racer the sweep has not reached yet) can put a new `config` there
    between the removal and the re-creation, and rename replaces it where O_EXCL would fail."""
    if entry.kind == "folder":
        try:
            os.mkdir(name, entry.mode, dir_fd=dir_fd)
        except FileExistsError:
            _remove(dir_fd, name)
            os.mkdir(name, entry.mode, dir_fd=dir_fd)
        return
    if entry.kind not in ("link", "file"):
        return
    staged = f".gptoss-restore-{os.getpid()}-{secrets.token_hex(6)}"
    if entry.kind == "link":
        os.symlink(entry.data.decode(errors="surrogateescape"), staged, dir_fd=dir_fd)
    else:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, entry.mode,
                     dir_fd=dir_fd)
        try:
            os.write(fd, entry.data)
            os.fchmod(fd, entry.mode)
        finally:
            os.close(fd)
    for _ in range(10):
        try:
            os.replace(staged, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        except (IsADirectoryError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            _remove(dir_fd, name)  # a folder now sits where the file belongs
    os.unlink(staged, dir_fd=dir_fd)
    raise OSError(f"cannot restore .git/{name}")


def restore(workspace: Path, before: Snapshot) -> list[str]:
    """Put every watched entry back as it was in `before`; the names that had changed.

    A `.git` that is no longer a real folder cannot be repaired here: that is
    reported as `.git` (host git refuses a `.git` that is a link or a pointer file)."""
    after = take(workspace)
    if after is None:
        return [".git"]
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    if not changed:
        return []
    git = _open_dir(str(Path(workspace) / ".git"))
    if git is None:
        return [".git"]
    try:
        # Top-level names first (a folder swapped for a link is rebuilt before its files are restored).
        for name in sorted(changed, key=lambda n: n.count("/")):
            parent_name, _, leaf = name.rpartition("/")
            parent = _open_dir(parent_name, git) if parent_name else git
            if parent is None:
                continue
            try:
                if before.get(name) == _entry(parent, leaf):
                    continue  # already rebuilt with its folder
                _remove(parent, leaf)
                if name in before:
                    _create(parent, leaf, before[name])
                    if before[name].kind == "folder":
                        for child, entry in before.items():
                            if child.startswith(name + "/"):
                                sub = _open_dir(name, git)
                                if sub is not None:
                                    try:
                                        _create(sub, child.split("/", 1)[1], entry)
                                    finally:
                                        os.close(sub)
            finally:
                if parent != git:
                    os.close(parent)
    finally:
        os.close(git)
    return changed
