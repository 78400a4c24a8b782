"""Seccomp filters for sandboxed commands, assembled as classic BPF by hand.

No libseccomp binding is needed: the programs are a few hundred instructions.
bwrap loads them from a file descriptor (`--seccomp FD`); the Landlock
fallback installs them itself before exec. Pure apart from `install`.

The deny list follows the spirit of Docker's default profile: nothing a
build or a test needs, everything that would let a command undo its
confinement (mount, namespaces, module loading), reach the kernel's more
exposed surfaces (bpf, io_uring, userfaultfd, perf), read another process
(ptrace, process_vm_*), or reach the user's terminal (TIOCSTI).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
from typing import Iterable

# BPF opcodes
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JA = 0x05  # BPF_JMP | BPF_JA
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000

_AF_UNIX = 1
# Address families a build or a test may open (bwrap's network namespace leaves them nothing to reach
# but its own loopback); every other family (AF_VSOCK to the hypervisor, AF_PACKET, AF_BLUETOOTH, AF_ALG,
# ...) answers EAFNOSUPPORT, as on a kernel built without it.
ALLOWED_SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK
# Calls that change another process's limits, priority or CPU placement: only the caller's own (pid 0) may
# be changed, so a command cannot slow down or starve the agent where no PID namespace hides it.
# (call, index of its pid argument); setpriority's `who` is its second argument.
_OWN_PROCESS_ONLY = (("prlimit64", 0), ("setpriority", 1), ("sched_setaffinity", 0), ("sched_setscheduler", 0),
                     ("sched_setparam", 0), ("sched_setattr", 0))
_X32_BIT = 0x40000000
_NR, _ARCH_OFFSET = 0, 4


def _arg(index: int) -> int:
    """Offset of the low 32 bits of syscall argument `index` in struct seccomp_data (little endian).

    The kernel truncates int arguments (pids, flags, ioctl requests) to 32 bits, so
    comparing the low word is exact and immune to garbage in the upper half."""
    return 16 + 8 * index


# Every namespace flag: clone/unshare with any of these is refused (CLONE_NEWTIME .. CLONE_NEWNET).
NAMESPACE_FLAGS = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
SET_ID_BITS = 0o6000  # S_ISUID | S_ISGID
# (call, index of its mode argument): a command run by root must not leave a setuid-root program
# in the repository for anyone to run later, so no mode it sets may carry the set-id bits.
_MODE_ARGUMENT = (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("open", 2), ("creat", 1),
                  ("openat", 3), ("mknod", 1), ("mknodat", 2))
# personality() values Docker allows: the default, the query, and the two compatibility flags.
ALLOWED_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# (audit arch, syscall numbers) per machine; numbers from asm/unistd_64.h and asm-generic/unistd.h.
_X86_64 = dict(
    socket=41, connect=42, bind=49, ptrace=101, bpf=321, io_uring_setup=425, io_uring_enter=426,
    io_uring_register=427, process_vm_readv=310, process_vm_writev=311, keyctl=250, add_key=248, request_key=249,
    perf_event_open=298, userfaultfd=323, mount=165, umount2=166, pivot_root=155, unshare=272, setns=308,
    clone=56, clone3=435, kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
    delete_module=176, swapon=167, swapoff=168, reboot=169, acct=163, quotactl=179, quotactl_fd=443,
    open_by_handle_at=304, name_to_handle_at=303, ioctl=16, personality=135, lookup_dcookie=212,
    fanotify_init=300, settimeofday=164, clock_settime=227, adjtimex=159, clock_adjtime=305, syslog=103,
    vhangup=153, open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433,
    mount_setattr=442, pidfd_getfd=438, pidfd_open=434, kill=62, tkill=200, tgkill=234, pidfd_send_signal=424,
    rt_sigqueueinfo=129, rt_tgsigqueueinfo=297, chroot=161, iopl=172, ioperm=173, uselib=134, nfsservctl=180,
    open=2, creat=85, openat=257, openat2=437, chmod=90, fchmod=91, fchmodat=268, fchmodat2=452, mknod=133,
    mknodat=259, prlimit64=302, setpriority=141, sched_setaffinity=203, sched_setscheduler=144,
    sched_setparam=142, sched_setattr=314)
_AARCH64 = dict(
    socket=198, connect=203, bind=200, ptrace=117, bpf=280, io_uring_setup=425, io_uring_enter=426,
    io_uring_register=427, process_vm_readv=270, process_vm_writev=271, keyctl=219, add_key=217,
    request_key=218, perf_event_open=241, userfaultfd=282, mount=40, umount2=39, pivot_root=41, unshare=97,
    setns=268, clone=220, clone3=435, kexec_load=104, kexec_file_load=294, init_module=105, finit_module=273,
    delete_module=106, swapon=224, swapoff=225, reboot=142, acct=89, quotactl=60, quotactl_fd=443,
    open_by_handle_at=265, name_to_handle_at=264, ioctl=29, personality=92, lookup_dcookie=18,
    fanotify_init=262, settimeofday=170, clock_settime=112, adjtimex=171, clock_adjtime=266, syslog=116,
    vhangup=58, open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433,
    mount_setattr=442, pidfd_getfd=438, pidfd_open=434, kill=129, tkill=130, tgkill=131, pidfd_send_signal=424,
    rt_sigqueueinfo=138, rt_tgsigqueueinfo=240, chroot=51, nfsservctl=42,
    openat=56, openat2=437, fchmod=52, fchmodat=53, fchmodat2=452, mknodat=33, prlimit64=261, setpriority=140,
    sched_setaffinity=122, sched_setscheduler=119, sched_setparam=118, sched_setattr=274)
_ARCH = {"x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _AARCH64)}

ALWAYS_DENIED = (
    # other processes and the kernel's exposed surfaces
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
    "lookup_dcookie", "fanotify_init", "open_by_handle_at", "name_to_handle_at",
    # undoing the confinement: mounts and namespaces
    "mount", "umount2", "pivot_root", "setns", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    # the machine itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "swapon", "swapoff",
    "reboot", "acct", "quotactl", "quotactl_fd", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "syslog", "vhangup", "iopl", "ioperm", "uselib", "nfsservctl",
)


class SeccompUnavailable(RuntimeError):
    """This machine's architecture has no filter here."""


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _deny_if_arg_in(nr: int, arg: int, values: Iterable[int], deny: int) -> list[bytes]:
    """`nr` with argument `arg` equal to one of `values` is refused."""
    values = list(values)
    m = len(values)
    block = [_insn(_LD_ABS, 0, 0, _NR), _insn(_JEQ, 0, m + 3, nr), _insn(_LD_ABS, 0, 0, _arg(arg))]
    block += [_insn(_JEQ, m - j, 0, value) for j, value in enumerate(values)]
    return block + [_insn(_JA, 0, 0, 1), _insn(_RET, 0, 0, deny)]


def _deny_unless_arg_in(nr: int, arg: int, values: Iterable[int], deny: int) -> list[bytes]:
    """`nr` is refused unless argument `arg` is one of `values`."""
    values = list(values)
    m = len(values)
    block = [_insn(_LD_ABS, 0, 0, _NR), _insn(_JEQ, 0, m + 2, nr), _insn(_LD_ABS, 0, 0, _arg(arg))]
    block += [_insn(_JEQ, m - j, 0, value) for j, value in enumerate(values)]
    return block + [_insn(_RET, 0, 0, deny)]


def _deny_if_flags(nr: int, arg: int, mask: int, deny: int) -> list[bytes]:
    """`nr` is refused when argument `arg` has any bit of `mask`."""
    return [_insn(_LD_ABS, 0, 0, _NR), _insn(_JEQ, 0, 3, nr), _insn(_LD_ABS, 0, 0, _arg(arg)),
            _insn(_JSET, 0, 1, mask), _insn(_RET, 0, 0, deny)]


def build_filter(*, deny_all_sockets: bool, protected_pids: Iterable[int] = (), machine: str | None = None) -> bytes:
    """The filter program as raw `struct sock_filter` bytes.

    Always refused (EPERM): ALWAYS_DENIED, clone/unshare with a namespace flag,
    ioctl TIOCSTI/TIOCLINUX, personality changes, setuid/setgid mode bits on
    chmod/open/mknod (openat2, whose mode sits in memory, answers ENOSYS), new AF_UNIX sockets (which
    would reach docker, ssh-agent or dbus sockets); clone3 answers ENOSYS (its
    flags sit in memory a filter cannot read) so libc falls back to clone.
    With `deny_all_sockets` (no network namespace to rely on), every new socket
    and every connect/bind is refused. `protected_pids` (the agent, where no
    PID namespace hides it) cannot be signalled, nor can every process at once
    (kill(-1)). Limits, priority and CPU placement may be changed for the calling process only
    (pid 0; setpriority only PRIO_PROCESS or PRIO_PGRP), and with sockets allowed, only the
    ALLOWED_SOCKET_FAMILIES (AF_UNIX still refused): any other answers EAFNOSUPPORT.
    """
    machine = machine or platform.machine()
    if machine not in _ARCH:
        raise SeccompUnavailable(f"no seccomp filter for {machine}")
    arch, numbers = _ARCH[machine]
    deny = _ERRNO | errno.EPERM
    program: list[bytes] = [
        _insn(_LD_ABS, 0, 0, _ARCH_OFFSET),
        _insn(_JEQ, 1, 0, arch),
        _insn(_RET, 0, 0, _KILL_PROCESS),
        _insn(_LD_ABS, 0, 0, _NR),
    ]
    if machine == "x86_64":
        program += [_insn(_JGE, 0, 1, _X32_BIT), _insn(_RET, 0, 0, deny)]
    denied = [numbers[name] for name in ALWAYS_DENIED if name in numbers]
    if deny_all_sockets:
        denied += [numbers["socket"], numbers["connect"], numbers["bind"]]
    protected = sorted({pid for pid in protected_pids if pid > 0})
    if protected:
        denied.append(numbers["tkill"])  # obsolete; takes a bare thread id a filter cannot attribute
    for nr in denied:
        program += [_insn(_JEQ, 0, 1, nr), _insn(_RET, 0, 0, deny)]
    program += [_insn(_JEQ, 0, 1, numbers["clone3"]), _insn(_RET, 0, 0, _ERRNO | errno.ENOSYS)]
    program += _deny_if_flags(numbers["clone"], 0, NAMESPACE_FLAGS, deny)
    program += _deny_if_flags(numbers["unshare"], 0, NAMESPACE_FLAGS, deny)
    program += _deny_if_arg_in(numbers["ioctl"], 1, (TIOCSTI, TIOCLINUX), deny)
    for name, index in _MODE_ARGUMENT:
        if name in numbers:
            program += _deny_if_flags(numbers[name], index, SET_ID_BITS, deny)
    program += [_insn(_LD_ABS, 0, 0, _NR), _insn(_JEQ, 0, 1, numbers["openat2"]),
                _insn(_RET, 0, 0, _ERRNO | errno.ENOSYS)]
    program += _deny_unless_arg_in(numbers["personality"], 0, ALLOWED_PERSONALITIES, deny)
    if protected:
        targets = protected + [-pid for pid in protected] + [-1]
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open"):
            program += _deny_if_arg_in(numbers[name], 0, targets, deny)
    program += _deny_unless_arg_in(numbers["setpriority"], 0, (0, 1), deny)  # PRIO_USER would renice the agent
    for name, index in _OWN_PROCESS_ONLY:
        program += _deny_unless_arg_in(numbers[name], index, (0,), deny)
    if not deny_all_sockets:
        program += [_insn(_LD_ABS, 0, 0, _NR), _insn(_JEQ, 0, 3, numbers["socket"]),
                    _insn(_LD_ABS, 0, 0, _arg(0)), _insn(_JEQ, 0, 1, _AF_UNIX), _insn(_RET, 0, 0, deny)]
        program += _deny_unless_arg_in(numbers["socket"], 0, ALLOWED_SOCKET_FAMILIES,
                                       _ERRNO | errno.EAFNOSUPPORT)
    program.append(_insn(_RET, 0, 0, _ALLOW))
    return b"".join(program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Load `program` into this process (no_new_privs first, as the kernel requires)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    buffer = ctypes.create_string_buffer(program)
    prog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
