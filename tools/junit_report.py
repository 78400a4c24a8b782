"""Read a JUnit XML report that a sandboxed test run wrote: carefully, because the run controlled it.

The report sits in a host-made scratch folder, but the command could write
there, so the file it leaves is untrusted: it may be a FIFO (an open would block
forever), a symlink to /dev/zero or to a secret (an endless or foreign read), a
hard link to another file, hundreds of megabytes of captured output, or XML with
entity declarations. So: open with O_NOFOLLOW|O_NONBLOCK, accept a regular file
with one link only, read at most `max_bytes`, parse incrementally (memory stays
about one test case), and stop at a deadline. Anything else is a clear
`ReportUnusable`, never a hang, a crash or a read outside the folder.
"""

from __future__ import annotations

import errno
import os
import stat
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

MAX_REPORT_BYTES = 64 * 2**20
MAX_SECONDS = 10.0
MAX_FAILURES_KEPT = 50
MAX_TEXT_CHARS = 20_000
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
    counts = JUnitCounts()
    parser = ET.XMLPullParser(events=("start", "end"))
    stack: list[ET.Element] = []
    prologue = b""
    started = False
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
                counts.truncated = True
                break
            if not started:  # a DOCTYPE can only come before the first element
                window = prologue + chunk
                if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                    raise ReportUnusable("report refused: it declares a DOCTYPE (entities are never expanded)")
                prologue = window[-16:]
            parser.feed(chunk)
            started = _drain(parser, stack, counts) or started
    except ET.ParseError as exc:
        raise ReportUnusable(f"report is not well-formed XML ({exc})") from None
    finally:
        os.close(fd)
    if not started:
        raise ReportUnusable("report is empty")
    if not counts.truncated:
        try:
            parser.close()
        except ET.ParseError as exc:
            raise ReportUnusable(f"report is not well-formed XML ({exc})") from None
    return counts


def _drain(parser: ET.XMLPullParser, stack: list[ET.Element], counts: JUnitCounts) -> bool:
    """Consume parse events; forget each test case once counted so memory stays flat."""
    started = False
    for event, element in parser.read_events():
        started = True
        if event == "start":
            stack.append(element)
            continue
        stack.pop()
        if element.tag != "testcase":
            if element.tag in ("testsuite", "testsuites") and stack:
                stack[-1].remove(element)
            continue
        _count(element, counts)
        if stack:
            stack[-1].remove(element)
        element.clear()
    return started


def _count(case: ET.Element, counts: JUnitCounts) -> None:
    failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
    if failure is None and error is None:
        if skipped is not None:
            counts.skipped += 1
        else:
            counts.passed += 1
        return
    node = failure if failure is not None else error
    if failure is not None:
        counts.failed += 1
    else:
        counts.errors += 1
    if len(counts.problems) < MAX_FAILURES_KEPT:
        text = (node.text or "").strip()
        counts.problems.append(JUnitCase(
            case.get("name", ""), case.get("classname", ""), case.get("file"), case.get("line"),
            "failure" if failure is not None else "error", (node.get("message") or "").strip()[:500],
            text[-MAX_TEXT_CHARS:]))
