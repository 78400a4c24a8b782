"""Carry a command's overlay upper layer into the work tree: exactly what it wrote, and nothing of the user's.

The upper layer (tools.sandbox_overlay) holds what the command wrote and only
that: new and changed files as regular files, deletions as whiteouts
(character devices 0:0), a folder deleted and made again as an opaque folder
(`user.overlay.opaque`). It is read without following any link and applied
through descriptors of the work tree opened with O_NOFOLLOW at every step, so
neither a link the command left in the upper layer nor one already in the
work tree redirects a write or a delete.

Conflicts. The overlay's lower layer is the live work tree, so the user's
edits during the command stay in the work tree (the command may even have seen
them). What changed on the host while the command ran is told by change time:
the command cannot write the host tree at all, so an entry whose inode change
time (which no unprivileged process can set back) is at or after the
command's start was changed by someone else. This needs no snapshot of the
tree before the command, only a look at the entries the command wrote. A file
both changed is a CONFLICT: the user's version stays, the command's version
is kept in a private folder and named in the outcome; nothing is guessed.
The check allows SLACK_NS of clock granularity; within it, a file whose content
is still what the agent knew it held (its own last write, or HEAD's) is not a
conflict, so an agent patch just before a command does not conflict with it,
and an entry still exactly as an earlier carry left it (same inode and change
time) is not either, so two commands in quick succession do not.

What is carried, by kind: regular files (setuid, setgid and sticky bits
dropped), folders, symbolic links (as links, never followed: the command could
make the same link in the work tree without the overlay), deletions. Never
carried: FIFOs, sockets and devices (reported as skipped), and any entry named
`.git` at any depth (a command cannot plant or remove a git directory). A file
the user deleted during the command that the agent knew existed, and that the
command wrote, is a conflict too (the deletion is the user's).

Every change carried is returned with its before- and after-content (bytes,
None for absent, UNKNOWN for links, special files and files over FILE_CAP) so
tools.attribution can record exactly these and nothing else.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agent.safe_text import line
from tools.paths import Workspace, private_dir

FILE_CAP = 16 * 2**20
CONTENT_BUDGET = 256 * 2**20  # content kept for recording, all files together; past it: carried, not recorded
MAX_DEPTH = 200  # folders deeper than this (in the layer, or deleted from the tree) are left as they are
SLACK_NS = 20_000_000  # one coarse-clock tick at HZ=100 is 10 ms; change times lag the clock by at most that
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Change:
    """One entry the command changed, as carried into the work tree."""

    path: str
    before: object  # bytes, None (absent) or UNKNOWN
    after: object


@dataclass(frozen=True)
class Conflict:
    """An entry both the command and someone else changed: the work tree keeps the other's version."""

    path: str
    why: str
    kept_at: str | None  # where the command's version was kept, if it wrote one


@dataclass
class Outcome:
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) written but not carried
    placed: dict[str, tuple[int, int]] = field(default_factory=dict)  # path → (inode, ctime) as we left it

    def notes(self) -> list[str]:
        """Lines for the command's result (the model reads them; the TUI shows them)."""
        lines = []
        for conflict in self.conflicts:
            kept = f"; the command's version is kept at {line(conflict.kept_at)}" if conflict.kept_at else ""
            lines.append(f"conflict: {line(conflict.path)}: {conflict.why}; your version is left in place{kept}")
        if self.skipped:
            shown = ", ".join(f"{line(path)} ({why})" for path, why in self.skipped[:10])
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            lines.append(f"not carried into the work tree: {shown}{more}")
        return lines


def is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def is_opaque(path: Path) -> bool:
    for name in ("user.overlay.opaque", "trusted.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def apply(upper: Path, workspace: Path, *, started_ns: int, conflicts_dir: Path,
          expected: Callable[[str], object] = lambda path: UNKNOWN,
          placed_before: dict[str, tuple[int, int]] | None = None) -> Outcome:
    """Carry `upper` into `workspace` (see the module docstring); returns what was done.

    `placed_before`: entries earlier carries left (path → inode, change time); one still exactly as
    placed is not someone else's change, however recent (two commands in quick succession).
    """
    with Workspace(workspace) as space:
        applier = _Applier(upper, space, started_ns, conflicts_dir, expected, placed_before or {})
        root = os.open(".", _DIR & ~os.O_NOFOLLOW, dir_fd=space.fd)
        try:
            applier.folder("", Path(upper), root, opaque=False, ours=False)
        finally:
            os.close(root)
        return applier.outcome


class _Applier:
    def __init__(self, upper: Path, space: Workspace, started_ns: int, conflicts_dir: Path,
                 expected: Callable[[str], object], placed_before: dict[str, tuple[int, int]]) -> None:
        self.upper = upper
        self.space = space
        self.since = started_ns - SLACK_NS
        self.conflicts_dir = conflicts_dir
        self.expected = expected
        self.placed_before = placed_before
        self.outcome = Outcome()
        self.budget = CONTENT_BUDGET
        self.same_device = os.stat(upper).st_dev == os.fstat(space.fd).st_dev

    # -- walking the upper layer

    def folder(self, prefix: str, upper_dir: Path, host: int, *, opaque: bool, ours: bool) -> None:
        """Apply one upper folder's entries to the host folder `host` (a descriptor; `ours`: we made it)."""
        if prefix.count("/") > MAX_DEPTH:
            self.outcome.skipped.append((prefix, f"nested deeper than {MAX_DEPTH} folders"))
            return
        entries = sorted(os.scandir(upper_dir), key=lambda e: e.name)
        if opaque:  # the command removed the folder and made it again: what it did not write again is gone
            written = {e.name for e in entries}
            for name in self._host_names(host):
                if name not in written:
                    self.remove(prefix + name, host, name)
        parent_touched = not ours and self._touched(os.fstat(host), prefix)
        for entry in entries:
            path = prefix + entry.name
            if entry.name == ".git":
                self.outcome.skipped.append((path, "a .git entry is never carried from a command"))
                continue
            info = entry.stat(follow_symlinks=False)
            if is_whiteout(info):
                self.remove(path, host, entry.name)
            elif stat.S_ISDIR(info.st_mode):
                self.subfolder(path, Path(entry.path), host, entry.name, info)
            elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                self.leaf(path, Path(entry.path), host, entry.name, info, parent_touched)
            else:
                self.outcome.skipped.append((path, "a FIFO, socket or device"))
        folder_info = os.fstat(host)  # what we did here changed the folder's own change time
        self.outcome.placed[prefix] = (folder_info.st_ino, folder_info.st_ctime_ns)

    def subfolder(self, path: str, upper_dir: Path, host: int, name: str, info: os.stat_result) -> None:
        current = self._lstat(host, name)
        if current is not None and not stat.S_ISDIR(current.st_mode):
            self.remove(path, host, name)  # the command replaced a file or link with a folder
            current = self._lstat(host, name)
            if current is not None:
                self._conflict(path, "changed by you while the command replaced it with a folder", upper_dir)
                return
        made = current is None
        if made:
            try:
                os.mkdir(name, stat.S_IMODE(info.st_mode) & 0o777, dir_fd=host)
            except OSError as exc:
                self._conflict(path, f"cannot create the folder ({exc.strerror})", upper_dir)
                return
        try:
            child = os.open(name, _DIR, dir_fd=host)
        except OSError:  # became a link or vanished under us: not followed
            self._conflict(path, "changed by you while the command ran (no longer a folder)", upper_dir)
            return
        try:
            self.folder(path + "/", upper_dir, child, opaque=not made and is_opaque(upper_dir), ours=made)
        finally:
            os.close(child)

    def leaf(self, path: str, source: Path, host: int, name: str, info: os.stat_result,
             parent_touched: bool) -> None:
        """A file or link the command wrote at `path`."""
        current = self._lstat(host, name)
        if current is not None and stat.S_ISDIR(current.st_mode):
            self.remove(path, host, name)  # the command replaced a folder with a file
            current = self._lstat(host, name)
            if current is not None:
                self._conflict(path, "a folder you changed while the command replaced it", source)
                return
            before: object = None
        elif current is None:
            if parent_touched and isinstance(self.expected(path), bytes):
                self._conflict(path, "deleted by you while the command ran, and written by the command", source)
                return
            before = None
        else:
            if self._touched(current, path) and not self._as_expected(path, host, name, current):
                self._conflict(path, "changed by you while the command ran, and written by the command", source)
                return
            before = self._read(host, name)
        if stat.S_ISLNK(info.st_mode):
            self._place_link(host, name, os.readlink(source))
            after: object = UNKNOWN
        else:
            after = self._kept(_read_path(source)) if info.st_size <= FILE_CAP else UNKNOWN
            self._place_file(host, name, source, info)
        self._placed(path, host)
        self.outcome.changes.append(Change(path, before, after))

    def remove(self, path: str, host: int, name: str) -> None:
        """The command deleted `path`: delete it (a folder entry by entry) unless someone changed it meanwhile."""
        current = self._lstat(host, name)
        if current is None:
            return
        if name == ".git":
            self.outcome.skipped.append((path, "a .git entry is never removed for a command"))
            return
        if stat.S_ISDIR(current.st_mode):
            if path.count("/") > MAX_DEPTH:
                self.outcome.skipped.append((path, f"a deletion nested deeper than {MAX_DEPTH} folders"))
                return
            try:
                child = os.open(name, _DIR, dir_fd=host)
            except OSError:
                return
            try:
                for inner in self._host_names(child):
                    self.remove(f"{path}/{inner}", child, inner)
            finally:
                os.close(child)
            try:
                os.rmdir(name, dir_fd=host)
            except OSError:
                pass  # something was kept (a conflict, a .git): the folder stays
            return
        if self._touched(current, path) and not self._as_expected(path, host, name, current):
            self.outcome.conflicts.append(Conflict(path, "changed by you while the command ran, and deleted by "
                                                         "the command", None))
            return
        before = self._read(host, name)
        try:
            os.unlink(name, dir_fd=host)
        except FileNotFoundError:
            return
        self.outcome.changes.append(Change(path, before, None))

    # -- host side

    def _touched(self, info: os.stat_result, path: str) -> bool:
        """Changed on the host since the command started (the command itself cannot write the host tree)."""
        if self.placed_before.get(path) == (info.st_ino, info.st_ctime_ns):
            return False  # exactly as an earlier carry left it
        return info.st_ctime_ns >= self.since

    def _placed(self, path: str, host: int) -> None:
        try:
            info = os.stat(path.rsplit("/", 1)[-1] or ".", dir_fd=host, follow_symlinks=False)
        except OSError:
            return
        self.outcome.placed[path] = (info.st_ino, info.st_ctime_ns)

    def _as_expected(self, path: str, host: int, name: str, info: os.stat_result) -> bool:
        """Whether a recently changed file still holds what the agent knew it held before the command."""
        known = self.expected(path)
        if known is UNKNOWN or known is None or not stat.S_ISREG(info.st_mode):
            return False
        current = self._read(host, name)
        if isinstance(current, bytes):
            self.budget += len(current)  # only compared, not kept
        return current == known

    @staticmethod
    def _lstat(host: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=host, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def _host_names(host: int) -> list[str]:
        listing = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=host)
        try:
            with os.scandir(listing) as entries:
                return sorted(e.name for e in entries)
        finally:
            os.close(listing)

    def _kept(self, data: object) -> object:
        """`data` while the content budget lasts (a command writing gigabytes is carried, not held), else UNKNOWN."""
        if isinstance(data, bytes):
            if len(data) > self.budget:
                return UNKNOWN
            self.budget -= len(data)
        return data

    def _read(self, host: int, name: str) -> object:
        """A regular file's bytes (never through a link), or UNKNOWN."""
        try:
            fd = os.open(name, _READ, dir_fd=host)
        except OSError:
            return UNKNOWN
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > min(FILE_CAP, self.budget):
                return UNKNOWN
            return self._kept(_read_fd(fd))
        finally:
            os.close(fd)

    def _place_file(self, host: int, name: str, source: Path, info: os.stat_result) -> None:
        """Move (same file system, one name) or copy the command's file over `name`; special bits dropped."""
        mode = stat.S_IMODE(info.st_mode) & 0o777
        if self.same_device and info.st_nlink == 1:
            os.chmod(source, mode)  # the upper layer is ours and nothing runs in it any more
            os.rename(source, name, dst_dir_fd=host)
            return
        temp = _temp_name(name)
        src = os.open(source, _READ)
        try:
            dst = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=host)
            try:
                while chunk := os.read(src, 1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(dst, view):]
                os.fchmod(dst, mode)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        os.rename(temp, name, src_dir_fd=host, dst_dir_fd=host)

    @staticmethod
    def _place_link(host: int, name: str, target: str) -> None:
        temp = _temp_name(name)
        os.symlink(target, temp, dir_fd=host)
        os.rename(temp, name, src_dir_fd=host, dst_dir_fd=host)

    def _conflict(self, path: str, why: str, source: Path) -> None:
        """Keep the command's version of `path` where the user can get it, and report the conflict."""
        kept = None
        try:
            target = private_dir(self.conflicts_dir) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
            kept = str(target)
        except OSError:
            pass
        self.outcome.conflicts.append(Conflict(path, why, kept))


def _temp_name(name: str) -> str:
    return f".{name[:40]}.{os.urandom(6).hex()}.gptoss-tmp"


def _read_fd(fd: int) -> object:
    chunks, size = [], 0
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
        size += len(chunk)
        if size > FILE_CAP:
            return UNKNOWN
    return b"".join(chunks)


def _read_path(path: Path) -> object:
    try:
        fd = os.open(path, _READ)
    except OSError:
        return UNKNOWN
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


__all__ = ["Change", "Conflict", "Outcome", "UNKNOWN", "apply", "is_opaque", "is_whiteout", "FILE_CAP", "SLACK_NS"]
