"""The fallback where bwrap is missing or refused: the Landlock launcher's command line (which trees
a command may read, write or only list; `.git` read-only; the agent's pids to protect where no PID
namespace hides them), and making the agent non-dumpable where the command sees the host's /proc."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from gptoss_agent.tools.sandbox import landlock
from gptoss_agent.tools.sandbox.binds import PRIVATE_TREES
from gptoss_agent.tools.sandbox.isolated_python import launcher_command

_LANDLOCK_PRIVATE_TREES = PRIVATE_TREES + ("/tmp", "/var/tmp", "/run")
# /dev under Landlock: only these device files, never the folder (the user's terminals, /dev/pts/N, sit
# there, and the host's /dev/shm). /dev/tty is the command's own controlling terminal (it has none: ENXIO).
_LANDLOCK_READ_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
_LANDLOCK_WRITE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full")


def landlock_launcher() -> list[str]:
    """The Landlock launcher, started isolated (-I) so that nothing in the repository can stand in for it."""
    return launcher_command("gptoss_agent.tools.sandbox.landlock_launch")


def command(argv: list[str], *, workspace: Path, home: Path, toolchains: list[Path], hidden: list[Path],
            tmp: Path, scratch: Path | None, protect_agent: bool) -> list[str]:
    """Landlock allows, it cannot deny: allow every tree but the private ones and the hidden paths,
    then the toolchain folders (minus hidden paths in them), the workspace and the temp folder."""
    denied = hidden + [Path(p) for p in _LANDLOCK_PRIVATE_TREES] + [home, Path("/dev")]
    denied += [Path(os.path.realpath(p)) for p in hidden if os.path.islink(p)]
    readable = landlock.allowed_trees(Path("/"), denied)
    readable += [d for d in _LANDLOCK_READ_DEVICES if os.path.exists(d)]
    listable: list[str] = []
    for path in toolchains:
        inner = [h for h in hidden if not path.is_relative_to(h)]
        readable += landlock.allowed_trees(path, inner)
        listable += _split_folders(path, inner)
    launcher = landlock_launcher() + ["--parent", str(os.getpid()), "--write", str(workspace), "--write", str(tmp)]
    for folder in listable:  # names only: an interpreter lists lib/python3.X to import from it
        launcher += ["--list", folder]
    for device in _LANDLOCK_WRITE_DEVICES:
        if os.path.exists(device):
            launcher += ["--write", device]
    if scratch is not None:
        launcher += ["--write", str(scratch)]
    git = workspace / ".git"
    if git.is_dir() and not git.is_symlink():
        launcher += ["--ro", str(git)]
    if protect_agent:
        for pid in _agent_pids():
            launcher += ["--protect", str(pid)]
    for path in readable:
        launcher += ["--read", path]
    return launcher + ["--"] + argv


def _agent_pids() -> list[int]:
    """This process and its threads: what a command must not signal where no PID namespace hides them."""
    pids = [os.getpid(), os.getpgrp()]
    try:
        pids += [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        pass
    return sorted(set(pids))


def make_undumpable() -> None:
    """Without a fresh /proc a command sees the agent's /proc entries; a non-dumpable process's
    environ, mem and fds are readable by no one but root, so API keys in its environment stay private."""
    ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE


def _split_folders(root: Path, hidden: list[Path]) -> list[str]:
    """The folders from `root` down to each hidden path below it: landlock.allowed_trees replaces them by
    their entries, so they need a list-only rule of their own to stay listable."""
    folders: set[str] = set()
    for path in hidden:
        if path != root and path.is_relative_to(root):
            parent = path.parent
            while parent.is_relative_to(root) and str(parent) not in folders:
                folders.add(str(parent))
                if parent == root:
                    break
                parent = parent.parent
    return sorted(folders)
