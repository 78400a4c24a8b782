"""A host scratch folder for one test run, removed afterwards whatever the run left in it.

Why not tempfile.TemporaryDirectory: the run controls what is inside (the
progress file's folder is the run's to write), and shutil.rmtree recurses once
per level, so a 2000-deep chain of folders raised RecursionError, the run_tests
call failed, and /tmp/gptoss-tests-* stayed behind. The remover here is
iterative, holds at most two descriptors, never follows a link (every folder is
opened with O_NOFOLLOW relative to its parent), and makes a folder the run left
unreadable (mode 000) readable again before it goes in.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield Path(folder)
    finally:
        remove_tree(folder)


def _open_child(name: str, parent: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except PermissionError:  # a folder the run made unreadable: ours (same owner), so give it back its mode
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            raise
        os.chmod(name, 0o700, dir_fd=parent)
        return os.open(name, _DIR_FLAGS, dir_fd=parent)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove `path` and everything under it, iteratively, without following links; what cannot be removed
    is left (each folder is tried once, so nothing loops)."""
    path = os.fspath(path)
    try:
        current = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    names: list[str] = []  # the folder names from `path` down to `current`
    stuck: set[int] = set()  # inodes of folders already tried: never entered twice
    while True:
        child = None
        with contextlib.suppress(OSError), os.scandir(current) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.inode() not in stuck:
                            child = entry.name
                            break
                        continue
                    os.unlink(entry.name, dir_fd=current)
                except OSError:
                    continue
        if child is not None:
            try:
                opened = _open_child(child, current)
            except OSError:
                with contextlib.suppress(OSError):
                    stuck.add(os.stat(child, dir_fd=current, follow_symlinks=False).st_ino)
                continue
            os.close(current)
            current = opened
            names.append(child)
            continue
        stuck.add(os.fstat(current).st_ino)
        if not names:
            os.close(current)
            with contextlib.suppress(OSError):
                os.rmdir(path)
            return
        try:
            parent = os.open("..", _DIR_FLAGS, dir_fd=current)
        finally:
            os.close(current)
        current = parent
        with contextlib.suppress(OSError):
            os.rmdir(names.pop(), dir_fd=current)
