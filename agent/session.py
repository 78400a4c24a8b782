"""The session log: one append-only JSONL file per session, enough to resume it.

Each record is written with a single append and flushed (and fsynced where
losing it would matter), so a crash loses nothing already shown. A tool call is
logged before it runs; on resume a call without a result is reported as
interrupted, never silently re-run. A torn last line (power loss mid-write) is
dropped, not fatal. Read back, a log is data like any other file: a record
that does not fit the schema is skipped with a warning naming the file and the
line, and nothing in it is authority (the repository it names must be the
current one; a recorded commit is checked against git before any undo).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from gptoss_agent.agent.conversation import Conversation, Segment, Span
from gptoss_agent.agent.locations import sessions_dir


class SessionError(RuntimeError):
    """No such session, or its log is unreadable."""


class SessionLog:
    """Appends records to one session's JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.stem
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _drop_torn_tail(path)
        # Private (a log holds the repository's code and the model's output); never written through a link.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._handle = os.fdopen(fd, "a", encoding="utf-8")

    @classmethod
    def create(cls, *, repo: str, task: str, config: dict[str, Any], directory: Path | None = None) -> "SessionLog":
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log = cls((directory or sessions_dir()) / f"{stamp}-{uuid.uuid4().hex[:6]}.jsonl")
        log.write("header", repo=repo, task=task, config=config, started=time.time(), durable=True)
        return log

    def write(self, kind: str, *, durable: bool = False, **fields: Any) -> None:
        # ASCII escapes: any str is written, a lone surrogate from the model included (UTF-8 cannot encode it)
        line = json.dumps({"kind": kind, "t": round(time.time(), 3), **fields}, ensure_ascii=True, default=str)
        self._handle.write(line + "\n")
        self._handle.flush()
        if durable:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left half-written, so appending after it stays valid JSONL."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        data = handle.seek(0) or handle.read()
        handle.truncate(data.rfind(b"\n") + 1)


@dataclass
class SessionRecord:
    """A session read back from disk. The log is data: records that do not fit the schema are skipped."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_line: bool = False
    warnings: list[str] = field(default_factory=list)  # "FILE line N: why it was skipped"

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def repo(self) -> str:
        return self.header["repo"]

    @property
    def damaged(self) -> bool:
        """Records were skipped (a torn last line alone is not damage: it is what a crash leaves)."""
        return bool(self.warnings)

    @property
    def status(self) -> str:
        finished = [r for r in self.records if r["kind"] == "event" and r["event"]["type"] == "run_finished"]
        status = finished[-1]["event"].get("status") if finished else None
        return status if isinstance(status, str) and status else "interrupted"

    @property
    def steps(self) -> int:
        return sum(1 for r in self.records if r["kind"] == "step")

    def interrupted_calls(self) -> list[dict[str, Any]]:
        """Tool calls logged as started with no result after them.

        Paired in log order, not by id alone: a log written before resumed runs
        went on numbering may use an id twice (call_1 again after a resume), and
        a result that came before a start is not that start's result.
        """
        pending: dict[str, dict[str, Any]] = {}
        for r in self.records:
            if r["kind"] == "tool_started":
                pending[r["id"]] = r
            elif r["kind"] == "tool_result":
                pending.pop(r["id"], None)
        return list(pending.values())

    def last_call_number(self) -> int:
        """The highest `call_N` the log names, so that a resumed run goes on numbering after it."""
        numbers = [int(r["id"][5:]) for r in self.records if r["kind"] in ("tool_started", "tool_result")
                   and r["id"].startswith("call_") and r["id"][5:].isdigit() and len(r["id"]) < 16]
        return max(numbers, default=0)


# Each kind of record the code reads back, with the fields it relies on and their types.
_SCHEMA: dict[str, dict[str, Any]] = {
    "header": {"repo": str, "task": str},
    "segment": {"segment": str, "tokens": list, "turn": int},
    "turn_finished": {"turn": int},
    "event": {"event": dict},
    "tool_started": {"id": str, "name": str},
    "tool_result": {"id": str, "name": str},
    "reasoning": {"effort": str},
    "last_tests": {"text": str},
    "resumed": {"session": str, "plan": list, "commits": list},
}


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)


def _span(value: Any) -> bool:
    """[start, end, channel, is_tool_call], as Span takes them: slicing with anything else would crash a prompt."""
    return (isinstance(value, list) and len(value) == 4 and _token_ids(value[:2])
            and (value[2] is None or isinstance(value[2], str)) and isinstance(value[3], bool))


def _plan_steps(value: Any) -> bool:
    """A plan as the compaction notice and the plan panel read it: steps with a text and a status."""
    return isinstance(value, list) and all(
        isinstance(p, dict) and isinstance(p.get("step"), str) and isinstance(p.get("status"), str) for p in value)


def _schema_problem(record: Any) -> str | None:
    """Why a parsed line cannot be used, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    kind = record.get("kind")
    if not isinstance(kind, str):
        return "no 'kind'"
    for name, kind_type in _SCHEMA.get(kind, {}).items():
        if not isinstance(record.get(name), kind_type) or isinstance(record.get(name), bool):
            return f"{kind} record without a valid {name!r}"
    if kind == "header" and ("\0" in record["repo"] or not os.path.isabs(record["repo"])):
        return "a header whose repository is not an absolute path"  # a NUL would crash every path call on it
    if kind == "segment":
        if not _token_ids(record["tokens"]):
            return "segment with tokens that are not token ids"
        spans = record.get("spans", [])
        if not isinstance(spans, list) or not all(_span(x) for x in spans):
            return "segment with malformed spans"
    if kind == "reasoning" and "tokens" in record and not _token_ids(record["tokens"]):
        return "reasoning record with tokens that are not token ids"
    if kind == "resumed" and not (_plan_steps(record["plan"]) and all(isinstance(c, str) for c in record["commits"])):
        return "resumed record with a malformed plan or commits"
    if kind == "event" and not isinstance(record["event"].get("type"), str):
        return "event without a type"
    if kind == "event" and record["event"]["type"] == "commit" and not isinstance(record["event"].get("sha"), str):
        return "commit event without a valid 'sha'"
    if kind == "event" and record["event"]["type"] == "plan" and not _plan_steps(record["event"].get("steps")):
        return "plan event without valid 'steps'"
    return None


def read_session(path: Path, *, max_bytes: int = 256 * 1024 * 1024) -> SessionRecord:
    """Read a log; lines that are not valid records are skipped with a warning naming the file and line.

    Raises SessionError only when there is nothing to resume (unreadable, or no valid header).
    """
    try:
        if path.is_symlink() or not path.is_file():
            raise SessionError(f"{path}: not a regular file")
        if path.stat().st_size > max_bytes:
            raise SessionError(f"{path}: larger than {max_bytes} bytes")
        lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    except OSError as exc:
        raise SessionError(f"cannot read session {path}: {exc}") from None
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    torn = False
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            problem = _schema_problem(record)
        except (ValueError, RecursionError):  # ValueError: also an integer too long to convert
            if index == last and index == len(lines) - 1:  # no newline after it: cut off mid-write
                torn = True
                continue
            record, problem = None, "not valid JSON"
        if problem is None and (record["kind"] == "header") != (not records):
            problem = "a header that is not the first record" if records else "the first record is not a header"
        if problem is not None:
            warnings.append(f"{path} line {index + 1}: skipped ({problem})")
            if not records:
                raise SessionError(f"{path}: damaged, line {index + 1} should be the session header ({problem})")
            continue
        records.append(record)
    if not records:
        raise SessionError(f"{path}: not a session log (empty)")
    return SessionRecord(path, records[0], records[1:], torn, warnings)


@dataclass
class RestoredState:
    """What a log rebuilds: the conversation exactly as it was live, and the agent state kept beside it."""

    conversation: Conversation
    plan: list[dict[str, Any]] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    last_tests: str = ""


def rebuild(records: list[dict[str, Any]], codec) -> RestoredState:
    """Replay a log's records (already checked against the schema) into the state they describe.

    The records mirror every way the live conversation changes, in order:
    `segment` appends what entered it; `turn_finished` marks a turn ended by a
    final answer (its reasoning leaves later prompts); `reset_segments` is a
    compaction (the kept and new segments follow); `cleared` is /clear (a new
    conversation, plan and test results forgotten); `reasoning` replaces the
    system message with the tokens it was re-rendered to; `resumed` is /resume
    of another session, whose state follows in full, so this log never depends
    on another file staying as it was.
    """
    state = RestoredState(Conversation(codec))
    for entry in records:
        kind = entry["kind"]
        conversation = state.conversation
        if kind == "cleared":
            state.conversation, state.plan, state.last_tests = Conversation(codec), [], ""
        elif kind == "reset_segments":
            conversation.segments.clear()
        elif kind == "segment":
            spans = tuple(Span(*s) for s in entry.get("spans", []))
            conversation.segments.append(Segment(entry["segment"], list(entry["tokens"]), entry["turn"], spans))
            conversation.turn = max(conversation.turn, entry["turn"])
        elif kind == "turn_finished":
            conversation.finished_turns.add(entry["turn"])
        elif kind == "reasoning" and "tokens" in entry and conversation.segments:
            conversation.segments[0] = Segment("system", list(entry["tokens"]), conversation.segments[0].turn)
        elif kind == "last_tests":
            state.last_tests = entry["text"]
        elif kind == "resumed":
            state.plan = list(entry["plan"])
            state.commits.extend(entry["commits"])
        elif kind == "event" and entry["event"]["type"] == "commit":
            state.commits.append(entry["event"]["sha"])
        elif kind == "event" and entry["event"]["type"] == "plan":
            state.plan = entry["event"]["steps"]
    return state


def _same_repo(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def scan_sessions(directory: Path | None = None, *, repo: str | None = None) -> tuple[list[SessionRecord], list[str]]:
    """Every readable session (newest first), only `repo`'s when given, and a line per log that was skipped."""
    directory = directory or sessions_dir()
    found: list[SessionRecord] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.jsonl"), reverse=True):
        try:
            record = read_session(path)
        except SessionError as exc:
            problems.append(f"skipped {exc}")
            continue
        if repo is None or _same_repo(record.repo, repo):
            found.append(record)
    return found, problems


def list_sessions(directory: Path | None = None, *, repo: str | None = None) -> Iterator[SessionRecord]:
    """Readable sessions, newest first (only `repo`'s when given)."""
    yield from scan_sessions(directory, repo=repo)[0]


def find_session(ident: str | None, directory: Path | None = None, *, repo: str | None = None,
                 exclude: str | None = None) -> SessionRecord:
    """The session to resume: by id (or unique prefix/suffix), or None for the most recent one but `exclude`.

    With `repo`, only that repository's sessions qualify: a log naming another
    repository is refused, not followed there. A log that cannot be read, or
    whose records were damaged, is refused saying so (never "no such session").
    """
    directory = directory or sessions_dir()
    if ident is None:
        sessions = [s for s in list_sessions(directory, repo=repo) if s.id != exclude]
        if not sessions:
            raise SessionError("no sessions yet" + (f" in {repo} (`gptoss-agent sessions --all` lists every "
                                                    "repository's)" if repo else ""))
        record = sessions[0]
    else:
        paths = [p for p in sorted(directory.glob("*.jsonl")) if p.stem.startswith(ident) or p.stem.endswith(ident)]
        if len(paths) != 1:
            raise SessionError(f"no session matches {ident!r}" if not paths else f"{ident!r} matches several sessions")
        record = read_session(paths[0])
    if repo is not None and not _same_repo(record.repo, repo):
        raise WrongRepository(record, repo)
    if record.damaged:
        raise SessionError(f"session {record.id}'s log is damaged, so it cannot be resumed faithfully: "
                           + "; ".join(record.warnings[:3]) + (" …" if len(record.warnings) > 3 else ""))
    return record


class WrongRepository(SessionError):
    """The log was recorded in another repository than the current one."""

    def __init__(self, record: SessionRecord, current: str) -> None:
        self.record = record
        super().__init__(f"session {record.id} was recorded in {record.repo}, not in {current}")
