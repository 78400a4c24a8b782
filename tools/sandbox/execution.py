"""Starting one wrapped command and supervising it: output read until it closes or the command exits,
the timeout and cancellation, the leftovers killed, and what it did as a CommandResult."""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gptoss_agent.tools.sandbox import agent_children
from gptoss_agent.tools.sandbox.detect import Mechanism
from gptoss_agent.tools.sandbox.limits import Limits, PidsCgroup, limited
from gptoss_agent.tools.sandbox.output import CappedOutput
from gptoss_agent.tools.sandbox.processes import end_leftovers


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


def execute(command: list[str], *, cwd: Path, env: dict[str, str], pass_fds, timeout: float,
             cancel: threading.Event | None, limits: Limits, argv: tuple[str, ...],
             mechanism: Mechanism, sweep: bool) -> CommandResult:
    """Start the wrapped `command` in its own session and pids cgroup, under its rlimits, and supervise it
    to the end; `sweep` also hunts its strays by run id where no PID namespace ends them."""
    started = time.monotonic()
    cgroup = PidsCgroup(limits.processes)
    try:
        with agent_children.spawning() as register:  # a concurrent call's sweep must not take it for a stray
            process = subprocess.Popen(limited(command, limits, cgroup), cwd=cwd, env=env,
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


def _supervise(process: subprocess.Popen, cgroup: PidsCgroup, started: float, *, env: dict[str, str],
               timeout: float, cancel: threading.Event | None, limits: Limits, argv: tuple[str, ...],
               mechanism: Mechanism, sweep: bool) -> CommandResult:
    """Read output until the command ends, then kill whatever it left behind.

    The command has ended when its output closes or its own process exits: a
    background child holding the pipe open does not keep the call (or itself) alive."""
    capture = CappedOutput(limits.output_bytes)
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
            end_leftovers(process, cgroup, env, sweep)
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
        end_leftovers(process, cgroup, env, True)
    elif exited_at is None:
        end_leftovers(process, cgroup, env, sweep)
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
