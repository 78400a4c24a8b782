"""Ending what a command started: its cgroup, its process group, and, where no PID namespace does it
for us, every descendant or adopted orphan carrying the run's id (the sweep)."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptoss_agent.tools.sandbox.limits import PidsCgroup


def end_leftovers(process: subprocess.Popen, cgroup: PidsCgroup, env: dict[str, str], sweep: bool) -> None:
    """Kill every process the command started that is still alive: its cgroup, its process group,
    and (where no PID namespace does it for us) every process carrying this run's id."""
    cgroup.kill_all()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if sweep:
        _kill_tree(process, env["GPTOSS_AGENT_RUN"])


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
    kill_all(victims)


def kill_all(pids) -> None:
    """SIGKILL each pid; one that is gone already or not ours is skipped."""
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
