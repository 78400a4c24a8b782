"""What the sandbox keeps out of a command's sight: credential files and secret variables.

One list, applied by every mechanism: bubblewrap binds /dev/null (files) or an
empty tmpfs (folders) over each match; the Landlock fallback leaves them out of
the folders it allows. Matched wherever they sit: in $HOME, inside a toolchain
folder that is re-bound, or in a parent folder of the repository.

The environment is filtered the other way round (an allow list of names),
then every name that looks like a secret is dropped even if allowed, unless the
user named it explicitly in GPTOSS_AGENT_SANDBOX_ENV.
"""

from __future__ import annotations

import os
import re
import stat
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from gptoss_agent.tools.denylist import HOME_SECRET_PATHS, is_secret_name

# Credential files and folders relative to $HOME: the shared deny list (tools.denylist), so the file
# tools, search and the sandbox hide the same things.
CREDENTIAL_PATHS = HOME_SECRET_PATHS

# Files only root should read; hidden too, because root outside the sandbox still owns them by uid.
ROOT_ONLY_PATHS = (
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
    "/etc/ssl/private", "/etc/security/opasswd", "/var/lib/sudo", "/root",
)
_SSH_HOST_KEYS = re.compile(r"ssh_host_.*_key$")

# Variables a command gets from the agent's environment (everything else is dropped).
ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "VIRTUAL_ENV", "PYENV_ROOT",
               "PYENV_VERSION", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "GOROOT", "GOPATH", "GOFLAGS",
               "JAVA_HOME", "NODE_PATH", "CC", "CXX", "CFLAGS", "LDFLAGS")
# Names that look like secrets never pass, even if allowed above or added by a caller.
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSW|CREDENTIAL|AUTH|SESSION|COOKIE|PRIVATE|CERT|SIGNATURE"
                         r"|_PAT$|^PAT_|DSN|CONNECTION_STRING|WEBHOOK|BEARER|SAS", re.IGNORECASE)
USER_ENV_VARIABLE = "GPTOSS_AGENT_SANDBOX_ENV"  # comma-separated names the user lets through on purpose


def scrub_environment(source: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The command's environment: allowed names from `source`, then `extra`, minus secret-looking names.

    Names listed in GPTOSS_AGENT_SANDBOX_ENV (the user's own choice) pass even if they look secret."""
    chosen = {name.strip() for name in source.get(USER_ENV_VARIABLE, "").split(",") if name.strip()}
    env = {k: v for k, v in source.items() if (k in ENV_ALLOWED and not SECRET_NAME.search(k)) or k in chosen}
    for key, value in (extra or {}).items():
        if not SECRET_NAME.search(key) or key in chosen:
            env[key] = value
    return env


def credential_paths_in(folder: Path) -> list[Path]:
    """Credential files and folders in `folder`: each CREDENTIAL_PATHS entry below it, and each entry
    whose name the shared deny list calls secret (`.netrc`, `*credentials*`, `*.pem`, …)."""
    found = [folder / relative for relative in CREDENTIAL_PATHS if os.path.lexists(folder / relative)]
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError:
        names = []
    found += [folder / name for name in names if is_secret_name(name) and folder / name not in found]
    return found


def _credentials_below(folder: Path) -> tuple[Path, ...]:
    """Credential files in a re-bound folder and its immediate subfolders (a venv's pip.conf,
    a toolchain's stray credentials). Shallow on purpose: it runs for every folder before every
    command, so the answer is cached until the folder or one of its subfolders changes."""
    try:
        entries = [(e.path, e.stat(follow_symlinks=False).st_mtime_ns) for e in os.scandir(folder)
                   if e.is_dir(follow_symlinks=False)]
        signature = (os.stat(folder).st_mtime_ns, tuple(entries))
    except OSError:
        return ()
    return _credentials_below_cached(folder, signature)


@lru_cache(maxsize=128)
def _credentials_below_cached(folder: Path, signature: tuple) -> tuple[Path, ...]:
    found = credential_paths_in(folder)
    for path, _ in signature[1]:
        found += credential_paths_in(Path(path))
    return tuple(found)


# A re-bound environment folder is masked to full depth (a credential can sit anywhere in it): entries no
# ordinary user could read (root outside is uid 0 to the kernel's checks inside) and files and dot-folders the
# deny list names. Code is never a credential by name (stdlib `secrets.py`, `botocore/credentials.py`), and a
# package folder is not either (`google/cloud/secretmanager`). A folder bigger than this is not shown at all.
DEEP_SCAN_BUDGET = 200_000
_CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".pyx", ".pxd", ".so", ".pyd")


def credentials_deep(folder: Path) -> tuple[Path, ...] | None:
    """What to mask in `folder`, walked to full depth, or None when it is too big to walk (then the sandbox
    does not show it). Cached until the folder or a folder in its first three levels changes (installing
    or removing a package does)."""
    try:
        signature = _shallow_signature(folder, 3)
    except OSError:
        return None
    return _credentials_deep_cached(folder, signature)


def _shallow_signature(folder: Path, depth: int) -> tuple:
    marks = [(str(folder), os.stat(folder).st_mtime_ns)]
    level = [str(folder)]
    for _ in range(depth):
        below: list[str] = []
        for path in level:
            try:
                for entry in os.scandir(path):
                    if entry.is_dir(follow_symlinks=False):
                        marks.append((entry.path, entry.stat(follow_symlinks=False).st_mtime_ns))
                        below.append(entry.path)
            except OSError:
                continue
        level = below
    return tuple(marks)


@lru_cache(maxsize=64)
def _credentials_deep_cached(folder: Path, signature: tuple) -> tuple[Path, ...] | None:
    found: list[Path] = [folder / relative for relative in CREDENTIAL_PATHS if os.path.lexists(folder / relative)]
    seen = 0
    for hits, count, _ in _walk(str(folder), _credential_entry):
        found += hits
        seen += count
        if seen > DEEP_SCAN_BUDGET:
            return None
    return tuple(dict.fromkeys(found))


def _credential_entry(entry: os.DirEntry) -> bool:
    if entry.is_symlink():
        return False  # what it leads to is masked where it is (a mask over a dangling link fails bwrap)
    return _private(entry) or _secret_entry(entry.name, entry.is_dir(follow_symlinks=False))


def _walk(root: str, matches: Callable[[os.DirEntry], bool]) -> Iterator[tuple[list[Path], int, bool]]:
    """Folder by folder below `root`, links never followed, a matching folder not entered (its mask hides it
    all): for each folder read, (the entries in it that match, how many entries it held, whether folders are
    left to read). The callers stop on their scan budget between folders."""
    pending = [root]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        hits = []
        for entry in entries:
            if matches(entry):
                hits.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
        yield hits, len(entries), bool(pending)


def _secret_entry(name: str, directory: bool) -> bool:
    if directory:
        return name.startswith(".") and is_secret_name(name)
    return is_secret_name(name) and not name.lower().endswith(_CODE_SUFFIXES)


def root_only_paths() -> list[Path]:
    """ROOT_ONLY_PATHS that exist here, plus the SSH host keys."""
    found = [Path(p) for p in ROOT_ONLY_PATHS if os.path.lexists(p)]
    try:
        found += [Path(e.path) for e in os.scandir("/etc/ssh") if _SSH_HOST_KEYS.search(e.name)]
    except OSError:
        pass
    return found


# System trees scanned (as root, once per process) for entries no ordinary user could read. Root outside
# the sandbox is still uid 0 to the kernel's owner checks inside it, so a root-owned 0600 file (a VPN key
# under /etc, a database folder under /var/lib) would be readable to a command; each such entry is masked.
# A tree with more than SCAN_BUDGET entries is scanned that far only (doctor says so). The top level of /
# is checked too (one level: /lost+found and the like).
SCANNED_SYSTEM_TREES = ("/etc", "/opt", "/srv", "/var", "/usr/local/etc", "/boot", "/mnt", "/media")
SCAN_BUDGET = 50_000


@lru_cache(maxsize=1)
def _system_scan() -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """(entries not world-readable, or folders not world-searchable; trees cut short by the budget)."""
    found: list[Path] = []
    cut: list[str] = []
    try:
        top = list(os.scandir("/"))
    except OSError:
        top = []
    for entry in top:
        if entry.path not in SCANNED_SYSTEM_TREES and _private(entry):
            found.append(Path(entry.path))
    for root in SCANNED_SYSTEM_TREES:
        if os.path.islink(root) or not os.path.isdir(root):
            continue
        seen = 0
        for hits, count, more in _walk(root, _private):
            found += hits
            seen += count
            if seen > SCAN_BUDGET:
                if more:
                    cut.append(root)
                break
    return tuple(found), tuple(cut)


def _private(entry: os.DirEntry) -> bool:
    """Not readable by an ordinary user: a file without o+r, a folder without o+rx. Links are never private
    themselves (Landlock and bind mounts act on what they lead to, which is checked on its own)."""
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        return False
    if stat.S_ISDIR(mode):
        return mode & 0o005 != 0o005
    return not mode & 0o004


def unreadable_system_paths() -> list[Path]:
    """What root must not see inside the sandbox beyond ROOT_ONLY_PATHS (empty for other users, whom the
    kernel's own permission checks already keep out)."""
    return list(_system_scan()[0]) if os.getuid() == 0 else []


def system_scan_cut_short() -> tuple[str, ...]:
    """Scanned trees too big to scan whole (doctor reports them)."""
    return _system_scan()[1] if os.getuid() == 0 else ()


def hidden_paths(workspace: Path, home: Path, rebound: Iterable[Path], environment: Iterable[Path] = ()) -> list[Path]:
    """Every path a command must not see: root-only files (by name, and as root every entry of the
    scanned system trees no ordinary user could read), credentials in $HOME, in each re-bound
    folder and in each parent folder of the workspace (never the workspace itself, which is the user's
    project and visible by design). `environment`: the project's environment folders the sandbox re-binds,
    masked to full depth (`credentials_deep`; the caller leaves out one too big to walk)."""
    hidden = root_only_paths() + unreadable_system_paths() + credential_paths_in(home)
    for folder in rebound:
        hidden += _credentials_below(folder)
    for folder in environment:
        hidden += credentials_deep(folder) or ()
    for parent in workspace.parents:
        hidden += credential_paths_in(parent)
    unique: list[Path] = []
    for path in hidden:
        if os.path.islink(path) and not os.path.exists(path):
            continue  # a dangling link shows nothing, and bwrap cannot mask one (every command would fail)
        if path not in unique and not workspace.is_relative_to(path):
            unique.append(path)
    return unique


# Credentials git keeps in a repository's own config: `https://user:token@host/…` remote URLs and
# `http.extraheader = Authorization: …`. bwrap shows a command a copy without them (`git remote -v`
# would print the token otherwise); the Landlock fallback cannot replace a file and does not.
_URL_USERINFO = re.compile(rb"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s\"]+@")
_EXTRA_HEADER = re.compile(rb"(?im)^(\s*extraheader\s*=).*$")


def scrub_git_config(text: bytes) -> bytes:
    """`text` (a .git/config) with the userinfo of every URL and every http extra header removed."""
    return _EXTRA_HEADER.sub(rb"\1 (removed by the sandbox)", _URL_USERINFO.sub(rb"\1", text))


def scrubbed_git_config(git_dir: Path) -> bytes | None:
    """The scrubbed copy of `git_dir/config` when it holds credentials; None when there is nothing to hide
    (or it is not a plain file: a link is never read through)."""
    try:
        fd = os.open(git_dir / "config", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 4 * 2**20)
    finally:
        os.close(fd)
    scrubbed = scrub_git_config(text)
    return scrubbed if scrubbed != text else None

