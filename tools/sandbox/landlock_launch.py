"""The Landlock fallback's launcher: isolate, confine, then exec the command.

Run by `tools.sandbox` only, as
`python -I -c <bootstrap> --write DIR … --read DIR … [--ro DIR …] [--protect PID …] -- CMD …`.

What it does, in order, each step as far as this kernel and user allow:
1. PR_SET_PDEATHSIG: the launcher dies with the agent, and everything below it with the launcher.
2. New PID and mount namespaces (through a user namespace when not root). The
   first child is PID 1 there: it mounts a fresh /proc (the agent and every
   other host process vanish from view, so no /proc/$PPID/environ and nothing
   to signal), binds `--ro` folders (`.git`) read-only, forks the command and
   reaps; when the command exits, PID 1 exits and the kernel kills every
   process left in the namespace: nothing outlives the call.
3. In the command's process: all capabilities dropped (root keeps none, not
   even across exec), Landlock (reads only under `--read`, writes only under
   `--write`, no TCP, no signals out of the sandbox on ABI 6+), then seccomp
   (no sockets at all, no mount or namespaces, no ptrace, and with `--protect`,
   no signals to the agent where no PID namespace hides it).
If a confinement step fails the command does not run; if an isolation step
fails the command runs with what held, and `--probe` says which ones did.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER = 0x00020000, 0x20000000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 24, 28
_SECURE_ALL_LOCKED = 0x2F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, all locked
_LAST_CAP = 63

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_namespaces() -> dict[str, bool]:
    """Unshare PID and mount namespaces (in a user namespace mapping us to ourselves when not root)."""
    uid, gid = os.getuid(), os.getgid()
    attempts = [CLONE_NEWPID | CLONE_NEWNS] if uid == 0 else []
    attempts += [CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS, CLONE_NEWUSER | CLONE_NEWPID]
    for flags in attempts:
        if _libc.unshare(flags) != 0:
            continue
        if flags & CLONE_NEWUSER:
            try:
                _write("/proc/self/uid_map", f"{uid} {uid} 1")
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/gid_map", f"{gid} {gid} 1")
            except OSError:
                return {"pid_namespace": False, "mount_namespace": False}
        return {"pid_namespace": True, "mount_namespace": bool(flags & CLONE_NEWNS)}
    return {"pid_namespace": False, "mount_namespace": False}


def _mount(source, target, fstype, flags: int) -> bool:
    enc = (lambda v: v.encode() if isinstance(v, str) else v)
    return _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), None) == 0


def prepare_mounts(read_only: list[Path]) -> dict[str, bool]:
    """In the new mount namespace: private propagation, a fresh /proc, `read_only` folders bound read-only."""
    done = {"fresh_proc": False, "readonly_git": False}
    if not _mount(None, "/", None, MS_REC | MS_PRIVATE):
        return done
    done["fresh_proc"] = _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    bound = bool(read_only)
    for folder in read_only:
        ok = _mount(str(folder), str(folder), None, MS_BIND | MS_REC) and _mount(
            None, str(folder), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        bound = bound and ok
    done["readonly_git"] = bound
    return done


def drop_capabilities() -> None:
    """No capability survives: bounding set emptied, securebits locked so exec as root grants none."""
    for cap in range(_LAST_CAP + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    _libc.prctl(PR_SET_SECUREBITS, _SECURE_ALL_LOCKED, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    _libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL


def confine_and_exec(command: list[str], writable, readable, protected: list[int], listable=()) -> None:
    from gptoss_agent.tools.sandbox.landlock import restrict
    from gptoss_agent.tools.sandbox.seccomp import build_filter, install

    _die_with_parent()
    try:
        drop_capabilities()
        restrict(writable, readable=readable or None, deny_tcp=True, listable=listable)
        install(build_filter(deny_all_sockets=True, protected_pids=protected))
    except OSError as exc:
        print(f"sandbox_launch: cannot confine the command: {exc}", file=sys.stderr)
        os._exit(126)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"{command[0]}: {exc.strerror}", file=sys.stderr)
    os._exit(127)


def _exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _init(command: list[str], writable, readable, read_only, protected, probe: bool, mount: bool,
          listable=()) -> None:
    """PID 1 of the new namespace: mounts (only in a mount namespace of our own), then the command,
    then reap until it exits."""
    _die_with_parent()
    mounts = prepare_mounts(read_only) if mount else {"fresh_proc": False, "readonly_git": False}
    if probe:
        print(json.dumps(mounts))
        sys.stdout.flush()
    child = os.fork()
    if child == 0:
        confine_and_exec(command, writable, readable, protected, listable)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            os._exit(_exit_status(status))  # PID 1 leaving kills everything else in the namespace


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("sandbox_launch: usage: --write DIR ... -- CMD ...", file=sys.stderr)
        return 126
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]

    def values(flag: str) -> list[str]:
        return [options[i + 1] for i, opt in enumerate(options) if opt == flag]

    writable = [Path(p) for p in values("--write")]
    readable = [Path(p) for p in values("--read")]
    read_only = [Path(p) for p in values("--ro")]
    listable = [Path(p) for p in values("--list")]  # folders whose names (not contents) may be read
    protected = [int(p) for p in values("--protect")]
    probe = "--probe" in options
    if not command:
        print("sandbox_launch: no command", file=sys.stderr)
        return 126
    _die_with_parent()
    parent = values("--parent")
    if parent and os.getppid() != int(parent[0]):
        return 126  # the agent died before the death signal was armed
    isolation = enter_namespaces()
    if probe:
        print(json.dumps(isolation))
        sys.stdout.flush()
    if not isolation["pid_namespace"]:
        confine_and_exec(command, writable, readable, protected, listable)
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        _init(command, writable, readable, read_only, protected, probe, isolation["mount_namespace"], listable)
    _, status = os.waitpid(child, 0)
    return _exit_status(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
