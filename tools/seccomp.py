"""Seccomp filters for sandboxed commands, assembled as classic BPF by hand.

No libseccomp binding is needed: the programs are a few dozen instructions.
bwrap loads them from a file descriptor (`--seccomp FD`); the Landlock
fallback installs them itself before exec. Pure apart from `install`.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# BPF opcodes
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000

_AF_UNIX = 1
_X32_BIT = 0x40000000

# (audit arch, syscall numbers) per machine
_ARCH = {
    "x86_64": (0xC000003E, {"socket": 41, "connect": 42, "bind": 49, "ptrace": 101, "bpf": 321,
                            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                            "process_vm_readv": 310, "process_vm_writev": 311, "keyctl": 250,
                            "add_key": 248, "request_key": 249, "perf_event_open": 298, "userfaultfd": 323}),
    "aarch64": (0xC00000B7, {"socket": 198, "connect": 203, "bind": 200, "ptrace": 117, "bpf": 280,
                             "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                             "process_vm_readv": 270, "process_vm_writev": 271, "keyctl": 219,
                             "add_key": 217, "request_key": 218, "perf_event_open": 241, "userfaultfd": 282}),
}

_ALWAYS_DENIED = ("ptrace", "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register", "process_vm_readv",
                  "process_vm_writev", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd")


class SeccompUnavailable(RuntimeError):
    """This machine's architecture has no filter here."""


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def build_filter(*, deny_all_sockets: bool, machine: str | None = None) -> bytes:
    """The filter program as raw `struct sock_filter` bytes.

    Always refused (EPERM): ptrace, bpf, io_uring, process_vm_*, keyrings,
    perf events, userfaultfd, and new AF_UNIX sockets (which would reach docker,
    ssh-agent or dbus sockets). With `deny_all_sockets` (no network namespace
    to rely on), every new socket and every connect/bind is refused.
    """
    machine = machine or platform.machine()
    if machine not in _ARCH:
        raise SeccompUnavailable(f"no seccomp filter for {machine}")
    arch, numbers = _ARCH[machine]
    deny = _ERRNO | errno.EPERM
    program: list[bytes] = [
        _insn(_LD_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_JEQ, 1, 0, arch),
        _insn(_RET, 0, 0, _KILL_PROCESS),
        _insn(_LD_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":
        program += [_insn(_JGE, 0, 1, _X32_BIT), _insn(_RET, 0, 0, deny)]
    denied = [numbers[name] for name in _ALWAYS_DENIED]
    if deny_all_sockets:
        denied += [numbers["socket"], numbers["connect"], numbers["bind"]]
    for nr in denied:
        program += [_insn(_JEQ, 0, 1, nr), _insn(_RET, 0, 0, deny)]
    if not deny_all_sockets:
        program += [
            _insn(_JEQ, 0, 3, numbers["socket"]),
            _insn(_LD_ABS, 0, 0, 16),  # args[0]: the address family
            _insn(_JEQ, 0, 1, _AF_UNIX),
            _insn(_RET, 0, 0, deny),
        ]
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
