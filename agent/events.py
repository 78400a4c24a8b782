"""Agent events: what the loop reports as it works. The TUI renders them, the CLI prints them
as JSONL, the session log stores them, tests collect them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal, get_args

# How a run ended: the loop decides it, `run_finished` carries it, the exit code and the editor's stop reason follow.
RunStatus = Literal["completed", "failed", "max_steps", "cancelled", "error"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)


@dataclass(frozen=True)
class AgentEvent:
    type = "event"
    printed = True  # `--json` prints it on stdout (README, "JSONL events"); False: the TUI and the log only

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(AgentEvent):
    type = "run_started"
    task: str
    cwd: str
    model: str
    backend: str
    session: str = ""


@dataclass(frozen=True)
class PlanUpdated(AgentEvent):
    type = "plan"
    steps: list[dict[str, Any]] = field(default_factory=list)
    explanation: str | None = None


@dataclass(frozen=True)
class MessageEmitted(AgentEvent):
    """A commentary preamble or the final answer."""

    type = "message"
    channel: str
    text: str


@dataclass(frozen=True)
class ReasoningEmitted(AgentEvent):
    type = "reasoning"
    text: str


@dataclass(frozen=True)
class TextStreamed(AgentEvent):
    """A piece of text as it is sampled (the TUI streams it; JSONL output leaves it out)."""

    type = "delta"
    printed = False
    channel: str | None
    text: str


@dataclass(frozen=True)
class ToolCalled(AgentEvent):
    type = "tool_call"
    id: str
    name: str
    arguments: Any


def key_argument(arguments: Any, width: int = 60) -> str:
    """The one argument that says what a tool call is about (path, command, query …), on one line."""
    if isinstance(arguments, dict):
        for key in ("path", "cmd", "query", "message", "paths", "name"):
            if key in arguments:
                value = arguments[key]
                return (" ".join(map(str, value)) if isinstance(value, list) else str(value)).split("\n")[0][:width]
        return ""
    return str(arguments).split("\n")[0][:width]


@dataclass(frozen=True)
class ToolFinished(AgentEvent):
    type = "tool_result"
    id: str
    name: str
    ok: bool
    output: str
    truncated: bool = False
    display: str | None = None


@dataclass(frozen=True)
class TestsReported(AgentEvent):
    """A test run's outcome. `results` is "unknown" when no runner's summary was recognised (the counts
    then say nothing); `timed_out` with `running`, the test that was running when time ran out."""

    __test__ = False  # not a pytest test class, despite the name
    type = "tests"
    passed: int
    failed: int
    errors: int
    failing: list[str] = field(default_factory=list)
    timed_out: bool = False
    results: str = "parsed"
    running: str | None = None

    @classmethod
    def from_report(cls, report: Any) -> "TestsReported":
        """From a tools.tests.TestReport (duck-typed: events import nothing from tools)."""
        return cls(report.passed, report.failed, report.errors, list(report.failing_ids),
                   bool(getattr(report, "timed_out", False)), getattr(report, "results", "parsed"),
                   getattr(report, "running", None))


@dataclass(frozen=True)
class Committed(AgentEvent):
    type = "commit"
    sha: str
    message: str


@dataclass(frozen=True)
class Notice(AgentEvent):
    """Something the user should know that is not an error (a repair, a loaded model, a compaction)."""

    type = "notice"
    printed = False  # to stderr: a note for the person, not part of the stream
    text: str


@dataclass(frozen=True)
class ErrorRaised(AgentEvent):
    type = "error"
    message: str


@dataclass(frozen=True)
class StepFinished(AgentEvent):
    """Per-step model statistics (the status bar's tokens/s and cache reuse)."""

    type = "step"
    printed = False
    step: int
    prompt_tokens: int
    cached_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    tokens_per_second: float


@dataclass(frozen=True)
class RunFinished(AgentEvent):
    type = "run_finished"
    status: RunStatus
    steps: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class AttemptFinished(AgentEvent):
    """One attempt of `fix` ended: what the agent's run ended with, then what the test suite said.

    status: passed (the suite is green after it) | failed (it still fails) | max_steps | cancelled | error.
    `fix` ends with exactly one `run_finished` after its last attempt.
    """

    type = "attempt_finished"
    attempt: int
    status: str
    steps: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    seconds: float
    reason: str = ""


EventSink = Callable[[AgentEvent], None]
"""Where the agent sends its events: the TUI posts a message, the CLI prints JSONL, tests append."""


def printed_types() -> frozenset[str]:
    """Every type `--json` can print on stdout, derived from the event classes (their `type` and `printed`)."""
    found, pending = set(), [AgentEvent]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls is not AgentEvent and cls.printed:
            found.add(cls.type)
    return frozenset(found)
