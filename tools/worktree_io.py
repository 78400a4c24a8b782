"""Host-side reads, restores and deletes beneath the work tree that never follow a link.

Undo and commit act on paths the agent recorded, but the model (or a process
it left running) can replace any folder on the way with a symbolic link to
somewhere else. Each operation here walks from a directory descriptor of the
repository root one component at a time with O_NOFOLLOW, so the check and the
use are the same system call: a link anywhere on the path is refused with
LinkRefused, never followed. Files are read only when regular (a FIFO never
blocks: O_NONBLOCK), with a size cap.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

READ_CAP = 64 * 2**20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkRefused(OSError):
    """A path component is a symbolic link or a special file; nothing was read or written through it."""


def _parts(relative: str) -> list[str]:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise LinkRefused(f"{relative}: not a plain path inside the repository")
    if parts[0] == ".git":
        raise LinkRefused(f"{relative}: inside .git")
    return list(parts)


@contextmanager
def _parent_fd(root: Path, relative: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """A descriptor of the folder holding `relative`, reached without following any link."""
    parts = _parts(relative)
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise LinkRefused(f"{relative}: {part} is a symbolic link; not followed") from None
                raise NotADirectoryError(f"{relative}: {part} is not a folder") from None
            os.close(fd)
            fd = child
        yield fd, parts[-1]
    finally:
        os.close(fd)


def read_file(root: Path, relative: str, *, cap: int = READ_CAP) -> bytes | None:
    """The file's bytes, or None when it does not exist; LinkRefused for links and special files."""
    try:
        with _parent_fd(root, relative) as (parent, name):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
            except FileNotFoundError:
                return None
            except OSError:
                raise LinkRefused(f"{relative}: a symbolic link or special file; not followed") from None
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LinkRefused(f"{relative}: not a regular file")
        if info.st_size > cap:
            raise LinkRefused(f"{relative}: larger than {cap >> 20} MiB")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise LinkRefused(f"{relative}: larger than {cap >> 20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_executable(root: Path, relative: str) -> bool:
    """Whether the regular file at `relative` has an execute bit (False when missing or not regular)."""
    try:
        with _parent_fd(root, relative) as (parent, name):
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and bool(info.st_mode & 0o111)


def write_file(root: Path, relative: str, data: bytes, *, mode: int | None = None) -> None:
    """Replace the file atomically (temp file + rename in the same folder); a link in the way is replaced,
    never written through; missing folders are created without following links."""
    with _parent_fd(root, relative, create=True) as (parent, name):
        if mode is None:
            try:
                current = os.stat(name, dir_fd=parent, follow_symlinks=False)
                mode = stat.S_IMODE(current.st_mode) if stat.S_ISREG(current.st_mode) else 0o644
            except FileNotFoundError:
                mode = 0o644
        temp = f".{name}.gptoss-{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=parent)
            except OSError:
                pass
            raise


def remove_file(root: Path, relative: str) -> None:
    """Delete the entry itself (a link is removed, not its target); missing is fine."""
    try:
        with _parent_fd(root, relative) as (parent, name):
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
    except (FileNotFoundError, NotADirectoryError):
        pass


def check_path(root: Path, relative: str) -> None:
    """Raise LinkRefused if any existing component of `relative` is a link or the final entry is special."""
    read_file(root, relative)
