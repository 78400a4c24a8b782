"""The agent's own children: which are known, and the sweep that kills every other one.

Where the Landlock fallback has no PID namespace ("weak mode"), a command can
escape its call with `(setsid env -i prog &)`: a new session, no run id in its
environment, its parent gone. The agent is therefore a child subreaper
(PR_SET_CHILD_SUBREAPER): every such orphan is re-parented to the agent
instead of init, so it shows up as one of the agent's children. At the end of
each sandbox call, `sweep()` kills every child of the agent that is neither

* a known child: a live process the agent started on purpose and registered
  here while it runs (an in-flight sandbox call, which `batch` runs several of at
  once; a host git process), nor
* in the agent's own session: a command runs in a session of its own and can
  never join another one (setsid only creates sessions, setpgid stays inside
  one), so a child in the agent's session was started by the agent itself.

and repeats until a scan finds none (a victim's own children are re-parented
to the agent as it dies).

Registration happens under the same lock as the scan: a child is registered
before any sweep can see it unregistered (`spawning()`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

_PR_SET_CHILD_SUBREAPER = 36
_LOCK = threading.RLock()
_KNOWN: set[int] = set()
_MAX_ROUNDS = 200


def become_subreaper() -> bool:
    """Orphans of anything below the agent re-parent to it; True when the kernel accepted."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


@contextmanager
def spawning() -> Iterator[Callable[[int], None]]:
    """Start a child inside this block and pass its pid to the callable it yields: no sweep can run in between."""
    with _LOCK:
        yield _KNOWN.add


def forget(pid: int) -> None:
    """The child has been waited for (or is about to be): it is no longer one of the agent's."""
    with _LOCK:
        _KNOWN.discard(pid)


def known() -> frozenset[int]:
    with _LOCK:
        return frozenset(_KNOWN)


def _children_of(agent: int) -> dict[int, int]:
    """{pid: session id} of every process whose parent is `agent`."""
    found: dict[int, int] = {}
    try:
        with open(f"/proc/{agent}/task/{agent}/children", "rb") as handle:
            listed = [int(p) for p in handle.read().split()]
    except OSError:
        listed = None
    if listed is not None:
        # Only the main thread's children are listed there; threads fork too, so read every task.
        try:
            tasks = os.listdir(f"/proc/{agent}/task")
        except OSError:
            tasks = []
        for task in tasks:
            try:
                with open(f"/proc/{agent}/task/{task}/children", "rb") as handle:
                    listed += [int(p) for p in handle.read().split()]
            except OSError:
                continue
        candidates = set(listed)
    else:
        candidates = {int(e) for e in os.listdir("/proc") if e.isdigit()}
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == agent:  # ppid
            found[pid] = int(fields[3])  # session
    return found


def strays() -> list[int]:
    """Children of the agent that are neither known nor in the agent's session."""
    agent = os.getpid()
    own_session = os.getsid(0)
    with _LOCK:
        return [pid for pid, session in _children_of(agent).items()
                if pid not in _KNOWN and session != own_session]


def sweep() -> int:
    """Kill every stray child (see the module's doc) until none is left; how many were killed."""
    killed = 0
    quiet_rounds = 0
    for attempt in range(_MAX_ROUNDS):
        with _LOCK:
            victims = strays()
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
        _reap(victims)
        if not victims:
            quiet_rounds += 1
            if quiet_rounds >= 2:  # two clean scans in a row: nothing was mid-re-parenting
                return killed
        else:
            quiet_rounds = 0
        time.sleep(0.001 if attempt < 20 else 0.01)
    return killed


def _reap(pids: list[int]) -> None:
    """Collect the killed orphans (the agent is their parent now), so no zombie stays behind."""
    for pid in pids:
        for _ in range(100):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.001)
