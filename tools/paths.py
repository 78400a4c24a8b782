"""The workspace jail: every path a file tool touches resolves beneath the workspace.

Refused: NUL bytes, absolute paths outside, `..` escapes, symlinks that lead
out, non-regular files, writes into `.git/`, and reads of obvious secrets
unless the user allowed them. Writes are atomic (temp file, fsync, rename) and
keep the file's mode.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import tempfile
from pathlib import Path

SECRET_PATTERNS = (".env", ".env.*", "*.env", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "id_*", "*.pem",
                   "*.key", ".netrc", ".git-credentials", ".pgpass", "credentials", "*.p12", "*.pfx")


class PathRefused(ValueError):
    """The path is outside the workspace or otherwise off limits; the message says why."""


def resolve(workspace: Path, path: str, *, for_write: bool = False, allow_secrets: bool = False) -> Path:
    """The absolute, symlink-free path for `path` inside `workspace`, or PathRefused."""
    if "\x00" in path:
        raise PathRefused("path contains a NUL byte")
    root = workspace.resolve()
    raw = Path(path.strip() or ".")
    candidate = raw if raw.is_absolute() else root / raw
    real = Path(os.path.realpath(candidate))
    if real != root and not real.is_relative_to(root):
        lexical = Path(os.path.normpath(candidate))
        if lexical == root or lexical.is_relative_to(root):
            raise PathRefused(f"{path}: a symbolic link leads outside the workspace")
        raise PathRefused(f"{path}: outside the workspace ({root})")
    relative = real.relative_to(root)
    if for_write and relative.parts[:1] == (".git",):
        raise PathRefused(f"{path}: writing inside .git is not allowed")
    if not allow_secrets and is_secret(relative):
        raise PathRefused(f"{path}: looks like a secret (credentials, keys); the user has not allowed reading it")
    return real


_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))


def is_secret(relative: Path) -> bool:
    """Names that usually hold credentials (.env files, SSH keys, certificates, .netrc)."""
    return _SECRET.match(relative.name) is not None


def relative_name(workspace: Path, path: Path) -> str:
    return path.resolve().relative_to(workspace.resolve()).as_posix()


def read_regular_file(path: Path) -> bytes:
    """Read a regular file without following a symlink swapped in at the last moment."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRefused(f"{path.name}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` so a reader sees the old file or the new one, never half; keep the mode."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
