"""Carry a command's overlay upper layer into the work tree: exactly what it wrote, and nothing of the user's.

The upper layer (tools.sandbox_overlay) holds what the command wrote and only
that: new and changed files as regular files, deletions as whiteouts
(character devices 0:0), a folder deleted and made again as an opaque folder
(`user.overlay.opaque`), and, on a copied-up entry, `user.overlay.origin`
(which lower inode it came from). Both sides are walked through descriptors
(the layer's and the work tree's, O_NOFOLLOW at every step), so neither a link
the command left in the layer nor one in the work tree redirects a write or a
delete, and no path is ever longer than one name.

Who changed what. The overlay's lower layer is the live work tree, so the
user's edits during the command stay in the work tree (the command may even
have seen them). The command cannot write the host tree at all, so an entry
whose inode change time (which no unprivileged process can set back) is at or
after the command's start (less SLACK_NS of clock granularity) was changed by
someone else: "touched". A folder's change time moves whenever an entry is
added to, removed from or renamed in it, so an untouched folder still holds
exactly the entries it held at the start. What is carried follows from that:
- a file both changed is a CONFLICT: the user's version stays, the command's
  is kept in a private folder and named in the outcome;
- a deletion is carried only where it is provably the command's: a folder is
  removed entry by entry, and a touched folder (the user moved or made
  something in it) is kept whole; a folder on another device (a mount point)
  is never entered;
- a folder the command wrote into (copied up: it has an origin) that is gone
  from the host was deleted or moved by the user: a conflict, kept aside;
- a file the command wrote whose bytes came from a file the user changed
  during the command (its origin is that file's inode, or its bytes equal the
  user's new bytes) is the user's edit, not the agent's: a conflict. The
  user's changed files looked at are those the command also wrote or deleted,
  and those beside a new file the command made; a copy the command makes of a
  file elsewhere that the user changed meanwhile, and did not touch itself,
  is not recognised (that would take a walk of the whole tree);
- a file whose before-content cannot be kept for /undo (over FILE_CAP, or the
  BEFORE_BUDGET spent) is neither overwritten nor deleted: a conflict;
- a regular file is never replaced by a link or a folder (undo could not put
  it back; ignored files, never recorded, may be);
  a new link where nothing was is carried as a link, never followed.
Within SLACK_NS, a file whose content is still what the agent knew it held
(its own last write, or HEAD's) is not a conflict, and an entry exactly as an
earlier carry left it (same inode and change time) is not touched either.

The check and the replace. A file is replaced by exchanging the command's
version (staged under a hidden name beside it) with it (renameat2
RENAME_EXCHANGE), after reading the user's file through a descriptor held
open; then the displaced entry is checked to be that same inode with the same
size and modification time. If the user saved in between (in place, or by
renaming a new file over it), the exchange is undone: the user's file is back
in place and the command's version is kept aside as a conflict. New files are
placed with RENAME_NOREPLACE. Residual window, said plainly: a write through a
descriptor the user already held open, landing after that last check and
before the displaced inode is unlinked (microseconds), is lost; and on a file
system without renameat2 flags a plain rename is used after the same checks.

Never carried: FIFOs, sockets and devices, and any entry named `.git` at any
depth. Setuid, setgid and sticky bits are dropped. A hard link the user made to
a file the command rewrote is split (the file gets a new inode), as any editor
that saves by rename does.

Failures do not lose track: an entry that cannot be carried (a name too long,
a folder the command left without permission, the time or byte limit reached)
is left in the layer and named in `left`; everything carried before and after
it is in `changes`, so tools.attribution records it and /undo and commit see
it. Regular files are copied hole by hole (SEEK_DATA) when the layer is on
another file system; at most CARRY_BYTES are copied and the carry stops after
CARRY_SECONDS, what remains being left in the layer and reported.

Every change carried is returned with its before- and after-content (bytes,
None for absent, UNKNOWN for links, special files and files over the caps) so
tools.attribution can record exactly these and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gptoss_agent.agent.safe_text import line
from gptoss_agent.tools.sandbox.overlay_fs import (RENAME_EXCHANGE, RENAME_NOREPLACE, content_signature, copy_sparse,
                                                   has_origin, is_opaque, is_whiteout, origin_inode, read_fd, rename2,
                                                   signature, temp_name)
from gptoss_agent.tools.paths import PathRefused, Workspace, private_dir

FILE_CAP = 16 * 2**20
BEFORE_BUDGET = 256 * 2**20  # before-contents kept for /undo, all files together; past it: not overwritten
AFTER_BUDGET = 256 * 2**20  # after-contents kept for recording; past it: carried, not recorded
CONTENT_BUDGET = BEFORE_BUDGET  # the older name
CARRY_BYTES = 4 * 2**30  # bytes copied between file systems per command; past it: left in the layer
CARRY_SECONDS = 120.0  # a carry stops here; the rest is left in the layer
SURVEY_ENTRIES = 500_000  # host entries looked at under deleted folders for the user's edits
MAX_DEPTH = 200  # folders deeper than this (in the layer, or deleted from the tree) are left as they are
SLACK_NS = 20_000_000  # one coarse-clock tick at HZ=100 is 10 ms; change times lag the clock by at most that
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LIST = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_ORIGIN_BY_INODE_FS = frozenset({"ext2", "ext3", "ext4"})  # origin handles that start with the 32-bit inode


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


def _read_fd(fd: int, offset: int, cap: int) -> object:
    data = read_fd(fd, offset, cap)
    return UNKNOWN if data is None else data


class CarryFailed(Exception):
    """The carry stopped on an unexpected error; `outcome` holds what was carried before it."""

    def __init__(self, message: str, outcome: "Outcome") -> None:
        super().__init__(message)
        self.outcome = outcome


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
    left: list[tuple[str, str]] = field(default_factory=list)  # (path, why) still in the layer, not carried
    placed: dict[str, tuple[int, int]] = field(default_factory=dict)  # path → (inode, ctime) as we left it

    def notes(self, layer: str | None = None) -> list[str]:
        """Lines for the command's result (the model reads them; the TUI shows them)."""
        lines = []
        for conflict in self.conflicts:
            kept = f"; the command's version is kept at {line(conflict.kept_at)}" if conflict.kept_at else ""
            lines.append(f"conflict: {line(conflict.path)}: {conflict.why}; your version is left in place{kept}")
        for title, entries in (("not carried into the work tree", self.skipped),
                               ("could not be carried into the work tree", self.left)):
            if entries:
                shown = ", ".join(f"{line(path)} ({why})" for path, why in entries[:10])
                more = f" and {len(entries) - 10} more" if len(entries) > 10 else ""
                where = f"; kept at {line(layer)}" if layer and entries is self.left else ""
                lines.append(f"{title}: {shown}{more}{where}")
        return lines


def apply(upper: Path, workspace: Path, *, started_ns: int, conflicts_dir: Path,
          expected: Callable[[str], object] = lambda path: UNKNOWN,
          placed_before: dict[str, tuple[int, int]] | None = None, fs_type: str | None = None,
          seconds: float | None = None, carry_bytes: int | None = None,
          recordable: Callable[[str], bool] = lambda path: True) -> Outcome:
    """Carry `upper` into `workspace` (see the module docstring); returns what was done.

    `placed_before`: entries earlier carries left (path → inode, change time); one still exactly as
    placed is not someone else's change, however recent (two commands in quick succession).
    `fs_type`: the work tree's file system (origin handles are decoded only where their format is known).
    `recordable(path)`: whether a change there would be recorded (for /undo and commit); one that would
    be but whose contents cannot be kept is refused (a conflict). Ignored files never are.
    Raises CarryFailed (with what was carried so far) only on an error outside any one entry.
    """
    seconds = CARRY_SECONDS if seconds is None else seconds
    carry_bytes = CARRY_BYTES if carry_bytes is None else carry_bytes
    limit = sys.getrecursionlimit()  # a few frames per folder level, MAX_DEPTH levels on each side
    sys.setrecursionlimit(max(limit, MAX_DEPTH * 16 + 500))
    try:
        return _apply(upper, workspace, started_ns, conflicts_dir, expected, placed_before, fs_type, seconds,
                      carry_bytes, recordable)
    finally:
        sys.setrecursionlimit(limit)


def _apply(upper, workspace, started_ns, conflicts_dir, expected, placed_before, fs_type, seconds,
           carry_bytes, recordable) -> Outcome:
    with Workspace(workspace) as space:
        applier = _Applier(space, started_ns, conflicts_dir, expected, placed_before or {},
                           decode_origin=fs_type in _ORIGIN_BY_INODE_FS, deadline=time.monotonic() + seconds,
                           carry_bytes=carry_bytes, recordable=recordable)
        try:
            layer = os.open(upper, _LIST)
            root = os.open(".", _DIR & ~os.O_NOFOLLOW, dir_fd=space.fd)
            try:
                applier.same_device = os.fstat(layer).st_dev == os.fstat(root).st_dev
                applier.root_dev = os.fstat(root).st_dev
                applier.survey("", layer, root, 0)
                applier.folder("", layer, root, opaque=False, ours=False)
            finally:
                os.close(root)
                os.close(layer)
        except Exception as exc:  # what was carried so far is in the outcome: it is still recorded
            raise CarryFailed(str(exc), applier.outcome) from exc
        return applier.outcome


class _Applier:
    def __init__(self, space: Workspace, started_ns: int, conflicts_dir: Path, expected: Callable[[str], object],
                 placed_before: dict[str, tuple[int, int]], *, decode_origin: bool, deadline: float,
                 carry_bytes: int, recordable: Callable[[str], bool]) -> None:
        self.space = space
        self.since = started_ns - SLACK_NS
        self.conflicts_dir = conflicts_dir
        self.expected = expected
        self.recordable = recordable
        self.placed_before = placed_before
        self.outcome = Outcome()
        self.before_budget = BEFORE_BUDGET
        self.after_budget = AFTER_BUDGET
        self.copy_budget = carry_bytes
        self.deadline = deadline
        self.seconds = max(0.0, deadline - time.monotonic())
        self.decode_origin = decode_origin
        self.same_device = False
        self.root_dev = 0
        self.user_inodes: dict[int, str] = {}  # inodes of host files the user changed during the command
        self.user_digests: dict[tuple[int, bytes], str] = {}  # (size, sha256) of their new bytes → path
        self.surveyed = 0

    # -- before anything moves: which host files under the layer's names did the user change?

    def survey(self, prefix: str, layer: int, host: int, depth: int) -> None:
        """Note the host files the user changed during the command among those the command wrote or
        deleted, so a file the command made from one of them (mv, cp) is known for the user's."""
        if depth > MAX_DEPTH:
            return
        new_files = False
        for entry in self._names(layer):
            if entry.name == ".git":
                continue
            current = self._lstat(host, entry.name)
            info = entry.stat(follow_symlinks=False)
            if current is None:
                new_files = new_files or stat.S_ISREG(info.st_mode)
                continue
            path = prefix + entry.name
            if stat.S_ISDIR(info.st_mode) and stat.S_ISDIR(current.st_mode):
                if current.st_dev != self.root_dev:
                    continue
                inner_layer = inner_host = None
                try:
                    inner_layer = self._open_layer(layer, entry.name)
                    inner_host = os.open(entry.name, _DIR, dir_fd=host)
                    if self._is_opaque(layer, entry.name):
                        self._survey_host(path + "/", inner_host, depth + 1)
                    self.survey(path + "/", inner_layer, inner_host, depth + 1)
                except OSError:
                    pass
                finally:
                    if inner_layer is not None:
                        os.close(inner_layer)
                    if inner_host is not None:
                        os.close(inner_host)
            elif is_whiteout(info) and stat.S_ISDIR(current.st_mode) and current.st_dev == self.root_dev:
                try:
                    inner_host = os.open(entry.name, _DIR, dir_fd=host)
                except OSError:
                    continue
                try:
                    self._survey_host(path + "/", inner_host, depth + 1)
                finally:
                    os.close(inner_host)
            else:
                self._note_user_file(path, host, entry.name, current)
        if new_files:  # a copy (cp, a formatter writing a new name) is most often made beside its source
            for name in self._host_names(host):
                self.surveyed += 1
                if self.surveyed > SURVEY_ENTRIES:
                    return
                current = self._lstat(host, name)
                if current is not None and name != ".git":
                    self._note_user_file(prefix + name, host, name, current)

    def _survey_host(self, prefix: str, host: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        for name in self._host_names(host):
            self.surveyed += 1
            if self.surveyed > SURVEY_ENTRIES or name == ".git":
                return
            current = self._lstat(host, name)
            if current is None:
                continue
            if stat.S_ISDIR(current.st_mode):
                if current.st_dev != self.root_dev:
                    continue
                try:
                    inner = os.open(name, _DIR, dir_fd=host)
                except OSError:
                    continue
                try:
                    self._survey_host(prefix + name + "/", inner, depth + 1)
                finally:
                    os.close(inner)
            else:
                self._note_user_file(prefix + name, host, name, current)

    def _note_user_file(self, path: str, host: int, name: str, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode) or not self._touched(info, path):
            return
        content = self._read_unbudgeted(host, name)
        if isinstance(content, bytes) and content == self.expected(path):
            return  # what the agent itself wrote just before the command
        self.user_inodes[info.st_ino] = path
        if isinstance(content, bytes) and content:
            self.user_digests[(len(content), hashlib.sha256(content).digest())] = path

    def _users_edit(self, path: str, layer: int, name: str, info: os.stat_result, data: object) -> str | None:
        """The host file the user changed during the command that the command's file `name` was made from."""
        if self.decode_origin and self.user_inodes:
            origin = origin_inode(f"/proc/self/fd/{layer}/{name}")
            if origin is not None and self.user_inodes.get(origin, path) != path:
                return self.user_inodes[origin]
        if not self.user_digests or not any(size == info.st_size for size, _ in self.user_digests):
            return None
        if not isinstance(data, bytes):
            data = self._read_layer(layer, name, cap=FILE_CAP)
        if isinstance(data, bytes):
            found = self.user_digests.get((len(data), hashlib.sha256(data).digest()))
            if found is not None and found != path:
                return found
        return None

    # -- walking the upper layer

    def folder(self, prefix: str, layer: int, host: int, *, opaque: bool, ours: bool) -> None:
        """Apply one layer folder's entries to the host folder `host` (descriptors; `ours`: we made it)."""
        if prefix.count("/") > MAX_DEPTH:
            self._left(prefix, f"nested deeper than {MAX_DEPTH} folders")
            return
        entries = self._names(layer)
        folder_info = os.fstat(host)
        folder_touched = not ours and bool(prefix) and self._touched(folder_info, prefix)
        if opaque:  # the command removed the folder and made it again: what it did not write again is gone
            written = {e.name for e in entries}
            if folder_touched:
                if any(name not in written for name in self._host_names(host)):
                    self._conflict_noted(prefix.rstrip("/"), "changed by you while the command deleted and "
                                         "remade it: what the command did not write again is kept")
            else:
                for name in self._host_names(host):
                    if name not in written:
                        self._guarded(prefix + name, lambda n=name: self.remove(prefix + n, host, n))
        parent_touched = not ours and self._touched(folder_info, prefix)
        for entry in entries:
            path = prefix + entry.name
            if time.monotonic() > self.deadline:
                self._left(path, f"the carry stopped after {self.seconds:.0f} s")
                continue
            if entry.name == ".git":
                self.outcome.skipped.append((path, "a .git entry is never carried from a command"))
                continue
            self._guarded(path, lambda e=entry, p=path: self.entry(p, e, layer, host, parent_touched))
        info = os.fstat(host)  # what we did here changed the folder's own change time
        self.outcome.placed[prefix] = (info.st_ino, info.st_ctime_ns)

    def _guarded(self, path: str, action: Callable[[], None]) -> None:
        """Run one entry's carry; an error leaves that entry in the layer and the carry goes on."""
        try:
            action()
        except OSError as exc:
            self._left(path, exc.strerror or type(exc).__name__)
        except Exception as exc:  # a bug must not lose track of what was already carried
            self._left(path, type(exc).__name__)

    def entry(self, path: str, entry: os.DirEntry, layer: int, host: int, parent_touched: bool) -> None:
        info = entry.stat(follow_symlinks=False)
        if is_whiteout(info):
            self.remove(path, host, entry.name)
        elif stat.S_ISDIR(info.st_mode):
            self.subfolder(path, layer, host, entry.name, info)
        elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            self.leaf(path, layer, host, entry.name, info, parent_touched)
        else:
            self.outcome.skipped.append((path, "a FIFO, socket or device"))

    def subfolder(self, path: str, layer: int, host: int, name: str, info: os.stat_result) -> None:
        current = self._lstat(host, name)
        if current is not None and stat.S_ISDIR(current.st_mode) and current.st_dev != self.root_dev:
            self.outcome.skipped.append((path, "a file system mounted there: never carried across"))
            return
        if current is not None and stat.S_ISREG(current.st_mode) and self.recordable(path):
            self._conflict(path, "the command replaced your file with a folder, which /undo could not reverse",
                           layer, name)
            return
        if current is not None and not stat.S_ISDIR(current.st_mode):
            self.remove(path, host, name)  # the command replaced a link or special file with a folder
            current = self._lstat(host, name)
            if current is not None:
                self._conflict(path, "changed by you while the command replaced it with a folder", layer, name)
                return
        made = current is None
        if made and self._has_origin(layer, name):
            self._conflict(path, "deleted or moved by you while the command ran, and written into by the command",
                           layer, name)
            return
        if made:
            os.mkdir(name, 0o700, dir_fd=host)  # its own mode once its entries are in
        child = os.open(name, _DIR, dir_fd=host)
        inner = None
        try:
            if os.fstat(child).st_dev != self.root_dev:
                self.outcome.skipped.append((path, "a file system mounted there: never carried across"))
                return
            inner = self._open_layer(layer, name)
            self.folder(path + "/", inner, child, opaque=not made and self._is_opaque(layer, name), ours=made)
        finally:
            if made:
                self._chmod_folder(child, stat.S_IMODE(info.st_mode) & 0o777)
            os.close(child)
            if inner is not None:
                os.close(inner)

    def leaf(self, path: str, layer: int, host: int, name: str, info: os.stat_result,
             parent_touched: bool) -> None:
        """A file or link the command wrote at `path`."""
        current = self._lstat(host, name)
        if current is not None and stat.S_ISDIR(current.st_mode):
            if current.st_dev != self.root_dev:
                self.outcome.skipped.append((path, "a file system mounted there: never carried across"))
                return
            self.remove(path, host, name)  # the command replaced a folder with a file
            current = self._lstat(host, name)
            if current is not None:
                self._conflict(path, "a folder you changed while the command replaced it", layer, name)
                return
        is_link = stat.S_ISLNK(info.st_mode)
        after: object = UNKNOWN
        if not is_link and current is None:  # a new file's content: only for recording it
            after = self._keep_after(self._read_layer(layer, name, cap=min(FILE_CAP, self.after_budget)))
        elif not is_link and self.recordable(path):  # a replacement's: for /undo, from the user's budget
            after = self._read_layer(layer, name, cap=min(FILE_CAP, self.before_budget))
            if isinstance(after, bytes):
                self.before_budget -= len(after)
        source = self._users_edit(path, layer, name, info, after) if not is_link else None
        if source is not None:
            self._conflict(path, f"made by the command from {line(source)}, which you changed while it ran "
                                 "(your edit is not the agent's)", layer, name)
            return
        if current is None:
            if parent_touched and isinstance(self.expected(path), bytes):
                self._conflict(path, "deleted by you while the command ran, and written by the command", layer, name)
                return
            if self._move_new(layer, name, info, host):
                self._placed(path, host, name)
                self.outcome.changes.append(Change(path, None, after))
                return
            staged = self._stage(layer, name, info, host)
            try:
                rename2(host, staged, host, name, RENAME_NOREPLACE)
            except OSError as exc:
                if exc.errno == 17:  # EEXIST: the user made it meanwhile
                    self._keep_host_aside(host, staged, path, "made by you while the command's version was "
                                                              "being carried")
                    return
                if exc.errno not in (22, 38, 95):
                    self._unlink_quietly(host, staged)
                    raise
                os.rename(staged, name, src_dir_fd=host, dst_dir_fd=host)  # no renameat2 flags here
            self._placed(path, host, name)
            self.outcome.changes.append(Change(path, None, after))
            return
        self._replace(path, layer, host, name, info, current, after)

    def _replace(self, path: str, layer: int, host: int, name: str, info: os.stat_result,
                 current: os.stat_result, after: object) -> None:
        """Exchange the command's version with the host's `name`, the user's file checked before and after."""
        held = None
        if stat.S_ISREG(current.st_mode):
            held = os.open(name, _READ, dir_fd=host)
        try:
            first = os.fstat(held) if held is not None else current
            if first.st_ino != current.st_ino or (
                    self._touched(first, path) and not self._as_expected(path, held, first)):
                self._conflict(path, "changed by you while the command ran, and written by the command", layer, name)
                return
            before: object = UNKNOWN
            if held is not None and self.recordable(path):
                if stat.S_ISLNK(info.st_mode):
                    self._conflict(path, "the command replaced your file with a link, which /undo could not "
                                         "reverse", layer, name)
                    return
                before = self._read_before(held, first)
                if before is UNKNOWN or after is UNKNOWN:
                    self._conflict(path, "too large to keep its content for /undo, so not overwritten",
                                   layer, name)
                    return
                if signature(os.fstat(held)) != signature(first):
                    self._conflict(path, "changed by you while it was being carried", layer, name)
                    return
            staged = self._stage(layer, name, info, host)
            try:
                rename2(host, staged, host, name, RENAME_EXCHANGE)
            except OSError as exc:
                if exc.errno not in (22, 38, 95):
                    self._unlink_quietly(host, staged)
                    raise
                os.rename(staged, name, src_dir_fd=host, dst_dir_fd=host)  # no renameat2 flags here
                staged = None
            if staged is not None:
                displaced = self._lstat(host, staged)
                still = os.fstat(held) if held is not None else displaced
                if (displaced is None or displaced.st_ino != first.st_ino or still is None
                        or content_signature(still) != content_signature(first)):
                    rename2(host, staged, host, name, RENAME_EXCHANGE)  # give the user's file its place back
                    self._keep_host_aside(host, staged, path, "changed by you while it was being carried")
                    return
                self._unlink_quietly(host, staged)
            self._placed(path, host, name)
            self.outcome.changes.append(Change(path, before, after))
        finally:
            if held is not None:
                os.close(held)

    def remove(self, path: str, host: int, name: str) -> None:
        """The command deleted `path`: delete it (a folder entry by entry) where that is provably the
        command's deletion; keep it as a conflict otherwise."""
        current = self._lstat(host, name)
        if current is None:
            return
        if name == ".git":
            self.outcome.skipped.append((path, "a .git entry is never removed for a command"))
            return
        if current.st_dev != self.root_dev:
            self.outcome.skipped.append((path, "a file system mounted there: a deletion is never carried across"))
            return
        if stat.S_ISDIR(current.st_mode):
            self._remove_folder(path, host, name, current)
            return
        held = os.open(name, _READ, dir_fd=host) if stat.S_ISREG(current.st_mode) else None
        try:
            first = os.fstat(held) if held is not None else current
            if first.st_ino != current.st_ino or (
                    self._touched(first, path) and not self._as_expected(path, held, first)):
                self._conflict_noted(path, "changed by you while the command ran, and deleted by the command")
                return
            keep = held is not None and self.recordable(path)
            before = self._read_before(held, first) if keep else UNKNOWN
            if keep and before is UNKNOWN:
                self._conflict_noted(path, "deleted by the command, but too large to keep its content for /undo, "
                                           "so not deleted")
                return
            hidden = temp_name(name)
            os.rename(name, hidden, src_dir_fd=host, dst_dir_fd=host)
            displaced = self._lstat(host, hidden)
            still = os.fstat(held) if held is not None else displaced
            if (displaced is None or displaced.st_ino != first.st_ino or still is None
                    or content_signature(still) != content_signature(first)):
                try:
                    rename2(host, hidden, host, name, RENAME_NOREPLACE)
                    self._conflict_noted(path, "changed by you while the command's deletion was being carried")
                except OSError:
                    self._conflict_noted(path, f"changed by you while the command's deletion was being carried; "
                                               f"your version is at {line(hidden)} beside it")
                return
            os.unlink(hidden, dir_fd=host)
            self.outcome.changes.append(Change(path, before, None))
        finally:
            if held is not None:
                os.close(held)

    def _remove_folder(self, path: str, host: int, name: str, current: os.stat_result) -> None:
        if path.count("/") > MAX_DEPTH:
            self.outcome.skipped.append((path, f"a deletion nested deeper than {MAX_DEPTH} folders"))
            return
        if self._touched(current, path + "/"):
            # Something was added, removed or renamed in it since the command started: what is in it
            # now is not provably what the command deleted.
            self._conflict_noted(path, "changed by you (something added, moved or removed in it) while the "
                                       "command deleted it; kept")
            return
        child = os.open(name, _DIR, dir_fd=host)
        try:
            if os.fstat(child).st_ino != current.st_ino:
                self._conflict_noted(path, "replaced by you while the command deleted it; kept")
                return
            for inner in self._host_names(child):
                if time.monotonic() > self.deadline:
                    self._conflict_noted(path, f"the carry stopped after {self.seconds:.0f} s before all of "
                                               "this deletion was done")
                    break
                self._guarded(f"{path}/{inner}", lambda n=inner: self.remove(f"{path}/{n}", child, n))
        finally:
            os.close(child)
        try:
            os.rmdir(name, dir_fd=host)
        except OSError:
            pass  # something was kept (a conflict, a .git): the folder stays

    # -- host side

    def _touched(self, info: os.stat_result, path: str) -> bool:
        """Changed on the host since the command started (the command itself cannot write the host tree)."""
        if self.placed_before.get(path) == (info.st_ino, info.st_ctime_ns):
            return False  # exactly as an earlier carry left it
        return info.st_ctime_ns >= self.since

    def _placed(self, path: str, host: int, name: str) -> None:
        info = self._lstat(host, name)
        if info is not None:
            self.outcome.placed[path] = (info.st_ino, info.st_ctime_ns)

    def _as_expected(self, path: str, held: int | None, info: os.stat_result) -> bool:
        """Whether a recently changed file still holds what the agent knew it held before the command."""
        known = self.expected(path)
        if held is None or known is UNKNOWN or known is None or not stat.S_ISREG(info.st_mode):
            return False
        if info.st_size != len(known):
            return False
        return _read_fd(held, 0, FILE_CAP) == known

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

    @staticmethod
    def _names(layer: int) -> list[os.DirEntry]:
        with os.scandir(layer) as entries:
            return sorted(entries, key=lambda e: e.name)

    def _read_before(self, held: int, info: os.stat_result) -> object:
        """The user's file's bytes for /undo, within FILE_CAP and what is left of BEFORE_BUDGET, else UNKNOWN."""
        if info.st_size > min(FILE_CAP, self.before_budget):
            return UNKNOWN
        data = _read_fd(held, 0, min(FILE_CAP, self.before_budget))
        if isinstance(data, bytes):
            self.before_budget -= len(data)
        return data

    def _read_unbudgeted(self, host: int, name: str) -> object:
        try:
            fd = os.open(name, _READ, dir_fd=host)
        except OSError:
            return UNKNOWN
        try:
            return _read_fd(fd, 0, FILE_CAP)
        finally:
            os.close(fd)

    def _keep_after(self, data: object) -> object:
        if isinstance(data, bytes):
            if len(data) > self.after_budget:
                return UNKNOWN
            self.after_budget -= len(data)
        return data

    def _chmod_folder(self, folder: int, mode: int) -> None:
        try:
            listing = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=folder)
        except OSError:
            return
        try:
            os.fchmod(listing, mode)
        except OSError:
            pass
        finally:
            os.close(listing)

    # -- layer side (the layer is ours and nothing runs in it any more: opening it up is safe)

    @staticmethod
    def _open_layer(layer: int, name: str) -> int:
        """A layer folder, opened up for us (the command may have left it 0555 or 000: its entries are
        moved out of it, which needs write permission there; the mode carried was read before)."""
        try:
            fd = os.open(name, _LIST, dir_fd=layer)
        except PermissionError:
            os.chmod(f"/proc/self/fd/{layer}/{name}", 0o700)
            return os.open(name, _LIST, dir_fd=layer)
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o700 != 0o700:
            try:
                os.fchmod(fd, mode | 0o700)
            except OSError:
                pass
        return fd

    @staticmethod
    def _is_opaque(layer: int, name: str) -> bool:
        return is_opaque(f"/proc/self/fd/{layer}/{name}")

    @staticmethod
    def _has_origin(layer: int, name: str) -> bool:
        return has_origin(f"/proc/self/fd/{layer}/{name}")

    @staticmethod
    def _open_layer_file(layer: int, name: str) -> int:
        try:
            return os.open(name, _READ, dir_fd=layer)
        except PermissionError:
            os.chmod(f"/proc/self/fd/{layer}/{name}", 0o600)
            return os.open(name, _READ, dir_fd=layer)

    def _read_layer(self, layer: int, name: str, *, cap: int) -> object:
        try:
            fd = self._open_layer_file(layer, name)
        except OSError:
            return UNKNOWN
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size > cap:
                return UNKNOWN
            return _read_fd(fd, 0, cap)
        finally:
            os.close(fd)

    def _move_new(self, layer: int, name: str, info: os.stat_result, host: int) -> bool:
        """A new file moved straight from the layer into place in one rename that never replaces anything
        (most files a command writes are new: one rename, not two); False where that cannot be done
        (another file system, a link, a hard-linked file, a name made meanwhile: the staged path then)."""
        if not (self.same_device and stat.S_ISREG(info.st_mode) and info.st_nlink == 1):
            return False
        os.chmod(f"/proc/self/fd/{layer}/{name}", stat.S_IMODE(info.st_mode) & 0o777)
        try:
            rename2(layer, name, host, name, RENAME_NOREPLACE)
        except OSError:
            return False
        return True

    def _stage(self, layer: int, name: str, info: os.stat_result, host: int) -> str:
        """The command's file or link under a hidden name in the host folder: moved where the layer is on
        the same file system, else copied (holes kept, CARRY_BYTES at most); special bits dropped."""
        temp = temp_name(name)
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(name, dir_fd=layer), temp, dir_fd=host)
            return temp
        mode = stat.S_IMODE(info.st_mode) & 0o777
        if self.same_device and info.st_nlink == 1:
            os.chmod(f"/proc/self/fd/{layer}/{name}", mode)
            os.rename(name, temp, src_dir_fd=layer, dst_dir_fd=host)
            return temp
        src = self._open_layer_file(layer, name)
        try:
            dst = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=host)
            try:
                self.copy_budget = copy_sparse(src, dst, self.copy_budget)
                os.fchmod(dst, mode)
            except BaseException:
                os.close(dst)
                dst = -1
                self._unlink_quietly(host, temp)
                raise
            finally:
                if dst >= 0:
                    os.close(dst)
        finally:
            os.close(src)
        return temp

    # -- conflicts and what is left

    def _conflict(self, path: str, why: str, layer: int, name: str) -> None:
        """Keep the command's version of `path` where the user can get it, and report the conflict."""
        kept = None
        try:
            target = private_dir(self.conflicts_dir) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(name, target, src_dir_fd=layer)
            kept = str(target)
        except (OSError, PathRefused):
            self._left(path, "the command's version of a conflict")
        self.outcome.conflicts.append(Conflict(path, why, kept))

    def _conflict_noted(self, path: str, why: str) -> None:
        self.outcome.conflicts.append(Conflict(path, why, None))

    def _keep_host_aside(self, host: int, staged: str, path: str, why: str) -> None:
        """The command's staged version (in the host folder) goes to the conflicts folder."""
        kept = None
        try:
            target = private_dir(self.conflicts_dir) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staged, target, src_dir_fd=host)
            except OSError as exc:
                if exc.errno != 18:  # EXDEV
                    raise
                src = os.open(staged, _READ, dir_fd=host)
                try:
                    dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                    try:
                        copy_sparse(src, dst, CARRY_BYTES)
                    finally:
                        os.close(dst)
                finally:
                    os.close(src)
                os.unlink(staged, dir_fd=host)
            kept = str(target)
        except (OSError, PathRefused):
            self._unlink_quietly(host, staged)
        self.outcome.conflicts.append(Conflict(path, why, kept))

    @staticmethod
    def _unlink_quietly(host: int, name: str) -> None:
        try:
            os.unlink(name, dir_fd=host)
        except OSError:
            pass

    def _left(self, path: str, why: str) -> None:
        self.outcome.left.append((path, why))


__all__ = ["Change", "CarryFailed", "Conflict", "Outcome", "UNKNOWN", "apply", "is_opaque", "is_whiteout",
           "origin_inode", "FILE_CAP", "SLACK_NS"]
