"""Host-side reads, restores and deletes for commit and undo: never through a link, not even one inside.

Undo and commit act on paths the agent recorded, but the model (or a process
it left running) can replace any folder on the way with a symbolic link to
somewhere else. This is a strict view over tools.paths.Workspace (one open
beneath the repository's directory descriptor, so check and use are one
operation): reads here do not follow links at all, even ones that stay inside,
because undo must compare and restore the very file the agent wrote. Any link
on the way, a special file or a file over the cap raises LinkRefused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gptoss_agent.tools.paths import PathRefused, Workspace

READ_CAP = 64 * 2**20


class LinkRefused(OSError):
    """A path component is a symbolic link or a special file; nothing was read or written through it."""


def read_file(root: Path, relative: str, *, cap: int = READ_CAP) -> bytes | None:
    """The file's bytes, or None when it does not exist; LinkRefused for links and special files."""
    try:
        with Workspace(root) as workspace:
            return workspace.read(relative, max_bytes=cap, allow_secrets=True, follow_inside=False)[0]
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PathRefused as exc:
        raise LinkRefused(str(exc)) from None
    except OSError as exc:
        raise LinkRefused(f"{relative}: {exc.strerror or exc}; not followed") from None


def is_executable(root: Path, relative: str) -> bool:
    """Whether the regular file at `relative` has an execute bit (False when missing, a link or special)."""
    try:
        with Workspace(root) as workspace:
            fd, _ = workspace.open(relative, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, follow_inside=False)
    except (OSError, PathRefused):
        return False
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return stat.S_ISREG(info.st_mode) and bool(info.st_mode & 0o111)


def write_file(root: Path, relative: str, data: bytes, *, mode: int | None = None) -> None:
    """Replace the file atomically; refused (LinkRefused) if a link is anywhere on the way or at the name."""
    try:
        with Workspace(root) as workspace:
            workspace.write(relative, data, allow_secrets=True)
            if mode is not None:
                fd, _ = workspace.open(relative, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, follow_inside=False)
                try:
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
    except PathRefused as exc:
        raise LinkRefused(str(exc)) from None


def remove_file(root: Path, relative: str) -> None:
    """Delete the entry itself (a link is removed, not its target); missing is fine; links on the way refused."""
    try:
        with Workspace(root) as workspace:
            workspace.remove(relative)
    except (FileNotFoundError, NotADirectoryError):
        return
    except PathRefused as exc:
        raise LinkRefused(str(exc)) from None
