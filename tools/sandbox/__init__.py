"""The only place that starts processes: every command the model asks for runs confined.

Primary mechanism: bubblewrap. New user, pid, ipc, uts, cgroup and network
namespaces (no network: only the sandbox's own loopback is up), every capability
dropped, uid 65534 inside when the agent is root (a name only: files still see
host uid 0, hence the scan of tools.sandbox_secrets), the root
file system read-only, the workspace read-write with its `.git` read-only
(planted hooks or config would otherwise run later on the host), tmpfs over
/tmp, /run, /dev/shm, $HOME, /root and /home (secrets and agent sockets stay
out of sight; only toolchain bin/lib folders are re-bound read-only), every
credential file of the shared deny list masked wherever it is still visible,
and a seccomp filter in the spirit of Docker's default profile
(tools.seccomp).

Root outside the sandbox is still uid 0 to the kernel's file permission
checks, even with no capabilities: so files only root may read are masked
(a fixed list, plus a scan of the system trees; tools.sandbox_secrets).
`.git/config` is shown to bwrap commands without URL credentials. Under
Landlock, only a few device files are allowed (never /dev/pts), and where it
gets no PID namespace the agent is a child subreaper that kills every stray
child at the end of each call (tools.agent_children).

Fallback where bwrap is missing or refused: Landlock plus seccomp, launched by
tools.sandbox_launch, which adds a PID namespace with a fresh /proc, a
read-only `.git`, and a parent-death signal where the kernel allows; `.git`'s
config and hooks are also checked after each command and restored without
following links (tools.git_snapshot). `properties()` says which guarantees
hold on this machine. If neither mechanism works, commands are refused with
the fix, unless the user chose `--sandbox none`.

Under bwrap each command also gets a copy-on-write view of the work tree
(tools.sandbox_overlay): what it wrote is carried into the tree when it ends
(tools.overlay_changes), so the agent knows exactly which writes are its own.

Every command also gets resource limits, a wall-clock timeout, a scrubbed
environment, output capped as head + tail, and at its end every process it
left behind is killed.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, Mapping, Sequence

from gptoss_agent.tools import git_snapshot, python_env
from gptoss_agent.tools.sandbox import agent_children, landlock, overlay as sandbox_overlay, overlay_changes, seccomp
from gptoss_agent.tools.sandbox.isolated_python import launcher_command
from gptoss_agent.tools.sandbox.secrets import (ENV_ALLOWED, SCANNED_SYSTEM_TREES, credentials_deep, hidden_paths,
                                                scrub_environment, scrubbed_git_config, system_scan_cut_short)

Mechanism = Literal["bwrap", "landlock", "none"]

_ENV_ALLOWED = ENV_ALLOWED  # kept for run_trusted below
# Toolchain folders under $HOME a command may need: bin and lib folders only, never a whole dot-folder
# (~/.cargo holds credentials.toml next to bin/). PATH entries and this Python's prefix are added as found.
_HOME_TOOLCHAINS = (".pyenv/versions", ".pyenv/shims", ".pyenv/bin", ".pyenv/libexec", ".cargo/bin",
                    ".cargo/registry", ".cargo/git", ".rustup/toolchains", ".rustup/settings.toml", ".local/bin",
                    ".local/lib", ".nvm/versions", ".volta/bin", ".volta/tools", "go/bin", "go/pkg/mod",
                    ".sdkman/candidates", ".deno/bin", ".bun/bin", ".local/share/uv/python")
# Trees a command never sees whole (bwrap: tmpfs over them; Landlock: left out), re-bound parts excepted.
_PRIVATE_TREES = ("/root", "/home")
_LANDLOCK_PRIVATE_TREES = _PRIVATE_TREES + ("/tmp", "/var/tmp", "/run")
# Where a project environment's folder may be re-bound from (elsewhere it is visible already, or never shown).
_BIND_TREES = ("/root", "/home", "/tmp", "/var/tmp")
# /dev under Landlock: only these device files, never the folder (the user's terminals, /dev/pts/N, sit
# there, and the host's /dev/shm). /dev/tty is the command's own controlling terminal (it has none: ENXIO).
_LANDLOCK_READ_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
_LANDLOCK_WRITE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full")
_UNPRIVILEGED_ID = 65534  # nobody/nogroup: what root becomes inside


class SandboxUnavailable(RuntimeError):
    """No confinement mechanism works here; the message names the fix."""


@dataclass(frozen=True)
class Limits:
    """Per-command limits; the timeout kills the whole command, descendants included."""

    timeout_s: float = 120.0
    cpu_s: int = 600
    address_space_bytes: int = 8 * 2**30
    file_size_bytes: int = 1 * 2**30
    processes: int = 512
    output_bytes: int = 32_000


@dataclass(frozen=True)
class CommandResult:
    """What a sandboxed command did."""

    argv: tuple[str, ...]
    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False
    omitted_bytes: int = 0
    binary: bool = False
    mechanism: Mechanism = "bwrap"
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


@dataclass(frozen=True)
class SandboxReport:
    """Which mechanism is active and why (`gptoss-agent doctor`, the status bar)."""

    mechanism: Mechanism | None
    reason: str
    checks: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Property:
    """One guarantee of the sandbox, whether it holds on this machine, and why not when it does not."""

    name: str
    holds: bool
    detail: str = ""


@lru_cache(maxsize=1)
def _bwrap_works() -> tuple[bool, str]:
    path = shutil.which("bwrap")
    if path is None:
        return False, "bwrap is not installed (Debian/Ubuntu: apt install bubblewrap)"
    probe = subprocess.run([path, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/",
                            "true"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        return False, f"bwrap is refused here: {probe.stderr.strip() or probe.returncode}"
    return True, f"bwrap at {path} works"


def detect(requested: str = "auto") -> SandboxReport:
    """Pick the mechanism for `requested` (auto | bwrap | landlock | none)."""
    bwrap_ok, bwrap_why = _bwrap_works()
    abi = landlock.abi_version()
    try:
        seccomp.build_filter(deny_all_sockets=True)
        seccomp_ok, seccomp_why = True, "seccomp filter available"
    except seccomp.SeccompUnavailable as exc:
        seccomp_ok, seccomp_why = False, str(exc)
    checks = (bwrap_why, f"Landlock ABI {abi}" if abi else "Landlock unavailable", seccomp_why)
    if requested == "none":
        return SandboxReport("none", "sandbox disabled by --sandbox none: commands run unconfined", checks)
    if requested in ("auto", "bwrap") and bwrap_ok and seccomp_ok:
        return SandboxReport("bwrap", "bubblewrap: namespaces without network, no capabilities, read-only "
                                      "system, seccomp", checks)
    if requested in ("auto", "landlock") and abi >= 1 and seccomp_ok:
        reason = "Landlock + seccomp (bwrap unavailable)" if requested == "auto" else "Landlock + seccomp (requested)"
        return SandboxReport("landlock", reason, checks)
    return SandboxReport(None, f"no sandbox mechanism for {requested!r}: install bubblewrap (apt install "
                               "bubblewrap), allow unprivileged user namespaces, or run with --sandbox none "
                               "at your own risk", checks)


def _launcher() -> list[str]:
    """The Landlock launcher, started isolated (-I) so that nothing in the repository can stand in for it."""
    return launcher_command("gptoss_agent.tools.sandbox.landlock_launch")


@lru_cache(maxsize=1)
def landlock_isolation() -> dict[str, bool]:
    """What the Landlock launcher achieves on this machine for this user (one probe per process)."""
    found = {"pid_namespace": False, "mount_namespace": False, "fresh_proc": False, "readonly_git": False}
    scratch = Path(tempfile.mkdtemp(prefix="gptoss-probe-"))
    try:
        (scratch / "ro").mkdir()
        done = subprocess.run(_launcher() + ["--probe", "--write", str(scratch), "--ro", str(scratch / "ro"),
                                             "--", "true"], capture_output=True, text=True, timeout=20)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                found.update(json.loads(line))
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return found


def sandbox_properties(mechanism: Mechanism | None, workspace: Path | None = None) -> tuple[Property, ...]:
    """The guarantees `mechanism` gives on this machine (for `workspace`, default the current folder),
    each with whether it holds (doctor, TUI)."""
    root = os.getuid() == 0
    if mechanism is None:
        return (Property("commands run", False, "no sandbox mechanism works here"),)
    if mechanism == "none":
        return (Property("confinement", False, "--sandbox none: commands run as you, unconfined"),)
    cut = system_scan_cut_short()
    common = (
        Property("no capabilities, no_new_privs", True),
        Property("seccomp deny list (mount, namespaces, ptrace, bpf, keyrings, io_uring, TIOCSTI, ...)", True),
        Property("cannot change another process's limits, priority or CPUs (prlimit, renice, taskset)", True),
        Property("credential files hidden (shared deny list)", True),
        Property("secret environment variables scrubbed", True),
        Property("root-only files unreadable", not cut,
                 ("as root the command is still uid 0 to file permissions: every entry of "
                  + ", ".join(SCANNED_SYSTEM_TREES) + " and / no ordinary user could read is masked "
                  "(scanned once per process); other trees (/usr, the repository's parents) are not scanned"
                  + (f"; NOT scanned whole (too big): {', '.join(cut)}" if cut else ""))
                 if root else "the command runs as you, not root"),
    )
    if mechanism == "bwrap":
        return common + (
            Property("no network (own network namespace)", True, "only the sandbox's own loopback `lo` is up"),
            Property("sockets: AF_INET, AF_INET6, AF_NETLINK only (AF_UNIX, AF_VSOCK, AF_PACKET, ... refused)", True),
            Property("unprivileged uid inside", not root,
                     f"uid {_UNPRIVILEGED_ID} by name only: the kernel still checks files as host uid 0 (with no "
                     "capabilities), so what root owns is readable unless masked (see root-only files) and "
                     "writable where bound writable (the repository)" if root else ""),
            Property("agent processes invisible (own PID namespace, fresh /proc)", True),
            Property(".git read-only", True),
            Property("tokens in .git/config remote URLs hidden (a scrubbed copy is shown)", True),
            Property("host terminals unreachable (own /dev)", True),
            Property("leftover processes killed when the command ends", True),
            _exact_attribution(*sandbox_overlay.probe(Path(workspace or Path.cwd()).resolve())),
        )
    found = landlock_isolation()
    abi = landlock.abi_version()
    return common + (
        Property("no network (Landlock TCP rules and seccomp: no sockets at all)", True),
        Property("agent processes invisible (own PID namespace, fresh /proc)", found["fresh_proc"],
                 "" if found["fresh_proc"] else
                 "no PID/mount namespace here: /proc lists host processes (the agent is made non-dumpable "
                 "so its environment stays unreadable)"),
        Property("cannot signal the agent", found["pid_namespace"] or abi >= 6,
                 "" if found["pid_namespace"] else
                 "Landlock signal scoping (ABI 6+)" if abi >= 6 else "seccomp refuses the agent's pids only"),
        Property(".git read-only", found["readonly_git"],
                 "" if found["readonly_git"] else "no mount namespace: .git config/hooks restored after each "
                                                  "command instead"),
        Property("tokens in .git/config remote URLs hidden", False,
                 "the Landlock fallback cannot show a scrubbed copy: `git remote -v` prints them"),
        Property("host terminals unreachable (only /dev/null, zero, full, random, urandom, tty allowed)", True),
        Property("leftover processes killed when the command ends", True,
                 "PID namespace teardown" if found["pid_namespace"] else
                 "the agent is a child subreaper: every orphan (setsid, env -i) is re-parented to it and "
                 "killed at the end of the call"),
        Property("unprivileged uid inside", not root, "as root the fallback keeps uid 0 (with no capabilities)"
                 if root else "the command runs as you"),
        Property("private /tmp", True, "TMPDIR is a fresh folder per command; the host's /tmp is hidden"),
        _exact_attribution(False, "the Landlock fallback has no copy-on-write overlay"),
    )


def _exact_attribution(holds: bool, why: str) -> Property:
    detail = why if holds else (f"{why}; a file that changes in the work tree while a command runs is attributed "
                                "to that command (snapshots before and after)")
    return Property("exact attribution of command writes (copy-on-write overlay)", holds, detail)


class Sandbox:
    """Runs commands confined to one workspace."""

    def __init__(self, workspace: Path, *, mode: str = "auto", limits: Limits = Limits(),
                 python: str | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.limits = limits
        # The project's own interpreter (tools.python_env): shown read-only, first on PATH, for every command.
        self.python_env = python_env.detect(self.workspace, override=python)
        self.report = detect(mode)
        self.mechanism = self.report.mechanism
        self._isolation = {"pid_namespace": True}
        self._overlay_off: str | None = None  # why the overlay stopped working in this process, if it did
        self._placed: dict[str, tuple[int, int]] = {}  # what earlier carries left (tools.overlay_changes.apply)
        if self.mechanism == "landlock":
            agent_children.become_subreaper()
            self._isolation = landlock_isolation()
            if not self._isolation["fresh_proc"]:
                _make_undumpable()

    def properties(self) -> tuple[Property, ...]:
        """The guarantees this sandbox gives here (see sandbox_properties)."""
        props = sandbox_properties(self.mechanism, self.workspace)
        off = self._overlay_off
        if off is None and self.mechanism == "bwrap":
            holds, why = sandbox_overlay.usable(self.workspace)
            off = None if holds else why  # e.g. a file system mounted inside the work tree since the probe
        if off:
            props = tuple(_exact_attribution(False, off) if p.name.startswith("exact attribution")
                          else p for p in props)
        return props

    @property
    def exact_attribution(self) -> bool:
        """Whether each command gets a copy-on-write view, so its writes are known exactly (tools.sandbox_overlay)."""
        return (self.mechanism == "bwrap" and self._overlay_off is None
                and sandbox_overlay.usable(self.workspace)[0])

    def run(self, argv: Sequence[str], *, cwd: Path | None = None, timeout_s: float | None = None,
            env: Mapping[str, str] | None = None, cancel: threading.Event | None = None,
            scratch: Path | None = None) -> CommandResult:
        """Run `argv` confined; never raises for what the command itself does.

        `scratch` is a host folder the command may write (a test report the agent reads back).
        """
        if self.mechanism is None:
            raise SandboxUnavailable(self.report.reason)
        cwd = (cwd or self.workspace).resolve()
        timeout = timeout_s or self.limits.timeout_s
        # bwrap gives the command a private /tmp; the Landlock fallback needs a real folder for it.
        tmp = Path(tempfile.mkdtemp(prefix="gptoss-sbx-")) if self.mechanism == "landlock" else Path("/tmp")
        git_before = git_snapshot.take(self.workspace) if self.mechanism == "landlock" else None
        layers = sandbox_overlay.prepare(self.workspace) if self.exact_attribution else None
        pass_fds: tuple[int, ...] = ()
        try:
            command, pass_fds = self._wrap(list(argv), cwd, tmp, scratch)
            if layers is not None:
                command = layers.wrap(command)
            result = _execute(command, cwd=cwd, env=self._environment(tmp, env),
                              pass_fds=pass_fds + ((layers.report_write,) if layers else ()),
                              timeout=timeout, cancel=cancel, limits=self.limits, argv=tuple(argv),
                              mechanism=self.mechanism, sweep=not self._isolation["pid_namespace"])
        except BaseException:
            if layers is not None:
                layers.discard()
            raise
        finally:
            for fd in pass_fds:
                os.close(fd)
            if self.mechanism == "landlock":
                shutil.rmtree(tmp, ignore_errors=True)
        if layers is not None:
            result = self._carry(layers, result)
        if git_before is not None:
            restored = git_snapshot.restore(self.workspace, git_before)
            if restored:
                result = replace(result, notes=result.notes + (
                    "the command changed .git (" + ", ".join(restored) + "); those changes were undone",))
        return result

    def _carry(self, layers: sandbox_overlay.Layers, result: CommandResult) -> CommandResult:
        """After an overlay command (ended, timed out, killed or cancelled alike): carry what it wrote into
        the work tree, hand the outcome to whoever is collecting (tools.attribution), report conflicts."""
        error = layers.setup_error()
        if error:  # the launcher failed before the command: nothing ran, so it is safe to say "run it again"
            layers.discard()
            self._overlay_off = error
            return replace(result, exit_code=None, output=(
                f"the command did not run: {error}. Commands now write the work tree directly (their writes "
                "are attributed by snapshots); run it again."))
        collector = sandbox_overlay.current_collector()
        stale = sandbox_overlay.stale_notice()
        failed = None
        try:
            outcome = overlay_changes.apply(
                layers.upper, self.workspace, started_ns=layers.started_ns,
                conflicts_dir=layers.root.parent / "conflicts" / layers.root.name,
                expected=collector.expected if collector else (lambda path: overlay_changes.UNKNOWN),
                placed_before=self._placed, fs_type=sandbox_overlay.mount_fs_type(self.workspace),
                recordable=collector.recordable if collector else (lambda path: True))
        except overlay_changes.CarryFailed as exc:  # what was carried is still recorded; the rest stays kept
            outcome, failed = exc.outcome, exc
        except Exception as exc:  # nothing carried: the user's files are untouched, the command's are kept
            outcome, failed = overlay_changes.Outcome(), exc
        if failed is not None or outcome.left:  # keep the layer: what is left in it is the command's, not lost
            layers.keep()
        else:
            layers.discard()
        if len(self._placed) > 100_000:
            self._placed.clear()
        self._placed.update(outcome.placed)
        if collector is not None:
            collector.outcomes.append(outcome)
        notes = tuple(outcome.notes(str(layers.upper)))
        if failed is not None:
            notes += (f"what the command wrote could not all be carried into the work tree ({failed}); what was "
                      f"not carried is kept at {layers.upper}",)
        return replace(result, notes=result.notes + notes + ((stale,) if stale else ()))

    # ------------------------------------------------------------------ mechanisms

    def _wrap(self, argv: list[str], cwd: Path, tmp: Path, scratch: Path | None):
        if self.mechanism == "none":
            return argv, ()
        home = Path(os.environ.get("HOME", "/root")).resolve()
        environment = _environment_binds(self.python_env.visible)
        toolchains = _toolchain_paths(home, environment)
        hidden = hidden_paths(self.workspace, home, toolchains, environment)
        if self.mechanism == "bwrap" and self.exact_attribution:
            hidden = [*hidden, sandbox_overlay.layers_base()]  # other commands' layers and kept conflicts
        if self.mechanism == "landlock":
            return self._landlock(argv, home, toolchains, hidden, tmp, scratch), ()
        fd = os.memfd_create("gptoss-seccomp")  # bwrap reads the filter from this descriptor
        os.write(fd, _bwrap_filter())
        os.lseek(fd, 0, os.SEEK_SET)
        args = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if os.getuid() == 0:
            args += ["--uid", str(_UNPRIVILEGED_ID), "--gid", str(_UNPRIVILEGED_ID)]
        # A fresh /proc is writable where its files say so, and root outside owns them: kernel tunables
        # (/proc/sys), the sysrq trigger and IRQ affinity would be writable to a command run by root.
        # So /proc is read-only as a whole (one remount, and nothing in it to forget).
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--remount-ro", "/proc",
                 "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/dev/shm"]
        covered = [Path("/tmp"), Path("/run")]
        for tree in [Path(p) for p in _PRIVATE_TREES] + [home]:
            if tree.is_dir() and not any(tree.is_relative_to(c) for c in covered) and tree != Path("/"):
                args += ["--tmpfs", str(tree)]
                covered.append(tree)
        for path in toolchains:
            args += ["--ro-bind-try", str(path), str(path)]
        args += ["--bind", str(self.workspace), str(self.workspace)]
        binds = [*toolchains, self.workspace]
        if scratch is not None:
            args += ["--bind", str(scratch), str(scratch)]
            binds.append(Path(scratch))
        git = self.workspace / ".git"
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

    def _landlock(self, argv: list[str], home: Path, toolchains: list[Path], hidden: list[Path], tmp: Path,
                  scratch: Path | None) -> list[str]:
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
        launcher = _launcher() + ["--parent", str(os.getpid()), "--write", str(self.workspace), "--write", str(tmp)]
        for folder in listable:  # names only: an interpreter lists lib/python3.X to import from it
            launcher += ["--list", folder]
        for device in _LANDLOCK_WRITE_DEVICES:
            if os.path.exists(device):
                launcher += ["--write", device]
        if scratch is not None:
            launcher += ["--write", str(scratch)]
        git = self.workspace / ".git"
        if git.is_dir() and not git.is_symlink():
            launcher += ["--ro", str(git)]
        if not self._isolation["pid_namespace"]:
            for pid in _agent_pids():
                launcher += ["--protect", str(pid)]
        for path in readable:
            launcher += ["--read", path]
        return launcher + ["--"] + argv

    def _environment(self, tmp: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = scrub_environment(os.environ, extra)
        env.pop("VIRTUAL_ENV", None)  # the agent's own; the project's is set next
        env.update(python_env.sandbox_variables(self.python_env, env.get("PATH", "/usr/local/bin:/usr/bin:/bin")))
        env.setdefault("LANG", "C.UTF-8")
        # No bytecode caches: a test run must not leave __pycache__ for the agent to commit.
        env.update(HOME=os.environ.get("HOME", "/root"), TERM="dumb", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
                   TMPDIR="/tmp" if self.mechanism == "bwrap" else str(tmp), GIT_TERMINAL_PROMPT="0",
                   GPTOSS_AGENT_SANDBOX=self.mechanism or "none", GPTOSS_AGENT_RUN=uuid.uuid4().hex)
        if self.mechanism == "landlock":
            env["GIT_CONFIG_GLOBAL"] = "/dev/null"  # $HOME is unreadable there; git treats that as fatal
        return env


@lru_cache(maxsize=1)
def _bwrap_filter() -> bytes:
    return seccomp.build_filter(deny_all_sockets=False)


def _agent_pids() -> list[int]:
    """This process and its threads: what a command must not signal where no PID namespace hides them."""
    pids = [os.getpid(), os.getpgrp()]
    try:
        pids += [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        pass
    return sorted(set(pids))


def _make_undumpable() -> None:
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


def _environment_binds(visible: tuple[Path, ...]) -> tuple[Path, ...]:
    """The project environment's folders that need a bind: under a tree the sandbox hides (/root, /home, /tmp,
    /var/tmp; anything else is shown already, and a bind over a system folder would re-mask it), never a
    pseudo filesystem, and small enough to be masked to full depth (tools.sandbox_secrets.credentials_deep).
    tools.python_env already refuses the rest; this is the sandbox's own guard."""
    kept = []
    for path in visible:
        real = Path(os.path.realpath(path))
        if real != path or not any(real.is_relative_to(tree) and real != Path(tree) for tree in _BIND_TREES):
            continue
        if credentials_deep(real) is None:
            continue  # too big to mask to full depth: not shown
        kept.append(real)
    return tuple(kept)


def _toolchain_paths(home: Path, environment: tuple[Path, ...] = ()) -> list[Path]:
    """Folders under $HOME the toolchain needs (this Python, PATH entries), to re-bind read-only, and the
    project's Python environment (`environment`: already checked by tools.python_env.visible_folders)."""
    return list(_toolchain_paths_for(home, os.environ.get("PATH", ""), environment))


@lru_cache(maxsize=8)
def _toolchain_paths_for(home: Path, path_variable: str, environment: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    candidates += [Path(p) for p in path_variable.split(os.pathsep) if p]
    candidates += [home / name for name in _HOME_TOOLCHAINS]
    private = [home] + [Path(p) for p in _PRIVATE_TREES]
    seen: list[Path] = []
    for path in candidates:
        try:
            resolved = path.resolve()
        except OSError:
            continue
        inside = any(resolved.is_relative_to(tree) and resolved != tree for tree in private)
        if inside and _reachable(resolved) and resolved not in seen:
            seen.append(resolved)
    # The project's environment may live anywhere (a venv in /tmp is hidden by the sandbox's own /tmp).
    seen += [path for path in environment if _reachable(path) and path not in seen]
    # One bind per top-most folder: every bind costs bwrap a mount.
    seen.sort(key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in seen:
        if not any(path.is_relative_to(parent) for parent in kept):
            kept.append(path)
    return tuple(kept)


def _reachable(path: Path) -> bool:
    """Whether `path` exists for us. A PATH entry under a folder we may not enter (root's
    ~/.local/bin seen by another user) is simply not there: never a reason to fail a command."""
    try:
        return path.exists()
    except OSError:
        return False


class _PidsCgroup:
    """A pids cgroup for one command, where the machine lets us make one.

    RLIMIT_NPROC is never enforced for root (CI runs as root), so a fork bomb
    there is capped by the cgroup's pids.max instead; unprivileged users get
    RLIMIT_NPROC as well. Its process list is also how every leftover process
    is found and killed at the end of a call.
    """

    def __init__(self, limit: int) -> None:
        self.path: Path | None = None
        for root in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if (root / "cgroup.procs").exists() and os.access(root, os.W_OK) and (
                    root.name == "pids" or "pids" in _read_text(root / "cgroup.subtree_control")):
                try:
                    path = root / f"gptoss-{uuid.uuid4().hex[:12]}"
                    path.mkdir()
                    (path / "pids.max").write_text(str(limit))
                    self.path = path
                except OSError:
                    self.path = None
                break

    def kill_all(self) -> None:
        if self.path is None:
            return
        for attempt in range(200):
            pids = [int(p) for p in _read_text(self.path / "cgroup.procs").split()]
            if not pids:
                return
            _kill_all(pids)
            time.sleep(0.001 if attempt < 20 else 0.02)  # dying processes leave the list within a moment

    def remove(self) -> None:
        """Remove the cgroup; exited tasks can linger in it for a moment, so retry briefly."""
        if self.path is None:
            return
        for attempt in range(200):
            try:
                self.path.rmdir()
                return
            except OSError:
                if attempt == 20:
                    self.kill_all()
                time.sleep(0.001)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _limited(command: list[str], limits: Limits, cgroup: _PidsCgroup) -> list[str]:
    """Prefix the command so it starts inside its pids cgroup and under its rlimits.

    Done with `sh` and util-linux's `prlimit` rather than a Python preexec hook,
    which would force a fork of this (possibly model-sized) process per command.
    """
    # RLIMIT_NPROC counts all of the user's processes and is never enforced for root.
    processes = limits.processes if os.getuid() == 0 else _own_process_count() + limits.processes
    prefix = ["prlimit", f"--cpu={limits.cpu_s}", f"--as={limits.address_space_bytes}",
              f"--fsize={limits.file_size_bytes}", f"--nproc={processes}", "--core=0", "--"]
    if cgroup.path is not None:
        prefix = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup.path / "cgroup.procs")] + prefix
    return prefix + command


def _own_process_count() -> int:
    """RLIMIT_NPROC counts every process of this user, so the budget starts from what exists."""
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def _execute(command: list[str], *, cwd: Path, env: dict[str, str], pass_fds, timeout: float,
             cancel: threading.Event | None, limits: Limits, argv: tuple[str, ...],
             mechanism: Mechanism, sweep: bool) -> CommandResult:
    started = time.monotonic()
    cgroup = _PidsCgroup(limits.processes)
    try:
        with agent_children.spawning() as register:  # a concurrent call's sweep must not take it for a stray
            process = subprocess.Popen(_limited(command, limits, cgroup), cwd=cwd, env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       start_new_session=True, pass_fds=pass_fds)
            register(process.pid)
    except OSError as exc:
        cgroup.remove()
        return CommandResult(argv, None, f"cannot start {argv[0] if argv else 'command'}: {exc.strerror}",
                             0.0, mechanism=mechanism)
    try:
        return _supervise(process, cgroup, started, env=env, timeout=timeout, cancel=cancel, limits=limits,
                          argv=argv, mechanism=mechanism, sweep=sweep)
    finally:
        agent_children.forget(process.pid)
        if mechanism == "landlock":
            # Orphans the command detached (setsid, env -i) were re-parented to the agent (a subreaper):
            # every child that is not a known one is the command's, and dies here, before .git is restored.
            agent_children.sweep()
        cgroup.remove()


def _supervise(process: subprocess.Popen, cgroup: _PidsCgroup, started: float, *, env: dict[str, str],
               timeout: float, cancel: threading.Event | None, limits: Limits, argv: tuple[str, ...],
               mechanism: Mechanism, sweep: bool) -> CommandResult:
    """Read output until the command ends, then kill whatever it left behind.

    The command has ended when its output closes or its own process exits: a
    background child holding the pipe open does not keep the call (or itself) alive."""
    capture = _CappedOutput(limits.output_bytes)
    timed_out = cancelled = False
    stream = process.stdout
    deadline = started + timeout
    exited_at: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            timed_out = exited_at is None
            break
        if cancel is not None and cancel.is_set() and exited_at is None:
            cancelled = True
            break
        if exited_at is None and process.poll() is not None:
            exited_at = now
            _end_leftovers(process, cgroup, env, sweep)
            deadline = min(deadline, now + 1.0)  # drain what is already in the pipe
        ready, _, _ = select.select([stream], [], [], min(deadline - now, 0.05))
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            capture.add(chunk)
    if exited_at is None and not (timed_out or cancelled):
        try:  # the output closed; the command itself may still run
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out or cancelled:
        _end_leftovers(process, cgroup, env, True)
    elif exited_at is None:
        _end_leftovers(process, cgroup, env, sweep)
    stream.close()
    process.wait()
    text, binary = capture.text()
    notes = []
    if timed_out:
        notes.append(f"timed out after {timeout:g}s: the command and everything it started were killed")
    if cancelled:
        notes.append("cancelled: the command and everything it started were killed")
    code = None if (timed_out or cancelled) else process.returncode
    return CommandResult(argv, code, text, time.monotonic() - started, timed_out, cancelled,
                         capture.omitted, binary, mechanism, tuple(notes))


def _end_leftovers(process: subprocess.Popen, cgroup: _PidsCgroup, env: dict[str, str], sweep: bool) -> None:
    """Kill every process the command started that is still alive: its cgroup, its process group,
    and (where no PID namespace does it for us) every process carrying this run's id."""
    cgroup.kill_all()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if sweep:
        _kill_tree(process, env["GPTOSS_AGENT_RUN"])


class _CappedOutput:
    """Keeps the first and last half of the byte budget; counts what falls in between."""

    def __init__(self, budget: int) -> None:
        self._half = max(budget // 2, 1)
        self._head = bytearray()
        self._tail = bytearray()
        self.omitted = 0

    def add(self, chunk: bytes) -> None:
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > self._half:
                cut = len(self._tail) - self._half
                self.omitted += cut
                del self._tail[:cut]

    def text(self) -> tuple[str, bool]:
        raw = bytes(self._head) + bytes(self._tail)
        if raw and (raw.count(0) > len(raw) // 100 or _undecodable_share(raw) > 0.1):
            return f"[binary output: {len(raw) + self.omitted} bytes, not shown]", True
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if self.omitted:
            return f"{head}\n[… {self.omitted} bytes omitted …]\n{tail}", False
        return head + tail, False


def _undecodable_share(raw: bytes) -> float:
    text = raw.decode("utf-8", errors="replace")
    return text.count("\ufffd") / max(len(text), 1)


def _kill_tree(process: subprocess.Popen, run_id: str) -> None:
    """Kill the command's process group and every descendant, including ones that called setsid
    or were orphaned and adopted by us (they carry this run's id in their environment)."""
    parents = _parent_map()
    victims = _below(process.pid, parents)
    if process.returncode is None:
        victims.add(process.pid)
    for pid, parent in parents.items():
        if parent == os.getpid() and pid != process.pid and _carries(pid, run_id):
            victims |= {pid} | _below(pid, parents)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _kill_all(victims)


def _kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _parent_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    parents[int(entry.name)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def _below(root: int, parents: dict[int, int]) -> set[int]:
    found: set[int] = set()
    frontier = [root]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


def _carries(pid: int, run_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return f"GPTOSS_AGENT_RUN={run_id}".encode() in handle.read()
    except OSError:
        return False


# Host git lives in tools/host_git.py (the one place that runs git on the host); these names stay importable.
from gptoss_agent.tools.host_git import HARDENED_GIT_CONFIG, hardened_git_env  # noqa: E402,F401


def run_trusted(argv: Sequence[str], *, cwd: Path, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Run a host helper we trust (ripgrep): no shell, bounded time, captured output.

    `git` is never run from here directly: it goes through tools.host_git,
    which validates the repository and neutralises every program it could run.
    The model never chooses these programs; its commands go through `Sandbox.run`.
    """
    if argv and Path(argv[0]).name == "git":
        from gptoss_agent.tools.host_git import HostGitError, find_root, run_git

        try:
            done = run_git(find_root(cwd), *argv[1:], timeout_s=timeout_s)
        except HostGitError as exc:
            return subprocess.CompletedProcess(list(argv), 128, b"", str(exc).encode())
        return subprocess.CompletedProcess(list(argv), done.returncode, done.stdout, done.stderr)
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOWED or k == "HOME"}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return subprocess.run(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout_s)
