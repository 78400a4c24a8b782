"""What every tool call can see: the workspace, the sandbox, and what the agent has changed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gptoss_agent.tools.registry import ToolError
from gptoss_agent.tools.sandbox import Sandbox


class ToolEmitter:
    """How a tool tells the people watching what it did (a plan, a test count, a commit), as Codex's ToolEmitter.

    The tool says it; the agent delivers it to its sinks right after the call's
    own result, so the TUI, the JSONL printer and the session log all see one
    order, and the loop never needs to know which tool reports what. Outside
    the loop (a tool called directly) nobody collects them.
    """

    def __init__(self) -> None:
        self._events: list[Any] = []

    def emit(self, event: Any) -> None:
        """Report an agent event (agent/events.py) about this call."""
        self._events.append(event)

    def take(self) -> list[Any]:
        """What was reported since the last take, oldest first."""
        events, self._events = self._events, []
        return events


@dataclass
class FileChange:
    """One file the agent wrote: its content before the agent first touched it, and after."""

    before: bytes | None  # None: the file did not exist
    after: bytes | None  # None: the agent deleted it
    before_last: bytes | None = None  # the content right before the agent's latest write
    user_between: bool = False  # someone else changed the file between two of the agent's writes: both touched it
    by_command: bool = False  # a command's write: what anyone else wrote to it while the command ran is included


@dataclass
class ToolContext:
    """Per-session state the tools share; the loop owns it and passes it to every call."""

    workspace: Path
    sandbox: Sandbox | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    test_command: str | None = None
    test_timeout_s: float | None = None  # the whole suite's limit (None: run_tests' default)
    count_tokens: Callable[[str], int] = lambda text: len(text) // 4 + 1
    changes: dict[str, FileChange] = field(default_factory=dict)  # relative path → change
    baseline_dirty: frozenset[str] = frozenset()  # paths the user had modified before the session
    ignored_at_start: frozenset[str] | None = None  # what .gitignore excluded at session start (folders end in '/')
    agent_commits: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)  # facts about the project learnt once (has pytest?)
    emitter: ToolEmitter = field(default_factory=ToolEmitter)  # the loop gives each call its own

    def require_sandbox(self) -> Sandbox:
        """The sandbox every command runs in; without one (tools only, no commands) a ToolError says so."""
        if self.sandbox is None:
            raise ToolError("commands are disabled in this session")
        return self.sandbox

    def record_write(self, relative: str, before: bytes | None, after: bytes | None) -> None:
        """Remember the original content the first time the agent touches a file, and whether others wrote since."""
        change = self.changes.get(relative)
        if change is None:
            self.changes[relative] = FileChange(before, after, before_last=before)
            return
        if before != change.after:  # the file no longer held what the agent left: someone else edited it
            change.user_between = True
        change.after, change.before_last = after, before
