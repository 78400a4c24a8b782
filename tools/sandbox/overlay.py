"""Copy-on-write work trees for bubblewrap commands: what a command writes is known exactly.

Each bwrap command starts through tools.sandbox_overlay_launch, which mounts
an overlay over the work tree in a mount namespace of its own (lower: the work
tree itself; upper: a fresh private folder) and then execs the unchanged bwrap
command line. Every bind and mask bwrap makes over the work tree (`.git`
read-only, the scrubbed `.git/config`, masked secrets, toolchain folders)
therefore applies to the merged view exactly as before, and the host's work
tree is never written by the command. When the command has ended (normally,
timed out, killed or cancelled) its upper layer holds exactly what it wrote;
tools.overlay_changes carries that into the work tree and reports conflicts.

Where the overlay cannot work, `probe` says why once per work tree and process,
and the sandbox keeps writing the work tree directly (attribution then falls
back to snapshots, tools.attribution):
- the Landlock fallback, or no user or mount namespaces;
- a file system whose change times cannot be trusted to a fraction of a second
  (network file systems, FAT): conflicts are found by change time;
- when the namespace can map only our own ids (unprivileged, or root inside a
  user namespace mapping only uid 0), a work tree holding a file owned by
  another uid or gid: the overlay cannot copy such a file up (EOVERFLOW);
- a file system mounted inside the work tree (the overlay's lower layer would
  show the folder under it instead); looked at again before every command
  (`usable`: one read of mountinfo), since a mount may appear mid-session, and
  the carry itself never crosses a device boundary;
- the overlay mount itself refused (e.g. upper layer on overlayfs).

The layers live in a private 0700 folder under the agent's state folder (or
the temporary folder), never inside the work tree, and are hidden from the
command by the sandbox like every other private tree. Each names its owner
(process id, start time, pid namespace); at the first probe of a process the
layers of agents no longer running are removed when empty, and kept and named
to the user once when they hold a killed command's writes (`sweep_stale`).
"""

from __future__ import annotations

import contextvars
import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from gptoss_agent.tools.paths import PathRefused, private_dir
from gptoss_agent.tools.sandbox.isolated_python import launcher_command

# File systems whose change times come from the local clock at nanosecond resolution.
TRUSTED_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "bcachefs", "zfs",
                                  "overlay", "jfs", "reiserfs"})
MAX_OWNER_WALK = 1_000_000
def launcher() -> list[str]:
    """The overlay launcher, started isolated (-I) so that nothing in the repository can stand in for it."""
    return launcher_command("gptoss_agent.tools.sandbox.overlay_launch")


def layers_base() -> Path:
    """The private folder that holds every command's layers and kept conflict copies."""
    from gptoss_agent.agent.locations import state_dir_candidates

    for base in state_dir_candidates():
        try:
            return private_dir(base / "overlay")
        except (OSError, PathRefused):
            continue
    try:  # no usable state folder (a user without a home): a private folder in the temporary folder
        return private_dir(private_dir(Path(tempfile.gettempdir()) / f"gptoss-agent-{os.geteuid()}") / "overlay")
    except PathRefused as exc:
        raise OSError(str(exc)) from None


@dataclass
class Layers:
    """One command's upper and work folders, the launcher's report pipe, and when the command started."""

    root: Path
    workspace: Path
    started_ns: int
    report_read: int = -1
    report_write: int = -1

    @property
    def upper(self) -> Path:
        return self.root / "upper"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def wrap(self, command: list[str]) -> list[str]:
        """The launcher in front of `command` (a bwrap command line)."""
        return launcher() + ["--lower", str(self.workspace), "--upper", str(self.upper), "--work", str(self.work),
                             "--report", str(self.report_write), "--"] + command

    def setup_error(self) -> str | None:
        """What the launcher reported when it could not set up the overlay (the command did not run)."""
        if self.report_read < 0:
            return None
        os.set_blocking(self.report_read, False)
        try:
            text = os.read(self.report_read, 4096).decode("utf-8", "replace").strip()
        except (BlockingIOError, OSError):
            text = ""
        return text or None

    def close_pipe(self) -> None:
        for fd in (self.report_read, self.report_write):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.report_read = self.report_write = -1

    def keep(self) -> None:
        """Keep the layers (what is left in them is the command's and was named in its result): never
        named again as a killed agent's (`sweep_stale`)."""
        self.close_pipe()
        remove_tree(self.work)  # the overlay's scratch (a 000 folder in it): of no use once the command is over
        try:
            (self.root / "told").touch()
        except OSError:
            pass

    def discard(self) -> None:
        """Remove the layers (the overlay's work folder holds a 000 folder: opened up first)."""
        self.close_pipe()
        remove_tree(self.root)


def prepare(workspace: Path) -> Layers:
    """Fresh private layers for one command; the start time is taken now, before the command exists.

    The layers name their owner (this process: id and start time), so an agent started later can tell
    the layers of one that was killed from those of one still running (`sweep_stale`).
    """
    root = Path(tempfile.mkdtemp(prefix="cmd-", dir=layers_base()))
    (root / "owner").write_text(_owner_of(os.getpid()) or "")
    (root / "upper").mkdir(0o755)
    (root / "work").mkdir(0o700)
    read, write = os.pipe()
    os.set_inheritable(write, True)
    return Layers(root, Path(workspace), time.time_ns(), read, write)


def _owner_of(pid: int) -> str | None:
    """`pid`, its start time (clock ticks since boot: a process id alone may have been reused) and our pid
    namespace (a process id means nothing in another one)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return f"{pid} {fields[19]} {os.stat('/proc/self/ns/pid').st_ino}"
    except (OSError, IndexError):
        return None


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


CONFLICTS_KEPT_S = 30 * 24 * 3600  # a command's versions of conflicting files are kept this long
STALE_WITHOUT_OWNER_S = 24 * 3600  # layers whose owner cannot be checked here: stale once this old
_STALE_SWEPT: list[str] = []  # whether the sweep ran in this process ("done"), and what it kept
_STALE_TOLD = False


def sweep_stale(base: Path | None = None) -> list[Path]:
    """Remove the layers of agents that are no longer running (killed mid-command); returns the ones kept.

    A layer whose upper folder holds writes is kept: those are the command's writes, which were never
    carried into the work tree, and the user may want them (`stale_notice` says where, once: at one
    start only; the layer is removed CONFLICTS_KEPT_S after that).
    Runs once per process.
    """
    if _STALE_SWEPT:
        return []
    _STALE_SWEPT.append("done")
    try:
        base = base or layers_base()
        candidates = sorted(base.glob("cmd-*"))
    except OSError:
        return []
    kept = []
    for root in candidates:
        try:
            owner = (root / "owner").read_text().strip()
        except OSError:
            owner = ""
        if owner and owner.split()[-1] == _pid_namespace():
            try:
                if _owner_of(int(owner.split()[0])) == owner:
                    continue  # its agent is still running (another session)
            except ValueError:
                pass
        else:  # no owner, or one in another pid namespace (a container sharing the folder): by age only
            try:
                if time.time() - os.lstat(root).st_mtime < STALE_WITHOUT_OWNER_S:
                    continue
            except OSError:
                continue
        try:
            holds_writes = any(True for _ in os.scandir(root / "upper"))
        except OSError:
            holds_writes = False
        if holds_writes and os.path.lexists(root / "told"):  # the user was told where it is, at an earlier start
            try:
                if time.time() - os.lstat(root / "told").st_mtime > CONFLICTS_KEPT_S:
                    remove_tree(root)
            except OSError:
                pass
        elif holds_writes:
            kept.append(root / "upper")
        else:
            remove_tree(root)
    _STALE_SWEPT.extend(str(path) for path in kept)
    try:  # conflict copies the user has had long enough
        for folder in (base / "conflicts").glob("cmd-*"):
            if time.time() - os.lstat(folder).st_mtime > CONFLICTS_KEPT_S:
                remove_tree(folder)
    except OSError:
        pass
    return kept


def stale_notice() -> str | None:
    """Once per process: where the writes of commands whose agent was killed are (see `sweep_stale`)."""
    global _STALE_TOLD
    kept = _STALE_SWEPT[1:]
    if _STALE_TOLD or not kept:
        return None
    _STALE_TOLD = True
    from gptoss_agent.agent.safe_text import line

    for upper in kept:
        try:
            (Path(upper).parent / "told").touch()
        except OSError:
            pass

    shown = ", ".join(line(path) for path in kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
    return (f"an earlier agent was stopped while a command ran; what that command wrote was never carried into "
            f"the work tree and is kept at {shown} (copy what you need, then delete the folder)")


def remove_tree(path: Path) -> None:
    """Remove a layers folder; folders without permissions (the overlay's work/work is 000, a command may
    leave others) are opened up first. Never chmods through a link, and never a folder outside `path`: where
    the removal fails at `path` itself (already gone, say), its parent is not ours to open up (as root, that
    parent was once /tmp, left 0700 for every other user)."""
    top = os.path.abspath(path)

    def opened_up(function, name, _exc) -> None:
        name = os.fspath(name)
        for folder in (name, os.path.dirname(name)):
            if folder != top and not folder.startswith(top + os.sep):
                continue
            try:
                if stat.S_ISDIR(os.lstat(folder).st_mode):
                    os.chmod(folder, 0o700)
            except OSError:
                pass
        try:
            if function in (os.rmdir, os.unlink):
                function(name)
            elif stat.S_ISDIR(os.lstat(name).st_mode):
                shutil.rmtree(name, ignore_errors=True)
        except OSError:
            pass

    shutil.rmtree(path, onerror=opened_up)
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- whether it works here

def _mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) for every mount this process sees."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) >= 5 and right:
                    point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
                    found.append((point, right.split()[0]))
    except OSError:
        pass
    return found


def mount_fs_type(path: Path) -> str | None:
    """The file system type of the mount holding `path`."""
    real = os.path.realpath(path)
    best, found = -1, None
    for point, fs in _mounts():
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > best:
            best, found = len(point), fs
    return found


def mount_inside(path: Path) -> str | None:
    """A mount point strictly inside `path`: the overlay's lower layer would hide what is mounted there."""
    prefix = os.path.realpath(path).rstrip("/") + "/"
    return next((point for point, _ in _mounts() if point.startswith(prefix)), None)


def _full_identity_map(path: str) -> bool:
    try:
        with open(path) as handle:
            return [line.split() for line in handle if line.strip()] == [["0", "0", "4294967295"]]
    except OSError:
        return False


def foreign_owned(workspace: Path) -> str | None:
    """A path under the work tree (not in `.git`) owned by another uid or gid than ours, or None.

    Needed where the launcher can map only our own ids: the overlay cannot copy up such a file.
    Root whose namespace maps every id mounts without a user namespace and needs no walk.
    """
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0 and _full_identity_map("/proc/self/uid_map") and _full_identity_map("/proc/self/gid_map"):
        return None
    pending, seen = [str(workspace)], 0
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name == ".git" and folder == str(workspace):
                continue
            seen += 1
            if seen > MAX_OWNER_WALK:
                return f"{workspace} (more than {MAX_OWNER_WALK:,} entries: not checked)"
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid != uid or info.st_gid != gid:
                return os.path.relpath(entry.path, workspace)
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
    return None


def usable(workspace: Path) -> tuple[bool, str]:
    """`probe`'s answer, with what may change between commands looked at again (cheaply) each time:
    a file system mounted inside the work tree since (the overlay's lower layer would hide it, and a
    deletion would be carried onto it)."""
    ok, why = probe(workspace)
    if not ok:
        return ok, why
    inner = mount_inside(workspace)
    if inner is not None:
        return False, f"a file system is mounted inside the work tree ({inner}), which an overlay would hide"
    return ok, why


@lru_cache(maxsize=64)
def probe(workspace: Path) -> tuple[bool, str]:
    """Whether commands over `workspace` can get the overlay here, and why not (once per process)."""
    fs = mount_fs_type(workspace)
    if fs not in TRUSTED_FILE_SYSTEMS:
        return False, f"the work tree's file system ({fs or 'unknown'}) has no trusted change times"
    inner = mount_inside(workspace)
    if inner is not None:
        return False, f"a file system is mounted inside the work tree ({inner}), which an overlay would hide"
    try:
        base = layers_base()
    except OSError as exc:
        return False, str(exc)
    if Path(os.path.realpath(base)).is_relative_to(os.path.realpath(workspace)):
        return False, f"the state folder {base} is inside the work tree"
    sweep_stale()
    owner = foreign_owned(workspace)
    if owner is not None:
        return False, (f"{owner} is owned by another user or group, which the overlay cannot copy in this "
                       "user namespace")
    layers = prepare(workspace)
    marker = f".gptoss-overlay-probe-{uuid.uuid4().hex[:8]}"
    try:
        bwrap = shutil.which("bwrap") or "bwrap"
        command = [bwrap, "--unshare-user", "--unshare-pid", "--die-with-parent", "--cap-drop", "ALL",
                   "--ro-bind", "/", "/", "--bind", str(workspace), str(workspace), "--",
                   "/bin/sh", "-c", ': > "$1"', "probe", str(workspace / marker)]  # the path is data, never shell text
        done = subprocess.run(layers.wrap(command), capture_output=True, text=True, timeout=30,
                              pass_fds=(layers.report_write,), stdin=subprocess.DEVNULL)
        error = layers.setup_error()
        if error:
            return False, error
        if done.returncode != 0:
            return False, f"bwrap inside the overlay failed: {done.stderr.strip()[:200] or done.returncode}"
        if not (layers.upper / marker).exists() or os.path.lexists(workspace / marker):
            return False, "the overlay did not catch the probe's write"
        return True, "each command writes to a copy-on-write layer; only what it wrote is applied and attributed"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"overlay probe failed: {exc}"
    finally:
        layers.discard()


# ---------------------------------------------------------------- who wants the outcome

@dataclass
class Collector:
    """Gathers the outcomes of the overlay commands run while it is active (see `collecting`)."""

    expected: Callable[[str], object]
    recordable: Callable[[str], bool] = lambda path: True
    outcomes: list = field(default_factory=list)


_COLLECTOR: contextvars.ContextVar[Collector | None] = contextvars.ContextVar("gptoss_overlay_collector",
                                                                              default=None)


@contextmanager
def collecting(expected: Callable[[str], object],
               recordable: Callable[[str], bool] = lambda path: True) -> Iterator[Collector]:
    """While active, each overlay command's applied changes are appended to the collector.

    `expected(path)` says what the agent knows the file held before the command (bytes, None for
    absent, or tools.overlay_changes.UNKNOWN): it lets a file the agent itself wrote just before the
    command through the change-time check without being taken for the user's edit.
    `recordable(path)` says whether a change there would be recorded (not ignored): such a file is
    not overwritten or deleted when its contents cannot be kept for /undo.
    """
    collector = Collector(expected, recordable)
    token = _COLLECTOR.set(collector)
    try:
        yield collector
    finally:
        _COLLECTOR.reset(token)


def current_collector() -> Collector | None:
    return _COLLECTOR.get()
