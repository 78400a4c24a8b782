"""The session log: one append-only JSONL file per session, enough to resume it.

Each record is written with a single append and flushed (and fsynced where
losing it would matter), so a crash loses nothing already shown. A tool call is
logged before it runs; on resume a call without a result is reported as
interrupted, never silently re-run. A torn last line (power loss mid-write) is
dropped, not fatal.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


def sessions_dir(env=os.environ) -> Path:
    override = env.get("GPTOSS_AGENT_STATE_DIR")
    if override:
        return Path(override) / "sessions"
    import platformdirs

    return Path(platformdirs.user_state_dir("gptoss-agent")) / "sessions"


class SessionError(RuntimeError):
    """No such session, or its log is unreadable."""


class SessionLog:
    """Appends records to one session's JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.stem
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(path)
        self._handle = open(path, "a", encoding="utf-8")

    @classmethod
    def create(cls, *, repo: str, task: str, config: dict[str, Any], directory: Path | None = None) -> "SessionLog":
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log = cls((directory or sessions_dir()) / f"{stamp}-{uuid.uuid4().hex[:6]}.jsonl")
        log.write("header", repo=repo, task=task, config=config, started=time.time(), durable=True)
        return log

    def write(self, kind: str, *, durable: bool = False, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "t": round(time.time(), 3), **fields}, ensure_ascii=False, default=str)
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
    """A session read back from disk."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_line: bool = False

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def status(self) -> str:
        finished = [r for r in self.records if r["kind"] == "event" and r["event"].get("type") == "run_finished"]
        return finished[-1]["event"]["status"] if finished else "interrupted"

    @property
    def steps(self) -> int:
        return sum(1 for r in self.records if r["kind"] == "step")

    def interrupted_calls(self) -> list[dict[str, Any]]:
        """Tool calls logged as started with no result after them."""
        finished = {r["id"] for r in self.records if r["kind"] == "tool_result"}
        return [r for r in self.records if r["kind"] == "tool_started" and r["id"] not in finished]


def read_session(path: Path) -> SessionRecord:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise SessionError(f"cannot read session {path}: {exc}") from None
    records = []
    torn = False
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if index >= len(lines) - 2:  # only the last line can be torn
                torn = True
                break
            raise SessionError(f"{path}: line {index + 1} is not valid JSON") from None
    if not records or records[0].get("kind") != "header":
        raise SessionError(f"{path}: not a session log")
    return SessionRecord(path, records[0], records[1:], torn)


def list_sessions(directory: Path | None = None) -> Iterator[SessionRecord]:
    directory = directory or sessions_dir()
    for path in sorted(directory.glob("*.jsonl"), reverse=True):
        try:
            yield read_session(path)
        except SessionError:
            continue


def find_session(ident: str | None, directory: Path | None = None) -> SessionRecord:
    """A session by id (or unique prefix); None means the most recent."""
    sessions = list(list_sessions(directory))
    if not sessions:
        raise SessionError("no sessions yet")
    if ident is None:
        return sessions[0]
    matches = [s for s in sessions if s.id.startswith(ident) or s.id.endswith(ident)]
    if len(matches) != 1:
        raise SessionError(f"no session matches {ident!r}" if not matches else f"{ident!r} matches several sessions")
    return matches[0]
