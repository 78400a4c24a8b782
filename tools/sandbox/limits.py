"""What bounds one command: its limits (timeout, CPU, memory, file size, processes, output), applied
with util-linux's `prlimit`, and a pids cgroup that caps a fork bomb even for root and lists every
process the command left behind."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gptoss_agent.tools.sandbox.processes import kill_all

@dataclass(frozen=True)
class Limits:
    """Per-command limits; the timeout kills the whole command, descendants included."""

    timeout_s: float = 120.0
    cpu_s: int = 600
    address_space_bytes: int = 8 * 2**30
    file_size_bytes: int = 1 * 2**30
    processes: int = 512
    output_bytes: int = 32_000


class PidsCgroup:
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
            kill_all(pids)
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


def limited(command: list[str], limits: Limits, cgroup: PidsCgroup) -> list[str]:
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
