"""File-system primitives for carrying an overlay layer (tools.overlay_changes): no policy here.

The overlay's own marks on a layer entry (whiteout, opaque, origin), renameat2
with its flags (RENAME_EXCHANGE, RENAME_NOREPLACE: the check-and-replace of the
carry depends on them), a bounded read through a held descriptor, and a copy
that keeps holes. Only the standard library.
"""

from __future__ import annotations

import ctypes
import os
import stat
from pathlib import Path

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def is_opaque(path: Path | str) -> bool:
    return any(_xattr(str(path), f"{ns}.overlay.opaque") == b"y" for ns in ("user", "trusted"))


def has_origin(path: Path | str) -> bool:
    return any(_xattr(str(path), f"{ns}.overlay.origin") is not None for ns in ("user", "trusted"))


def origin_inode(path: Path | str) -> int | None:
    """The lower inode a copied-up entry came from, where the handle format is known (ext2/3/4), else None."""
    for ns in ("user", "trusted"):
        handle = _xattr(str(path), f"{ns}.overlay.origin")
        # struct ovl_fb: version 0, magic 0xfb, len, flags, type, uuid[16], then the file system's fid
        if handle and len(handle) >= 25 and handle[0] == 0 and handle[1] == 0xFB and handle[4] in (1, 2, 0x81):
            return int.from_bytes(handle[21:25], "little")
    return None


def rename2(src_dir: int, src: str, dst_dir: int, dst: str, flags: int) -> None:
    """renameat2 with `flags`; OSError(EINVAL) where the C library or the file system lacks it."""
    if _renameat2 is None:
        raise OSError(22, "renameat2 unavailable")
    if _renameat2(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), src)


def signature(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def content_signature(info: os.stat_result) -> tuple[int, ...]:
    """What a write changes and a rename does not (renames move the change time)."""
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def temp_name(name: str) -> str:
    return f".{name[:40]}.{os.urandom(6).hex()}.gptoss-tmp"


def read_fd(fd: int, offset: int, cap: int) -> bytes | None:
    """A descriptor's bytes from `offset` (pread: a held descriptor is read again from the start); None past `cap`."""
    chunks, size = [], 0
    while chunk := os.pread(fd, 1 << 20, offset + size):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return None
    return b"".join(chunks)


def copy_sparse(src: int, dst: int, budget: int) -> int:
    """Copy `src` into `dst` keeping holes (SEEK_DATA/SEEK_HOLE); returns the budget left, OSError(EFBIG) past it."""
    size = os.fstat(src).st_size
    offset = 0
    while offset < size:
        try:
            start = os.lseek(src, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == 6:  # ENXIO: only a hole is left
                break
            start = offset
        try:
            end = os.lseek(src, start, os.SEEK_HOLE)
        except OSError:
            end = size
        length = end - start
        if length > budget:
            raise OSError(27, "more bytes to copy from the layer than the carry allows")
        budget -= length
        copied = start
        while copied < end:
            try:
                done = os.copy_file_range(src, dst, end - copied, copied, copied)
            except OSError:
                done = 0
            if done <= 0:
                chunk = os.pread(src, min(1 << 20, end - copied), copied)
                if not chunk:
                    break
                done = os.pwrite(dst, chunk, copied)
            copied += done
        offset = end
    os.ftruncate(dst, size)
    return budget
