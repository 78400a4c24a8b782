"""Host-side file access beneath the workspace that no link, special file or race can redirect.

The repository is untrusted and can change while we look at it (the model's
commands run concurrently in the sandbox, a second agent may share the
checkout). So a path is never checked and then opened by name: every open,
write and delete is one operation relative to a directory file descriptor of
the workspace.

- `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it
  (Linux 5.6+): the kernel itself refuses any symlink and any escape.
- Otherwise, and whenever a symlink is met, a component-by-component walk:
  each folder is opened with `O_NOFOLLOW | O_DIRECTORY` relative to the previous
  folder's descriptor, so swapping a folder for a link between two steps makes
  the open fail instead of leading elsewhere.

Links that stay inside the repository still work for reads: the walk reads the
link and resolves it itself (bounded hops, never above the root). Writes and
deletes never pass through a link at all. Reads accept regular files only (a
FIFO is opened non-blocking and refused, devices and sockets too) and are
capped in size. Writes are atomic: a temporary file in the same folder
descriptor, then `renameat`, so a link planted at the name is replaced, never
followed. `write_new_file` and `read_private_file` do the same for files the
agent keeps outside the repository (reports, caches).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path, PurePosixPath

from gptoss_agent.tools.denylist import holds_private_key, is_secret_path

MAX_READ_BYTES = 16 << 20  # host-side reads of repository files; more is refused, not truncated
MAX_LINK_HOPS = 40

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every Linux architecture (syscalls added after 5.1 are unified)
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class PathRefused(ValueError):
    """The path is outside the workspace or otherwise off limits; the message says why."""


class TooLarge(PathRefused):
    """A regular file over the size limit of the read that asked for it."""


# ---------------------------------------------------------------- openat2

class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2_usable: list[bool] = []  # decided on first use: [True] or [False]


def _syscall():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    return function


_SYSCALL = _syscall()


def _openat2(dir_fd: int, relative: str, flags: int) -> int | None:
    """A descriptor opened by the kernel with no symlink and no escape, or None if openat2 is unavailable."""
    if _SYSCALL is None or _openat2_usable == [False]:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    for _ in range(8):  # EAGAIN: the kernel saw a concurrent rename and asks us to retry
        fd = _SYSCALL(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(relative)),
                      ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            if not _openat2_usable:
                _openat2_usable.append(True)
            return fd
        code = ctypes.get_errno()
        if code == errno.EAGAIN:
            continue
        if code in (errno.ENOSYS, errno.EPERM) and not _openat2_usable:  # old kernel, or a seccomp filter
            _openat2_usable.append(False)
            return None
        raise OSError(code, os.strerror(code), relative)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), relative)


# ---------------------------------------------------------------- the walk

class _LinkFound(Exception):
    def __init__(self, index: int, target: str) -> None:
        super().__init__(target)
        self.index, self.target = index, target


def _readlink(dir_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def _walk_once(root_fd: int, parts: tuple[str, ...], flags: int) -> int:
    current = root_fd
    try:
        for index, name in enumerate(parts):
            last = index == len(parts) - 1
            try:
                fd = os.open(name, (flags | os.O_NOFOLLOW | os.O_CLOEXEC) if last else _DIR, dir_fd=current)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    target = _readlink(current, name)
                    if target is not None:
                        raise _LinkFound(index, target) from None
                raise
            if last and flags & os.O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode):
                os.close(fd)
                target = _readlink(current, name)
                if target is not None:
                    raise _LinkFound(index, target)
                raise OSError(errno.ELOOP, "changed while being opened", name)
            if current != root_fd:
                os.close(current)
            current = fd
        if not parts:
            current = os.open(".", flags | os.O_CLOEXEC, dir_fd=root_fd)
        return current
    except BaseException:
        if current != root_fd:
            os.close(current)
        raise


def _splice(root: str, parts: tuple[str, ...], index: int, target: str, shown: str) -> tuple[str, ...]:
    """The path after replacing component `index` (a link) by its target, or PathRefused if it leaves."""
    if target.startswith("/"):
        norm = os.path.normpath(target)
        if norm != root and not norm.startswith(root.rstrip("/") + "/"):
            raise PathRefused(f"{shown}: a symbolic link leads outside the workspace")
        head: list[str] = []
        target = norm[len(root):]
    else:
        head = list(parts[:index])
    return _normalise(head, target.split("/") + list(parts[index + 1:]), shown, "a symbolic link leads outside")


def _normalise(head: list[str], tail: list[str], shown: str, why: str) -> tuple[str, ...]:
    parts = list(head)
    for part in tail:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(f"{shown}: {why} the workspace")
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


class Workspace:
    """The repository root as a directory descriptor, and every path operation beneath it."""

    def __init__(self, root: Path | str) -> None:
        self.given = os.path.abspath(os.fspath(root))
        self.real = os.path.realpath(self.given)
        self.fd = os.open(self.real, _DIR & ~os.O_NOFOLLOW)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- names

    def parts(self, path: str) -> tuple[str, ...]:
        """The path's components relative to the root, lexically normalised; PathRefused if it leaves."""
        if "\x00" in path:
            raise PathRefused("path contains a NUL byte")
        text = path.strip() or "."
        if text.startswith("/"):
            norm = os.path.normpath(text)
            for base in (self.real, self.given):
                if norm == base:
                    return ()
                if norm.startswith(base.rstrip("/") + "/"):
                    text = norm[len(base.rstrip("/")) + 1:]
                    break
            else:
                raise PathRefused(f"{path}: outside the workspace ({self.given})")
        return _normalise([], text.split("/"), path, "outside")

    # -- opening

    def open(self, path: str, flags: int, *, follow_inside: bool = True) -> tuple[int, tuple[str, ...]]:
        """A descriptor for `path` and its resolved components; links out (or any link, for writes) refused."""
        parts = self.parts(path)
        if parts:
            try:
                fd = _openat2(self.fd, "/".join(parts), flags)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.EXDEV):
                    raise
                fd = None  # a link on the way: the walk resolves it (reads) or names it (writes)
            if fd is not None:
                return fd, parts
        hops = 0
        while True:
            try:
                return _walk_once(self.fd, parts, flags), parts
            except _LinkFound as link:
                shown = "/".join(parts[:link.index + 1])
                if not follow_inside:
                    raise PathRefused(f"{path}: {shown} is a symbolic link; writes never follow links") from None
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise PathRefused(f"{path}: too many symbolic links") from None
                parts = _splice(self.real, parts, link.index, link.target, path)

    def stat(self, path: str, *, follow_inside: bool = True) -> os.stat_result:
        """The entry at `path`, looked at without opening it (O_PATH: a FIFO cannot block, no read permission
        is needed); links out refused, links inside followed unless `follow_inside` is False."""
        fd, _ = self.open(path, os.O_PATH, follow_inside=follow_inside)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def kind(self, path: str) -> str | None:
        """'file', 'dir', 'other' or None (missing), following links that stay inside."""
        try:
            mode = self.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"

    def resolved(self, path: str) -> str:
        """The relative path `path` names once links inside are resolved ('.' for the root)."""
        fd, parts = self.open(path, os.O_PATH)
        os.close(fd)
        return "/".join(parts) or "."

    def read(self, path: str, *, max_bytes: int = MAX_READ_BYTES, allow_secrets: bool = False,
             follow_inside: bool = True, truncate: bool = False) -> tuple[bytes, str]:
        """The bytes of a regular file and its resolved relative path.

        Raises FileNotFoundError, IsADirectoryError, or PathRefused for links
        out, special files, secrets (by name or private-key content) and files
        over `max_bytes` (with `truncate`, their first `max_bytes` instead).
        """
        if not allow_secrets and is_secret_path(PurePosixPath(*self.parts(path) or ("",))):
            raise PathRefused(f"{path}: looks like a secret (credentials, keys); the agent does not read such files")
        try:
            fd, parts = self.open(path, _READ, follow_inside=follow_inside)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # what opening a socket (or a device with no driver) answers
                raise PathRefused(f"{path}: not a regular file (a socket or device); it is not read") from None
            raise
        relative = "/".join(parts) or "."
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder", path)
            if not stat.S_ISREG(info.st_mode):
                raise PathRefused(f"{path}: not a regular file ({_kind_name(info.st_mode)}); it is not read")
            if not allow_secrets and is_secret_path(relative):
                raise PathRefused(f"{path}: leads to {relative}, which looks like a secret; not read")
            if info.st_size > max_bytes and not truncate:
                raise TooLarge(f"{path}: too large to read here ({info.st_size:,} bytes; the limit is "
                                  f"{max_bytes:,})")
            data = _read_at_most(fd, max_bytes)
        finally:
            os.close(fd)
        if len(data) > max_bytes and truncate:
            data = data[:max_bytes]
        elif len(data) > max_bytes:
            raise TooLarge(f"{path}: grew past {max_bytes:,} bytes while being read")
        if not allow_secrets and holds_private_key(data):
            raise PathRefused(f"{path}: holds a private key; not read")
        return data, relative

    def holds_private_key(self, path: str, *, limit: int = 64 << 20) -> bool:
        """Whether a regular file holds a private key, scanned in bounded chunks (True when it cannot be checked)."""
        try:
            fd, _ = self.open(path, _READ)
        except (OSError, PathRefused):
            return True
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return True
            tail, seen = b"", 0
            while seen < limit and (chunk := os.read(fd, 1 << 20)):
                if holds_private_key(tail + chunk):
                    return True
                tail, seen = chunk[-80:], seen + len(chunk)
            return False
        finally:
            os.close(fd)

    def list(self, path: str) -> list[tuple[str, bool]]:
        """(name, is a real folder) for each entry of a folder; links are listed, never entered."""
        fd, _ = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as entries:
                return sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
        finally:
            os.close(fd)

    # -- writing

    def check_writable(self, path: str, *, allow_secrets: bool = False) -> str:
        """The relative path a write to `path` would touch, or PathRefused (checked again when writing)."""
        parts = self.parts(path)
        if not parts:
            raise PathRefused(f"{path}: not a file")
        if any(part.lower() == ".git" for part in parts):
            raise PathRefused(f"{path}: writing inside .git is not allowed")
        if not allow_secrets and is_secret_path("/".join(parts)):
            raise PathRefused(f"{path}: looks like a secret (credentials, keys); the agent does not write such files")
        current = os.dup(self.fd)
        try:
            for index, name in enumerate(parts):
                try:
                    info = os.stat(name, dir_fd=current, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    break
                if stat.S_ISLNK(info.st_mode):
                    raise PathRefused(f"{path}: {'/'.join(parts[:index + 1])} is a symbolic link; "
                                      "writes never follow links")
                if index == len(parts) - 1 or not stat.S_ISDIR(info.st_mode):
                    break
                try:
                    fd = os.open(name, _DIR, dir_fd=current)
                except OSError:
                    break  # changed under us; the write itself walks again, link-free
                os.close(current)
                current = fd
        finally:
            os.close(current)
        return "/".join(parts)

    def write(self, path: str, data: bytes, *, allow_secrets: bool = False) -> None:
        """Replace (or create) a file atomically, keeping its mode; no link anywhere on the way."""
        relative = self.check_writable(path, allow_secrets=allow_secrets)
        parent, name = self._parent(relative, create=True)
        try:
            mode = 0o644
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            if info is not None:
                if stat.S_ISLNK(info.st_mode):
                    raise PathRefused(f"{path} is a symbolic link; writes never follow links")
                if not stat.S_ISREG(info.st_mode):
                    raise PathRefused(f"{path}: not a regular file ({_kind_name(info.st_mode)})")
                mode = stat.S_IMODE(info.st_mode)
            _replace_in(parent, name, data, mode)
        finally:
            os.close(parent)

    def remove(self, path: str) -> None:
        """Delete a file, or a link itself, by name in its folder's descriptor; missing is fine.

        A link at the name is removed, never followed (unlinkat does not follow);
        a link among the folders on the way is refused.
        """
        parts = self.parts(path)
        if not parts:
            raise PathRefused(f"{path}: not a file")
        if any(part.lower() == ".git" for part in parts):
            raise PathRefused(f"{path}: writing inside .git is not allowed")
        try:
            parent, name = self._parent("/".join(parts), create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder", path)
            os.unlink(name, dir_fd=parent)
        finally:
            os.close(parent)

    def _parent(self, relative: str, *, create: bool) -> tuple[int, str]:
        """A descriptor of the file's folder (created if asked) reached with no link, and the file's name."""
        *folders, name = relative.split("/")
        current = os.dup(self.fd)
        try:
            for index, folder in enumerate(folders):
                try:
                    fd = os.open(folder, _DIR, dir_fd=current)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(folder, 0o777, dir_fd=current)
                    except FileExistsError:
                        pass
                    fd = os.open(folder, _DIR, dir_fd=current)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _readlink(current, folder) is not None:
                        shown = "/".join(folders[:index + 1])
                        raise PathRefused(f"{relative}: {shown} is a symbolic link; writes never follow links") \
                            from None
                    raise
                os.close(current)
                current = fd
            return current, name
        except BaseException:
            os.close(current)
            raise


def _kind_name(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _replace_in(parent: int, name: str, data: bytes, mode: int) -> None:
    """Write a temporary sibling created exclusively and no-follow, then rename it over `name`."""
    for _ in range(16):
        temp = f".{name[:40]}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
            break
        except FileExistsError:
            continue
    else:
        raise OSError(errno.EEXIST, "could not create a temporary file", name)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temp, dir_fd=parent)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------- the agent's own files (reports, caches)

def write_new_file(path: Path, data: bytes, *, mode: int = 0o600, exclusive: bool = False) -> None:
    """Write one of the agent's own files (report, cache) without ever following a link at its name.

    The folder is the caller's choice; the name inside it is not trusted: a
    symlink or special file there is refused (PathRefused), never written
    through. With `exclusive`, an existing file is refused too (O_EXCL);
    otherwise a regular file is replaced atomically.
    """
    parent = os.open(os.fspath(path.parent) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            info = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None:
            if stat.S_ISLNK(info.st_mode):
                raise PathRefused(f"{path} is a symbolic link; not written through")
            if not stat.S_ISREG(info.st_mode):
                raise PathRefused(f"{path}: not a regular file ({_kind_name(info.st_mode)}); not written")
            if exclusive:
                raise FileExistsError(errno.EEXIST, "already exists", os.fspath(path))
        if exclusive:
            fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=parent)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        else:
            _replace_in(parent, path.name, data, mode)
    finally:
        os.close(parent)


def private_dir(path: Path) -> Path:
    """Create (or tighten) a folder only this user can read: 0700, ours, not a link. Returns `path`.

    A folder others may write to (world-writable, sticky like /tmp, or writable by a group that is not ours)
    is shared, not ours to tighten: as root, /tmp is root's, and tightening it once left every other user
    unable to create a file there. And a folder inside one another user can write to (their home, as under
    `sudo` keeping HOME) is refused before anything is created there: that user could swap it for a link
    between our check and our write, and send root's write anywhere."""
    parent = _first_unsafe_ancestor(path.parent)
    if parent is not None:
        raise PathRefused(f"{path}: inside {parent}, which another user can change; not used")
    os.makedirs(path.parent, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise PathRefused(f"{path}: owned by another user; not used")
        if _shared(info):
            raise PathRefused(f"{path}: a folder shared with other users; not used as a private one")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def _others_may_write(info: os.stat_result) -> bool:
    """Whether users other than this one (and root) may add, remove or rename entries in this folder: it is
    writable by everyone, or by a group that is not ours."""
    return bool(info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and info.st_gid != os.getegid()))


def _shared(info: os.stat_result) -> bool:
    """A folder set up for sharing (sticky like /tmp, setgid for a team) or that others may write to."""
    return bool(info.st_mode & (stat.S_ISVTX | stat.S_ISGID)) or _others_may_write(info)


def _first_unsafe_ancestor(folder: Path) -> Path | None:
    """The first existing folder on the way down to `folder` (links resolved) that a user other than this one
    and root owns or may rename entries in; a sticky folder (/tmp) protects entries that are not theirs."""
    current = Path(os.path.realpath(folder))
    for ancestor in (*reversed(current.parents), current):
        try:
            info = os.stat(ancestor)
        except FileNotFoundError:
            return None  # what is missing below is ours to create
        if info.st_uid not in (0, os.geteuid()):
            return ancestor
        if not info.st_mode & stat.S_ISVTX and _others_may_write(info):
            return ancestor
    return None


def read_private_file(path: Path, *, max_bytes: int) -> bytes | None:
    """One of the agent's own files, or None when it is missing, a link, special, foreign, shared or too large."""
    try:
        fd = os.open(path, _READ | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022
                or info.st_size > max_bytes):
            return None
        data = _read_at_most(fd, max_bytes)
        return data if len(data) <= max_bytes else None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- older helpers, kept for callers elsewhere

def resolve(workspace: Path, path: str, *, for_write: bool = False, allow_secrets: bool = False) -> Path:
    """The absolute path `path` names inside `workspace` (links inside resolved), or PathRefused.

    Only for naming (a working folder, a message); open files through
    `Workspace`, which checks and opens in one step.
    """
    with Workspace(workspace) as space:
        if for_write:
            relative = space.check_writable(path, allow_secrets=allow_secrets)
        else:
            try:
                relative = space.resolved(path)
            except FileNotFoundError:
                relative = "/".join(space.parts(path)) or "."
            if not allow_secrets and is_secret_path(relative):
                raise PathRefused(f"{path}: looks like a secret (credentials, keys); the agent does not use such files")
        return Path(space.real) / relative if relative != "." else Path(space.real)


def is_secret(relative: Path | str) -> bool:
    """Whether a relative path is on the credential deny list (see tools/denylist.py)."""
    return is_secret_path(relative)


def relative_name(workspace: Path, path: Path) -> str:
    return path.resolve().relative_to(workspace.resolve()).as_posix()


def read_regular_file(path: Path, *, max_bytes: int = MAX_READ_BYTES) -> bytes:
    """Read a regular file by absolute path: the last component is never followed, FIFOs never block."""
    fd = os.open(path, _READ | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{path.name}: not a regular file ({_kind_name(info.st_mode)})")
        data = _read_at_most(fd, max_bytes)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise PathRefused(f"{path.name}: larger than {max_bytes:,} bytes")
    return data


def read_small_text(path: Path, limit: int) -> str | None:
    """A regular file's first `limit` bytes as text, or None when it is missing, a link or special.

    For the small configuration files a repository holds (`.python-version`,
    `pyvenv.cfg`, `pyproject.toml`): never through a link (a `.python-version`
    linked to a host file would show that file), never a FIFO's hang, and
    capped, so a huge file costs one bounded read.
    """
    try:
        fd = os.open(path, _READ | os.O_NOFOLLOW)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` atomically by name in its folder; a link at the name is refused, never followed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(os.fspath(path.parent), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            info = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{path}: not a regular file ({_kind_name(info.st_mode)}); not written")
        _replace_in(parent, path.name, data, stat.S_IMODE(info.st_mode) if info else 0o644)
    finally:
        os.close(parent)


__all__ = ["MAX_READ_BYTES", "PathRefused", "TooLarge", "Workspace", "is_secret", "private_dir", "read_private_file",
           "read_regular_file", "relative_name", "resolve", "write_atomic", "write_new_file"]
