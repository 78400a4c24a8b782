"""The one place that runs git on the host, where the repository is untrusted data.

Git is a program runner in disguise: a repository's config can name filters
(clean, smudge, process), diff drivers (textconv, command), merge drivers,
pagers, editors, signing and SSH programs, credential helpers and an fsmonitor;
its hooks run on commit; `core.worktree` and a `.git` pointer file can point
git somewhere else; embedded repositories carry configs of their own that
`git status` descends into. The agent runs git on the host for status, diff,
commit and undo, so every one of those is a way for a repository, or a model
that can write into the work tree, to run code outside the sandbox.

The choice here is to make the class impossible rather than to list settings:

1. The repository is pinned when a session starts (`pin`): its git directory
   (and a linked worktree's common directory) is resolved once, and every
   later call checks that the `.git` entry still is what it was and runs git
   with exactly those directories; a `.git` the model repointed or replaced
   stops all host git for the session (a pointer file is put back first,
   without following links). The repository is validated before every call: `.git` must be a real
   directory at the work-tree root, or a pointer file whose git directory lies
   outside the work tree (a worktree made by `batch`); a symlinked `.git`, a
   pointer into the work tree (which the sandbox may write) or anything else
   is refused, and so is a git directory someone else owns (git skips its own
   safe.directory check when GIT_DIR is set, so it is made here). `GIT_DIR`
   and `GIT_WORK_TREE` are then set explicitly, so `core.worktree`, discovery
   and inherited variables cannot move git.
2. Git reads only the user's own config (global, XDG) besides the repository's;
   system config is off. Every key that can name a program is overridden with
   a command-line-scope value (`GIT_CONFIG_COUNT`), which beats every file:
   a fixed list for the core settings, PLUS every key the effective config
   (includes resolved) holds whose last part names a program (`clean`,
   `smudge`, `process`, `textconv`, `command`, `driver`, `program`, `helper`,
   `cmd`, `sshcommand`, ...), enumerated afresh with `git config --list -z
   --includes` on every call. A driver name git could run must come from
   config, so enumerating the config covers every name the attributes mention.
   Overrides are empty values: an empty filter is no filter, and an empty
   textconv, external diff or diff command fails closed (git says "cannot
   run") instead of running anything. The repository's config may not take
   settings from a work-tree file (an include): the model could rewrite it
   between the listing and the call. (`.git` itself is read-only to commands
   under bwrap; under the Landlock fallback the sandbox restores its config.)
3. Belt and braces for the commands that could run a diff program: diff-like
   subcommands always get `--no-ext-diff --no-textconv --no-color`, and status
   and diff `--ignore-submodules=all`, added here, not by callers. Only an
   allow-list of subcommands runs at all (no transports, no aliases).
4. The environment is built from nothing: PATH, HOME (for the user's own
   identity), locale; pager, editor, SSH and askpass pinned to harmless values;
   pathspecs are literal; replace refs are ignored.
5. Time and output are bounded; a hung git (a FIFO named by config) is killed.

Programs the repository controls therefore never start: either git does not
reach the code path (hooks, pagers, editors, transports) or the setting that
would name the program holds an empty value we chose.
"""

from __future__ import annotations

import os
import selectors
import signal
import stat
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

GIT_TIMEOUT_S = 60.0
GIT_OUTPUT_CAP = 64 * 2**20
MAX_PROGRAM_KEYS = 2_000  # a config naming more program settings than this is refused, not half-neutralised

# Fixed overrides for settings that run programs or change where and how git works.
HARDENED_GIT_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false"), ("core.pager", "cat"), ("core.editor", "true"),
    ("sequence.editor", "true"), ("core.sshCommand", "false"), ("core.askPass", ""), ("core.gitProxy", ""),
    ("core.alternateRefsCommand", ""), ("core.untrackedCache", "false"), ("diff.external", ""),
    ("commit.gpgSign", "false"), ("tag.gpgSign", "false"), ("push.gpgSign", "false"), ("log.showSignature", "false"),
    ("merge.verifySignatures", "false"), ("gpg.program", "false"), ("gpg.openpgp.program", "false"),
    ("gpg.x509.program", "false"), ("gpg.ssh.program", "false"), ("gpg.ssh.defaultKeyCommand", ""),
    ("credential.helper", ""), ("protocol.allow", "never"), ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"), ("status.submoduleSummary", "false"), ("diff.ignoreSubmodules", "all"),
    ("interactive.diffFilter", ""), ("color.ui", "never"), ("diff.noprefix", "false"),
    ("diff.mnemonicPrefix", "false"), ("diff.relative", "false"), ("gc.auto", "0"), ("maintenance.auto", "false"),
    ("uploadpack.packObjectsHook", ""), ("core.bare", "false"),
)

# Last parts of config keys that name a program to run (git matches names case-insensitively).
_PROGRAM_NAMES = frozenset({
    "clean", "smudge", "process", "textconv", "command", "cmd", "driver", "program", "helper", "sshcommand",
    "askpass", "editor", "proxy", "gitproxy", "uploadpack", "receivepack", "packobjectshook", "alternaterefscommand",
    "defaultkeycommand", "difffilter", "fsmonitor", "hookspath", "external", "update", "trustexitcode",
})
# Overrides other than the empty string for some of those names.
_PROGRAM_VALUES = {"required": "false", "fsmonitor": "false", "hookspath": "/dev/null", "trustexitcode": "false"}

# Subcommands the agent needs; anything else (push, fetch, clone, aliases, submodule) is refused.
ALLOWED_SUBCOMMANDS = frozenset({
    "status", "diff", "diff-index", "diff-tree", "ls-files", "rev-parse", "symbolic-ref", "config", "cat-file",
    "hash-object", "read-tree", "update-index", "write-tree", "commit-tree", "update-ref", "reset", "worktree",
    "check-ref-format", "show", "log", "merge-base", "for-each-ref", "ls-tree",
})
_DIFF_SAFETY = ("--no-ext-diff", "--no-textconv", "--no-color")
_SUBCOMMAND_SAFETY: Mapping[str, tuple[str, ...]] = {
    "diff": (*_DIFF_SAFETY, "--ignore-submodules=all"),
    "diff-index": (*_DIFF_SAFETY, "--ignore-submodules=all"),
    "diff-tree": _DIFF_SAFETY,
    "show": _DIFF_SAFETY,
    "log": (*_DIFF_SAFETY, "--no-show-signature"),
    "status": ("--ignore-submodules=all",),
}
_ENV_KEPT = ("PATH", "HOME", "XDG_CONFIG_HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")


class HostGitError(RuntimeError):
    """Host git refused to run or failed; the message says why in words a user can act on."""


class UnsafeRepository(HostGitError):
    """The repository's layout would let git run or write something the repository controls."""


@dataclass(frozen=True)
class GitResult:
    """What one git process returned (output bytes are capped at GIT_OUTPUT_CAP)."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def error(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip() or f"git {self.args[0]} exited {self.returncode}"


@dataclass(frozen=True)
class Repository:
    """A validated repository: its work-tree root and the git directory git must use."""

    root: Path
    git_dir: Path
    common_dir: Path | None = None  # a linked worktree's main git directory, pinned too


@dataclass
class _Pin:
    """What `.git` was when the session started: checked before every later git call."""

    repo: Repository
    entry: tuple  # ("dir", dev, ino) or ("file", pointer bytes)
    git_dir_id: tuple[int, int]
    broken: str = ""  # set once the entry changed: every later call is refused with this message


_PINS: dict[Path, _Pin] = {}
_PINS_LOCK = threading.Lock()


def pin(root: Path) -> Repository:
    """Resolve the repository's git directory once, at session start; later calls must find it unchanged.

    Without a pin, each call would re-read `.git`, and a model that can write the work tree (a
    worktree's pointer file under the Landlock fallback, or `mv .git` anywhere it can) could point
    the agent's commits, status and undo at another repository.
    """
    repo = validate(root, pinned=False)
    pinned = _Pin(repo, _entry_identity(repo.root / ".git"), _identity(repo.git_dir))
    with _PINS_LOCK:
        _PINS[repo.root] = pinned
    return repo


def unpin(root: Path) -> None:
    """Forget a pin (the session for this work tree ended)."""
    with _PINS_LOCK:
        _PINS.pop(Path(root).resolve(), None)


def _identity(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _entry_identity(dot_git: Path) -> tuple:
    info = os.lstat(dot_git)
    if stat.S_ISDIR(info.st_mode):
        return ("dir", info.st_dev, info.st_ino)
    if stat.S_ISREG(info.st_mode):
        return ("file", _read_small(dot_git))
    return ("other",)


def _checked_pin(pinned: _Pin) -> Repository:
    """The pinned repository if `.git` is unchanged; otherwise refuse (restoring a pointer file first)."""
    if pinned.broken:
        raise UnsafeRepository(pinned.broken)
    dot_git = pinned.repo.root / ".git"
    try:
        now = _entry_identity(dot_git)
    except (OSError, HostGitError):
        now = ("missing",)
    try:
        same_dir = _identity(pinned.repo.git_dir) == pinned.git_dir_id
    except OSError:
        same_dir = False
    if now == pinned.entry and same_dir:
        return pinned.repo
    restored = pinned.entry[0] == "file" and same_dir and _restore_pointer(dot_git, pinned.entry[1])
    pinned.broken = (f"{dot_git} changed during the session (it pointed to {pinned.repo.git_dir}); a command "
                     "or the model repointed or replaced it, so the agent runs no more git in this work tree "
                     "this session" + ("; the pointer file was put back" if restored else
                                       "; put it back yourself before using git here"))
    raise UnsafeRepository(pinned.broken)


def _restore_pointer(dot_git: Path, content: bytes) -> bool:
    """Rewrite the worktree's `.git` pointer file with its pinned content, following no link.

    The new file is written next to it through a descriptor of the work-tree root (opened with
    O_NOFOLLOW) and renamed over `.git`, so a link planted at `.git` or the root is never followed.
    """
    try:
        folder = os.open(dot_git.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    temporary = f".git.gptoss-restore-{os.getpid()}"
    try:
        info = os.lstat(".git", dir_fd=folder)
        if not stat.S_ISREG(info.st_mode):
            return False
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=folder)
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
        os.replace(temporary, ".git", src_dir_fd=folder, dst_dir_fd=folder)
        return True
    except OSError:
        try:
            os.unlink(temporary, dir_fd=folder)
        except OSError:
            pass
        return False
    finally:
        os.close(folder)


def find_root(start: Path) -> Path:
    """The work-tree root above `start`: the nearest folder holding a `.git` entry (found without git)."""
    here = Path(start).expanduser().resolve()
    for folder in (here, *here.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    raise HostGitError(f"{here} is not inside a git repository (run `git init` there first)")


def validate(root: Path, *, pinned: bool = True) -> Repository:
    """Check the repository's layout before git touches it (see the module docstring, point 1)."""
    root = Path(root).resolve()
    held = _PINS.get(root) if pinned else None
    if held is not None:
        return _checked_pin(held)
    dot_git = root / ".git"
    try:
        info = os.lstat(dot_git)
    except FileNotFoundError:
        raise HostGitError(f"{root} is not a git repository (run `git init` first)") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeRepository(f"{dot_git} is a symbolic link; the agent does not run git through it")
    if stat.S_ISDIR(info.st_mode):
        git_dir = dot_git
    elif stat.S_ISREG(info.st_mode):
        git_dir = _pointer_target(root, dot_git)
    else:
        raise UnsafeRepository(f"{dot_git} is neither a folder nor a gitdir file")
    _check_owner(root, git_dir)
    common = _common_dir(git_dir)
    if git_dir == dot_git:
        if common != dot_git:
            raise UnsafeRepository(f"{dot_git}/commondir redirects git to {common}; the agent refuses to follow it")
        return Repository(root, dot_git)
    for where in (git_dir, common):
        if where == root or where.is_relative_to(root):
            raise UnsafeRepository(f"{dot_git} points to {where}, inside the work tree, where the repository's own "
                                   "files (and the model) can write; the agent refuses to run git there")
    return Repository(root, git_dir, common)


def _check_owner(root: Path, git_dir: Path) -> None:
    """Like git's own safe.directory rule (CVE-2022-24765): a repository someone else owns is not ours to run.

    Git skips this check when GIT_DIR is set, as it is here, so the check is made here; a path the
    user listed in their global `safe.directory` (or `*`) is accepted, as git would.
    """
    owner = os.stat(git_dir).st_uid
    if owner == os.geteuid():
        return
    listed = _spawn(["git", "config", "--global", "--get-all", "safe.directory"], cwd=Path("/"),
                    env=hardened_git_env(), input=None, timeout_s=GIT_TIMEOUT_S)
    allowed = {line.strip() for line in listed.text.splitlines()}
    if "*" in allowed or str(root) in allowed or f"{root}/" in allowed:
        return
    raise UnsafeRepository(f"{git_dir} is owned by user id {owner}, not by you; git's safe.directory protection "
                           f"applies (add it with `git config --global --add safe.directory {root}` if you trust it)")


def _pointer_target(root: Path, dot_git: Path) -> Path:
    raw = _read_small(dot_git)
    first = raw.split(b"\n", 1)[0].strip()
    if not first.startswith(b"gitdir:"):
        raise UnsafeRepository(f"{dot_git} is a file but not a `gitdir:` pointer")
    target = Path(os.fsdecode(first[len(b"gitdir:"):].strip()))
    resolved = Path(os.path.realpath(target if target.is_absolute() else root / target))
    if not resolved.is_dir():
        raise UnsafeRepository(f"{dot_git} points to {resolved}, which is not a git directory")
    return resolved


def _common_dir(git_dir: Path) -> Path:
    """A linked worktree's git directory names the main one in `commondir`; that one must be safe too."""
    pointer = git_dir / "commondir"
    if not os.path.lexists(pointer):
        return git_dir
    target = Path(os.fsdecode(_read_small(pointer).strip()))
    return Path(os.path.realpath(target if target.is_absolute() else git_dir / target))


def _read_small(path: Path, limit: int = 4096) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafeRepository(f"{path}: {exc.strerror} (a link or special file is not followed)") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeRepository(f"{path} is not a regular file")
        return os.read(fd, limit)
    finally:
        os.close(fd)


def run_git(root: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None,
            timeout_s: float = GIT_TIMEOUT_S, check: bool = False) -> GitResult:
    """Run `git ARGS` on the repository at `root` with nothing the repository controls able to run.

    `env` adds variables the caller needs (an identity, a temporary index); it
    cannot re-enable anything, since the overrides are applied last.
    """
    if not args or args[0] not in ALLOWED_SUBCOMMANDS:
        raise HostGitError(f"host git refuses `git {args[0] if args else ''}`: not a command the agent needs")
    repo, overrides = _prepared(Path(root), timeout_s)
    base = hardened_git_env(repo, extra=env)
    full_env = {**base, **_config_env(HARDENED_GIT_CONFIG + overrides)}
    argv = ["git", "--no-pager", args[0], *_SUBCOMMAND_SAFETY.get(args[0], ()), *args[1:]]
    result = _spawn(argv, cwd=repo.root, env=full_env, input=input, timeout_s=timeout_s)
    if check and not result.ok:
        raise HostGitError(f"git {args[0]} failed: {result.error}")
    return result


_PREPARED = threading.local()


def _prepared(root: Path, timeout_s: float) -> tuple[Repository, tuple[tuple[str, str], ...]]:
    """The validated repository and its overrides: fresh per call, or once per `one_operation` block."""
    held = getattr(_PREPARED, "by_root", None)
    if held is not None and root in held:
        return held[root]
    repo = validate(root)
    prepared = repo, _driver_overrides(repo, hardened_git_env(repo), timeout_s)
    if held is not None:
        held[root] = prepared
    return prepared


@contextmanager
def one_operation() -> Iterator[None]:
    """Validate and list the config once for a burst of git calls that form one operation (a commit, an undo).

    The agent makes these calls back to back with no command of the model's running (under bwrap
    `.git` is read-only to commands anyway), so the listing stays true for the burst; it is
    dropped at the end of the block and every later call lists afresh.
    """
    outer = getattr(_PREPARED, "by_root", None)
    if outer is None:
        _PREPARED.by_root = {}
    try:
        yield
    finally:
        if outer is None:
            _PREPARED.by_root = None


def hardened_git_env(repo: Repository | None = None, *, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for host git: nothing inherited but the basics, every program pinned or off.

    With `repo`, GIT_DIR and GIT_WORK_TREE are pinned too. The fixed overrides
    are included; the per-call driver overrides are added by `run_git`.
    """
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEPT}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra or {})
    for key in [k for k in env if k.startswith("GIT_") and k not in _CALLER_GIT_VARIABLES]:
        del env[key]
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", PAGER="cat", GIT_EDITOR="true",
               GIT_SEQUENCE_EDITOR="true", EDITOR="true", VISUAL="true", GIT_SSH_COMMAND="false", GIT_SSH="false",
               GIT_NO_REPLACE_OBJECTS="1", GIT_OPTIONAL_LOCKS="0", GIT_LITERAL_PATHSPECS="1",
               GIT_PROTOCOL_FROM_USER="0", GIT_ALLOW_PROTOCOL="", GIT_NO_LAZY_FETCH="1")
    if repo is not None:
        env.update(GIT_DIR=str(repo.git_dir), GIT_WORK_TREE=str(repo.root))
        if repo.common_dir is not None:
            env["GIT_COMMON_DIR"] = str(repo.common_dir)
    env.update(_config_env(HARDENED_GIT_CONFIG))
    return env


# Variables a caller of run_git may set through `env`; every other GIT_* is dropped.
_CALLER_GIT_VARIABLES = frozenset({"GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
                                   "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
                                   "GIT_CONFIG_GLOBAL"})


def _config_env(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _driver_overrides(repo: Repository, env: dict[str, str], timeout_s: float) -> tuple[tuple[str, str], ...]:
    """An override for every program-naming key the effective config holds right now (point 2).

    The repository's own config may not take settings from a file in the work tree (an include):
    the model can rewrite such a file between this listing and the git call it protects.
    """
    listed = _spawn(["git", "--no-pager", "config", "--list", "-z", "--includes", "--show-scope", "--show-origin"],
                    cwd=repo.root, env=env, input=None, timeout_s=timeout_s)
    if not listed.ok:
        raise HostGitError(f"cannot read the repository's git config: {listed.error}")
    fields = listed.stdout.split(b"\0")
    entries = []
    for index in range(0, len(fields) - 2, 3):
        scope, origin, entry = (f.decode("utf-8", "surrogateescape") for f in fields[index:index + 3])
        if scope in ("local", "worktree"):
            _refuse_work_tree_config(repo, origin, entry)
        entries.append(entry)
    return program_overrides("\0".join(entries).encode("utf-8", "surrogateescape"))


def _refuse_work_tree_config(repo: Repository, origin: str, entry: str) -> None:
    """Raise UnsafeRepository if this repository-scope setting comes from, or includes, a work-tree file."""
    if not origin.startswith("file:"):
        return
    source = Path(os.path.realpath(repo.root / origin[len("file:"):]))
    targets = [source]
    key, _, value = entry.partition("\n")
    if key.lower().startswith(("include.", "includeif.")) and key.lower().endswith(".path") and value:
        target = Path(os.path.expanduser(value))
        targets.append(Path(os.path.realpath(target if target.is_absolute() else source.parent / target)))
    for target in targets:
        inside = target == repo.root or target.is_relative_to(repo.root)
        if inside and not target.is_relative_to(repo.git_dir):
            raise UnsafeRepository(f"the repository's git config takes settings from {target}, a file in the work "
                                   "tree that the model can change; the agent refuses to run git with it")


def program_overrides(config_listing: bytes) -> tuple[tuple[str, str], ...]:
    """Overrides for `git config --list -z` output: each program-naming key → an empty (or off) value."""
    keys: dict[str, str] = {}
    for entry in config_listing.split(b"\0"):
        key = entry.split(b"\n", 1)[0].decode("utf-8", "surrogateescape")
        if not key:
            continue
        section, _, rest = key.partition(".")
        name = rest.rsplit(".", 1)[-1].lower()
        if section.lower() == "pager" or section.lower() == "alias":
            keys[key] = "false" if section.lower() == "pager" else ""
        elif name in _PROGRAM_NAMES:
            keys[key] = _PROGRAM_VALUES.get(name, "")
            if section.lower() == "filter":  # a required filter with no command would make every read fail
                keys[key.rsplit(".", 1)[0] + ".required"] = "false"
        elif section.lower() in ("include", "includeif"):
            continue  # includes were resolved by --includes: their keys are already in this listing
    if len(keys) > MAX_PROGRAM_KEYS:
        raise UnsafeRepository(f"the repository's git config names {len(keys)} programs; the agent refuses to run "
                               "git on it")
    return tuple(keys.items())


def _spawn(argv: list[str], *, cwd: Path, env: Mapping[str, str], input: bytes | None,
           timeout_s: float) -> GitResult:
    """Start one git process with bounded time and output; kill its whole group on either limit."""
    from gptoss_agent.tools.sandbox import agent_children

    try:
        with agent_children.spawning() as register:  # known to the sandbox's stray sweep while it runs
            process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.PIPE if input is not None
                                       else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
            register(process.pid)
    except OSError as exc:
        raise HostGitError(f"cannot start git: {exc}") from None
    try:
        return _finish(process, argv, input, timeout_s)
    finally:
        agent_children.forget(process.pid)


def _finish(process: subprocess.Popen, argv: list[str], input: bytes | None, timeout_s: float) -> GitResult:
    if input is not None:
        threading.Thread(target=_feed, args=(process.stdin, input), daemon=True).start()
    out, err, problem = _collect(process, time.monotonic() + timeout_s)
    if problem:
        _kill_group(process)
        process.wait()
        raise HostGitError(f"git {argv[2] if len(argv) > 2 else ''} {problem}; stopped")
    return GitResult(tuple(argv[2:]), process.wait(), out, err)


def _collect(process: subprocess.Popen, deadline: float) -> tuple[bytes, bytes, str]:
    chunks: dict[int, list[bytes]] = {process.stdout.fileno(): [], process.stderr.fileno(): []}
    total = 0
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b"", b"", "took too long"
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                chunks[key.fd].append(data)
                total += len(data)
                if total > GIT_OUTPUT_CAP:
                    return b"", b"", f"printed more than {GIT_OUTPUT_CAP >> 20} MiB"
    remaining = deadline - time.monotonic()
    try:
        process.wait(max(remaining, 0.01))
    except subprocess.TimeoutExpired:
        return b"", b"", "took too long"
    return b"".join(chunks[process.stdout.fileno()]), b"".join(chunks[process.stderr.fileno()]), ""


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
