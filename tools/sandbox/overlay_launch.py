"""The overlay launcher: give the command a copy-on-write view of the work tree, then exec bubblewrap.

Run by `tools.sandbox_overlay` only, as
`python -I -c <bootstrap> --lower TREE --upper DIR --work DIR --report FD -- bwrap …`.

1. PR_SET_PDEATHSIG: it dies with the agent (and bwrap, started with
   --die-with-parent, with it).
2. A mount namespace of its own: directly where this process may mount (root,
   also root inside a user namespace), otherwise inside a new user namespace
   mapping the caller's own uid and gid to themselves (what an unprivileged
   user may do).
3. Private propagation on every mount (nothing leaks back to the host), then an
   overlay over TREE whose lower layer is TREE itself and whose upper layer is
   DIR: from here on, every write the command makes under TREE lands in DIR and
   the host's TREE is never written. `userxattr` keeps the overlay's own marks
   (opaque folders) in `user.overlay.*` attributes, which work in a user
   namespace.
4. exec the bwrap command line, unchanged: its binds of TREE now see the merged view.

Nothing runs unless every step held: a failure is written to the report
descriptor and the launcher exits 125 without running the command, so the
caller can fall back to writing the work tree directly.
Only the standard library is imported: this runs once per command.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_PDEATHSIG = 1
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


class SetupFailed(Exception):
    """A step before the command failed; nothing ran."""


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _fail(step: str) -> SetupFailed:
    errno = ctypes.get_errno()
    return SetupFailed(f"{step}: {os.strerror(errno)}")


def enter_mount_namespace() -> str:
    """A private mount namespace, in a user namespace of our own when we may not mount here. Returns how."""
    if _libc.unshare(CLONE_NEWNS) == 0:
        return "mount namespace"
    uid, gid = os.geteuid(), os.getegid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        raise _fail("unshare(user, mount)")
    try:
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError as exc:
        raise SetupFailed(f"user namespace maps: {exc.strerror}") from None
    return "user and mount namespaces"


def overlay_options(lower: str, upper: str, work: str) -> str:
    """The mount data; a path holding a character the option syntax uses is refused, not escaped."""
    for path in (lower, upper, work):
        if any(c in path for c in ",:\\\n") or not path.startswith("/"):
            raise SetupFailed(f"path not usable in overlay options: {path!r}")
    return f"lowerdir={lower},upperdir={upper},workdir={work},userxattr"


def mount_overlay(lower: str, upper: str, work: str) -> None:
    if _libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        raise _fail("private propagation")
    options = overlay_options(lower, upper, work).encode()
    if _libc.mount(b"overlay", lower.encode(), b"overlay", ctypes.c_ulong(0), options) != 0:
        raise _fail("mount overlay")


def main(argv: list[str]) -> int:
    if "--" not in argv:
        return SETUP_FAILED
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    values = {options[i]: options[i + 1] for i in range(0, len(options) - 1, 2)}
    report = int(values.get("--report", "2"))
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        if not command:
            raise SetupFailed("no command")
        enter_mount_namespace()
        mount_overlay(values["--lower"], values["--upper"], values["--work"])
        os.set_inheritable(report, False)
        os.execvp(command[0], command)
    except (SetupFailed, KeyError, OSError) as exc:
        message = str(exc) if not isinstance(exc, OSError) else f"exec {command[0]}: {exc.strerror}"
        try:
            os.write(report, f"overlay: {message}\n".encode())
        except OSError:
            pass
        return SETUP_FAILED
    return SETUP_FAILED  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
