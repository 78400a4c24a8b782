"""Run a program where the Landlock fallback gets no namespaces at all ("weak mode"), for real.

`python3 sandbox_weak_mode.py PROGRAM ARGS...` enters a new user namespace
mapping the caller's own uid, sets that namespace's max_user_namespaces to 0
(so no further user namespace can be created below it), hides the cgroup tree
(no delegated cgroup, as for most unprivileged users) and, as uid 0, drops
CAP_SYS_ADMIN from the bounding set, then execs PROGRAM. A non-root uid loses
every capability at exec anyway. The launcher then finds neither a PID nor a
mount namespace: exactly a machine whose kernel refuses unprivileged user
namespaces. Exits 125 with a reason when this machine cannot set that up.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_CAPBSET_DROP = 24
CAP_SYS_ADMIN = 21


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        print(f"weak mode: cannot create a user namespace: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 125
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        _write("/proc/sys/user/max_user_namespaces", "0")
    except OSError as exc:
        print(f"weak mode: cannot set up the namespace: {exc}", file=sys.stderr)
        return 125
    # No delegated cgroup either (an unprivileged user has none): the pids cgroup would otherwise find
    # every leftover process for root and hide what the subreaper sweep must do on its own.
    if libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0 or libc.mount(
            b"none", b"/sys/fs/cgroup", b"tmpfs", ctypes.c_ulong(1), None) != 0:  # MS_RDONLY
        print(f"weak mode: cannot hide the cgroup tree: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 125
    if uid == 0 and libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
        print("weak mode: cannot drop CAP_SYS_ADMIN", file=sys.stderr)
        return 125
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
