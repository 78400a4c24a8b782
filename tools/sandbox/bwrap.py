"""The bubblewrap command line for one command: namespaces, the read-only root, the private trees,
the toolchain and workspace binds, the read-only `.git` with its scrubbed config, the masked
credential files and the seccomp filter (handed over as memfd descriptors the caller closes)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from gptoss_agent.tools.sandbox import seccomp
from gptoss_agent.tools.sandbox.binds import PRIVATE_TREES
from gptoss_agent.tools.sandbox.secrets import scrubbed_git_config

UNPRIVILEGED_ID = 65534  # nobody/nogroup: what root becomes inside


def command(argv: list[str], *, workspace: Path, cwd: Path, home: Path, toolchains: list[Path],
            hidden: list[Path], scratch: Path | None) -> tuple[list[str], tuple[int, ...]]:
    """`argv` wrapped in bwrap, and the descriptors bwrap reads (the seccomp filter, the scrubbed
    `.git/config`): pass them to the child, close them after it started."""
    fd = os.memfd_create("gptoss-seccomp")  # bwrap reads the filter from this descriptor
    os.write(fd, _bwrap_filter())
    os.lseek(fd, 0, os.SEEK_SET)
    args = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if os.getuid() == 0:
        args += ["--uid", str(UNPRIVILEGED_ID), "--gid", str(UNPRIVILEGED_ID)]
    # A fresh /proc is writable where its files say so, and root outside owns them: kernel tunables
    # (/proc/sys), the sysrq trigger and IRQ affinity would be writable to a command run by root.
    # So /proc is read-only as a whole (one remount, and nothing in it to forget).
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--remount-ro", "/proc",
             "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/dev/shm"]
    covered = [Path("/tmp"), Path("/run")]
    for tree in [Path(p) for p in PRIVATE_TREES] + [home]:
        if tree.is_dir() and not any(tree.is_relative_to(c) for c in covered) and tree != Path("/"):
            args += ["--tmpfs", str(tree)]
            covered.append(tree)
    for path in toolchains:
        args += ["--ro-bind-try", str(path), str(path)]
    args += ["--bind", str(workspace), str(workspace)]
    binds = [*toolchains, workspace]
    if scratch is not None:
        args += ["--bind", str(scratch), str(scratch)]
        binds.append(Path(scratch))
    git = workspace / ".git"
    fds = [fd]
    if os.path.lexists(git) and not git.is_symlink():
        args += ["--ro-bind", str(git), str(git)]
        scrubbed = scrubbed_git_config(git) if git.is_dir() else None
        if scrubbed is not None:  # tokens in remote URLs: the command sees a copy without them
            config_fd = os.memfd_create("gptoss-git-config")
            os.write(config_fd, scrubbed)
            os.lseek(config_fd, 0, os.SEEK_SET)
            fds.append(config_fd)
            args += ["--perms", "0444", "--ro-bind-data", str(config_fd), str(git / "config")]
    for path in hidden:
        if any(path.is_relative_to(c) for c in covered) and not any(path.is_relative_to(b) for b in binds):
            continue  # already out of sight under a tmpfs
        if path.is_dir() and not path.is_symlink():
            args += ["--tmpfs", str(path)]
        else:
            args += ["--ro-bind", "/dev/null", str(path)]
    args += ["--chdir", str(cwd), "--seccomp", str(fd), "--"]
    return args + argv, tuple(fds)


@lru_cache(maxsize=1)
def _bwrap_filter() -> bytes:
    return seccomp.build_filter(deny_all_sockets=False)
