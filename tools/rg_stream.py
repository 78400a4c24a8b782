"""ripgrep's `--json` output read as a stream, in bounded memory, whatever the repository holds.

Why: rg writes one JSON record per matching line, and that record holds the
whole line plus one `{"match":…,"start":S,"end":E}` per submatch (about 45
bytes each). A 16 MB minified line of `a` searched for `a` is a record of
~700 MB; reading all of rg's output and `json.loads`-ing it took gigabytes.
Here each record is read in chunks: a record that fits in RECORD_BYTES is
parsed whole; a longer one keeps its first RECORD_BYTES (the path and the start
of the line's text) and is then scanned, chunk by chunk, for the line number and
the first `keep_spans` submatch offsets, the rest only counted. After `max_records`
match records, the rest are only counted (up to COUNT_CAP, then rg is stopped). rg escapes every `"` inside a JSON string
as `\\"`, so the structural markers scanned for (`},"line_number":`,
`"start":N,"end":N}`) can never be spelled by the file's text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from base64 import b64decode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from gptoss_agent.tools.sandbox.secrets import ENV_ALLOWED

RECORD_BYTES = 2 << 20  # one record kept whole up to this; a longer line is read only this far
CHUNK = 1 << 16
_LINE_NUMBER = re.compile(rb'\},"line_number":(\d{1,18}),')
_SUBMATCH = re.compile(rb'"start":(\d{1,18}),"end":(\d{1,18})\}')
_CARRY = 64  # bytes kept between chunks so a marker cut in two is still found


@dataclass
class MatchRecord:
    path: str
    number: int
    raw: bytes  # the line's bytes (all of them, or the first part of a huge line)
    spans: list[tuple[int, int]]  # byte offsets of the first submatches
    more_matches: int = 0  # submatches beyond those kept


@dataclass
class Streamed:
    records: list[MatchRecord] = field(default_factory=list)
    returncode: int | None = None
    more_records: int = 0  # match records after max_records: counted, not parsed
    stopped: bool = False  # rg was stopped before it finished (COUNT_CAP records, or its time ran out)


def stream_matches(argv: Sequence[str], cwd: Path, keep_spans: int, max_records: int,
                   timeout_s: float = 60.0, memory_bytes: int | None = None) -> Streamed:
    """Run rg and read its match records (see the module's docstring). `memory_bytes` caps rg's address space:
    rg itself gathers every submatch of a line before it writes the line's record (a 16 MB line of matches
    costs it ~1.7 GB), so a run over a big file is bounded and, when it fails, says so (returncode < 0)."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k == "HOME"}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, preexec_fn=limit if memory_bytes else None)
    result = Streamed()
    timer = threading.Timer(timeout_s, process.kill)
    timer.start()
    finished = False
    try:
        for record in _records(process.stdout, keep_spans, lambda: len(result.records) >= max_records):
            if record is _COUNTED:
                result.more_records += 1
                if result.more_records >= COUNT_CAP:
                    break
            elif record is not None:
                result.records.append(record)
        else:
            finished = True  # rg closed its output: it is exiting on its own
    finally:
        if not finished and process.poll() is None:
            process.kill()
            result.stopped = True
        process.stdout.close()
        result.returncode = process.wait()
        timer.cancel()
    if result.returncode == -9 and finished:  # the timer's kill: time ran out
        result.stopped = True
    return result


_COUNTED = object()  # a match record past max_records: only counted
COUNT_CAP = 1_000_000


def _records(stream, keep_spans: int, enough):
    """Each output line as a MatchRecord (None for other record types and for what cannot be read); once
    `enough()` says so, match records are only counted (_COUNTED), never parsed nor kept."""
    head = bytearray()
    long_record: _LongRecord | None = None
    while True:
        chunk = stream.read1(CHUNK) if hasattr(stream, "read1") else stream.read(CHUNK)
        if not chunk:
            break
        position = 0
        while position < len(chunk):
            newline = chunk.find(b"\n", position)
            piece = chunk[position:] if newline < 0 else chunk[position:newline]
            position = len(chunk) if newline < 0 else newline + 1
            if long_record is not None:
                long_record.feed(piece)
            else:
                head += piece
                if len(head) > RECORD_BYTES:
                    match = head.startswith(b'{"type":"match"')
                    long_record = _LongRecord(bytes(head[:RECORD_BYTES]), keep_spans) if match and not enough() \
                        else _LongRecord(b"", 0, skip=True, counted=match)
                    long_record.feed(bytes(head[RECORD_BYTES:]))
                    head = bytearray()
            if newline >= 0:
                if long_record is not None:
                    yield _COUNTED if long_record.counted else long_record.finish()
                elif enough():
                    yield _COUNTED if head.startswith(b'{"type":"match"') else None
                else:
                    yield _whole(bytes(head), keep_spans)
                head, long_record = bytearray(), None


def _whole(line: bytes, keep_spans: int) -> MatchRecord | None:
    if not line.startswith(b'{"type":"match"'):
        return None
    try:
        data = json.loads(line)["data"]
        path = _text(data["path"]).decode("utf-8", errors="replace")
        raw = _text(data["lines"])
        number = int(data["line_number"])
        submatches = data.get("submatches") or []
        spans = [(int(m["start"]), int(m["end"])) for m in submatches[:keep_spans]]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    return MatchRecord(path, number, raw, spans, max(len(submatches) - keep_spans, 0))


def _text(field: dict) -> bytes:
    """The bytes of an rg data field: `text` when they were valid UTF-8, else `bytes` (base64)."""
    if "text" in field:
        return str(field["text"]).encode("utf-8", errors="surrogatepass")
    return b64decode(field["bytes"])


class _LongRecord:
    """A record over RECORD_BYTES: its head kept, the rest scanned for the line number and submatch offsets."""

    def __init__(self, head: bytes, keep_spans: int, skip: bool = False, counted: bool = False):
        self.head, self.keep_spans, self.skip, self.counted = head, keep_spans, skip, counted
        self.carry = b""
        self.number: int | None = None
        self.text_end: int | None = None  # where the line's text ends in the head, when it ends there
        self.spans: list[tuple[int, int]] = []
        self.more = 0
        if not skip:
            self.feed(b"", first=head)

    def feed(self, piece: bytes, first: bytes | None = None) -> None:
        if self.skip:
            return
        data = first if first is not None else self.carry + piece
        position = 0
        if self.number is None:
            found = _LINE_NUMBER.search(data)
            if found is None:
                self.carry = data[-_CARRY:]
                return
            self.number = int(found.group(1))
            if first is not None:
                self.text_end = found.start()
            position = found.end()
        last = position
        for found in _SUBMATCH.finditer(data, position):
            if len(self.spans) < self.keep_spans:
                self.spans.append((int(found.group(1)), int(found.group(2))))
            else:
                self.more += 1
            last = found.end()
        self.carry = data[max(last, len(data) - _CARRY):]

    def finish(self) -> MatchRecord | None:
        if self.skip or self.number is None:
            return None
        path = re.match(rb'\{"type":"match","data":\{"path":\{"(text|bytes)":"((?:[^"\\]|\\.)*)"\},"lines":\{"'
                        rb'(text|bytes)":"', self.head)
        if path is None:
            return None
        try:
            name = _partial(path.group(1), path.group(2)).decode("utf-8", errors="replace")
        except ValueError:
            return None
        body = self.head[path.end():self.text_end - 1 if self.text_end is not None else len(self.head)]
        raw = _partial(path.group(3), body)
        return MatchRecord(name, self.number, raw, self.spans, self.more)


def _partial(kind: bytes, body: bytes) -> bytes:
    """A JSON string's body (perhaps cut anywhere) as the bytes it stands for, up to the last whole escape."""
    if kind == b"bytes":
        body = body[:len(body) - len(body) % 4]
        return b64decode(body)
    for cut in range(0, 7):
        try:
            return json.loads(b'"' + body[:len(body) - cut] + b'"').encode("utf-8", errors="surrogatepass")
        except ValueError:
            continue
    return b""
