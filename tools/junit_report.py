"""Read a JUnit XML report that a sandboxed test run wrote: carefully, because the run controlled it.

The report sits in a host-made scratch folder, but the command could write
there, so the file it leaves is untrusted: it may be a FIFO (an open would block
forever), a symlink to /dev/zero or to a secret (an endless or foreign read), a
hard link to another file, hundreds of megabytes of captured output, or XML with
entity declarations. So: open with O_NOFOLLOW|O_NONBLOCK, accept a regular file
with one link only, read at most `max_bytes`, parse incrementally with expat
(memory stays about one test case), and stop at a deadline. Anything else is a clear
`ReportUnusable`, never a hang, a crash or a read outside the folder.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

MAX_REPORT_BYTES = 32 * 2**20
MAX_SECONDS = 10.0
MAX_FAILURES_KEPT = 50
MAX_TEXT_CHARS = 20_000
MAX_NAME_CHARS = 1_000  # a test's name or class as the report gives it (1.5 MB names made 30 MB event lines)
MAX_PATH_CHARS = 4_096
_LINE_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is True and int() refuses it
_CHUNK = 1 << 20


class ReportUnusable(Exception):
    """The report cannot be trusted or read; the message says why in a user's words."""


@dataclass(frozen=True)
class JUnitCase:
    """One failing or erroring test case as the report describes it (all text is untrusted)."""

    name: str
    classname: str
    file: str | None
    line: str | None
    kind: str  # "failure" or "error"
    message: str
    text: str


@dataclass
class JUnitCounts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    problems: list[JUnitCase] = field(default_factory=list)
    truncated: bool = False  # the report was bigger than the cap: counts cover only what was read


def _capped(text: str | None, cap: int = MAX_NAME_CHARS) -> str | None:
    """A name the report chose, at most `cap` characters (the cut said), so every event and log line is bounded."""
    if text is None or len(text) <= cap:
        return text
    return text[:cap] + f"…[+{len(text) - cap} chars]"


def _line(text: str | None) -> str | None:
    """The report's `line` attribute when it is a plain number (ASCII digits, at most 9), else None."""
    return text if text is not None and _LINE_NUMBER.fullmatch(text) else None


def open_untrusted(folder: Path, name: str) -> int:
    """A read-only descriptor for `folder/name`, refusing links and special files; ReportUnusable otherwise."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ReportUnusable(f"report folder unreadable: {exc.strerror}") from None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=dir_fd)
    except FileNotFoundError:
        raise ReportUnusable("the test run wrote no report") from None
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise ReportUnusable(f"report refused: {reason}") from None
    finally:
        os.close(dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "a hard link to another file" if stat.S_ISREG(info.st_mode) else "not a regular file"
        raise ReportUnusable(f"report refused: {what}")
    return fd


def read_junit(folder: Path, name: str, *, max_bytes: int = MAX_REPORT_BYTES,
               max_seconds: float = MAX_SECONDS) -> JUnitCounts:
    """Counts and failing cases from a JUnit XML report, streamed within a byte and a time budget."""
    fd = open_untrusted(folder, name)
    deadline = time.monotonic() + max_seconds
    reader = _CaseReader()
    read = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise ReportUnusable(f"report took longer than {max_seconds:g}s to read")
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - read))
            if not chunk:
                break
            read += len(chunk)
            if read > max_bytes:
                reader.counts.truncated = True
                break
            reader.feed(chunk)
        if not reader.started:
            raise ReportUnusable("report is empty" if read == 0 else "report has no XML element")
        if not reader.counts.truncated:
            reader.feed(b"", final=True)
    except expat.ExpatError as exc:
        raise ReportUnusable(f"report is not well-formed XML ({expat.ErrorString(exc.code)}, "
                             f"line {exc.lineno})") from None
    finally:
        os.close(fd)
    return reader.counts


class _CaseReader:
    """An expat state machine: no tree is built, so memory is one test case's capped text at most.

    A DOCTYPE or entity declaration ends the read: pytest never writes one, and
    refusing them rules out entity expansion however the XML library is built.
    """

    def __init__(self) -> None:
        self.counts = JUnitCounts()
        self.started = False
        self._parser = expat.ParserCreate()
        self._parser.buffer_text = True
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartDoctypeDeclHandler = self._refuse_doctype
        self._parser.EntityDeclHandler = self._refuse_doctype
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = None  # set only inside a failure: whitespace between cases costs calls
        self._case: dict[str, str] | None = None
        self._problem: tuple[str, str] | None = None  # (kind, message) of the case's failure or error
        self._skipped = False
        self._text_parts: list[str] = []
        self._text_size = 0

    def feed(self, data: bytes, final: bool = False) -> None:
        self._parser.Parse(data, final)

    def _refuse_doctype(self, *_args) -> None:
        raise ReportUnusable("report refused: it declares a DOCTYPE or entities (never expanded)")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        self.started = True
        if tag == "testcase":
            self._case, self._problem, self._skipped = attributes, None, False
            self._text_parts, self._text_size = [], 0
        elif self._case is not None and tag in ("failure", "error") and self._problem is None:
            self._problem = (tag, (attributes.get("message") or "").strip()[:500])
            self._parser.CharacterDataHandler = self._text
        elif self._case is not None and tag == "skipped":
            self._skipped = True

    def _text(self, data: str) -> None:
        self._text_parts.append(data)
        self._text_size += len(data)
        if self._text_size > 2 * MAX_TEXT_CHARS:  # keep the tail: a traceback ends where it failed
            joined = "".join(self._text_parts)[-MAX_TEXT_CHARS:]
            self._text_parts, self._text_size = [joined], len(joined)

    def _end(self, tag: str) -> None:
        if tag in ("failure", "error"):
            self._parser.CharacterDataHandler = None
        if tag != "testcase" or self._case is None:
            return
        case, counts = self._case, self.counts
        self._case = None
        if self._problem is None:
            if self._skipped:
                counts.skipped += 1
            else:
                counts.passed += 1
            return
        kind, message = self._problem
        if kind == "failure":
            counts.failed += 1
        else:
            counts.errors += 1
        if len(counts.problems) < MAX_FAILURES_KEPT:
            text = "".join(self._text_parts).strip()[-MAX_TEXT_CHARS:]
            counts.problems.append(JUnitCase(_capped(case.get("name", "")), _capped(case.get("classname", "")),
                                             _capped(case.get("file"), MAX_PATH_CHARS), _line(case.get("line")),
                                             kind, message, text))
