"""Landlock, the sandbox's fallback where bubblewrap is missing or refused.

Restricts the calling process (and what it execs) to reading the whole file
system and writing only below the given directories, and, where the kernel's
Landlock ABI has it (4+), to no TCP connect or bind. Used by the launcher in
`tools.sandbox_launch`, right before it execs the command.
"""

from __future__ import annotations

import ctypes
import os
import platform
import stat
from pathlib import Path
from typing import Iterable

_SYS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

# LANDLOCK_ACCESS_FS_* bits
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = (
    1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12)
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1


_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI (0 when Landlock is absent or disabled)."""
    numbers = _SYS.get(platform.machine())
    if numbers is None:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(version, 0)


def _fs_rights(abi: int) -> int:
    rights = (EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR
              | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM)
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(writable: Iterable[Path], *, readable: Iterable[Path] | None = None, deny_tcp: bool = True,
             listable: Iterable[Path] = ()) -> int:
    """Confine this process: read/execute only under `readable` (default: everywhere), write only
    under `writable`; `listable` folders may be listed only (a folder `allowed_trees` split around a
    masked entry: Python lists `lib/python3.X` to import from it, and its names are no secret). From ABI 6 on, also scope signals and abstract unix sockets to the sandbox:
    a command cannot signal the agent or any process outside its own domain. Returns the ABI used."""
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    create, add_rule, restrict_self = _SYS[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, (_NET_BIND_TCP | _NET_CONNECT_TCP) if (deny_tcp and abi >= 4) else 0,
                        (_SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX_SOCKET) if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        read_only = EXECUTE | READ_FILE | READ_DIR
        for directory in (readable if readable is not None else [Path("/")]):
            try:
                _allow(libc, add_rule, ruleset, directory, read_only)
            except FileNotFoundError:
                continue  # gone since the list was made
        for directory in listable:
            try:
                _allow(libc, add_rule, ruleset, directory, READ_DIR)
            except FileNotFoundError:
                continue
        for directory in writable:
            _allow(libc, add_rule, ruleset, Path(directory), handled)
        _allow(libc, add_rule, ruleset, Path("/dev/null"), WRITE_FILE | READ_FILE | (TRUNCATE if abi >= 3 else 0))
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(restrict_self, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _allow(libc, add_rule: int, ruleset: int, path: Path | str, rights: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= WRITE_FILE | READ_FILE | EXECUTE | TRUNCATE | IOCTL_DEV
        rule = _PathBeneathAttr(rights, fd)
        if libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
    finally:
        os.close(fd)


def allowed_trees(root: Path | str, denied: Iterable[Path | str]) -> list[str]:
    """The smallest set of folders and files under `root` that covers everything but `denied`.

    Landlock can only allow: a rule on a folder grants its whole tree. So a folder
    that holds a denied path is replaced by its entries, recursively, leaving the
    denied path out. Symbolic links are skipped (Landlock checks the place a link
    leads to, which is covered or not on its own), so a link cannot smuggle a
    denied file back in. Plain strings, not pathlib: this runs before every command.
    """
    top = os.path.normpath(str(root))
    refused = {os.path.normpath(str(p)) for p in denied}
    if any(top == d or top.startswith(d.rstrip("/") + "/") for d in refused):
        return []
    ancestors: set[str] = set()
    for path in refused:
        parent = os.path.dirname(path)
        while parent not in ancestors:
            ancestors.add(parent)
            if parent == "/" or not parent:
                break
            parent = os.path.dirname(parent)
    kept: list[str] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        if folder not in ancestors:
            kept.append(folder)
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.path in refused or entry.is_symlink():
                continue
            pending.append(entry.path)
    return sorted(kept)
