"""Commit messages a reviewer can read: a short subject, a body with the test result, the trailer (pure)."""

from __future__ import annotations

import re

SUBJECT_LIMIT = 72
TRAILER = "Co-authored-by: gptoss-agent <gptoss-agent@localhost>"
DEFAULT_SUBJECT = "Changes by gptoss-agent"

_MARKUP_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+]\s+|>\s*|\d+[.)]\s+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# In the body a newline ends a line and a tab indents it; every other control character is neutralised.
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_PAIRED = ("`", "**", "~~")  # single * and _ are too common in code names to police


def subject_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """The first meaningful line of `text`, without Markdown decoration, cut on a word boundary to `limit`."""
    line = next((raw.strip() for raw in (text or "").splitlines() if _plain(raw.strip())), "")
    line = _plain(line)
    if len(line) > limit:
        cut = line[: limit + 1]
        line = cut[: cut.rfind(" ")] if " " in cut[: limit + 1] else line[:limit]
        line = line.rstrip(" ,;:-(")
    line = _balance(line).rstrip(" .")
    return line or DEFAULT_SUBJECT


def prefixed_subject(prefix: str, text: str) -> str:
    """`prefix` plus a summary of `text` (its first meaningful line), the whole within SUBJECT_LIMIT."""
    first = next((_plain(raw) for raw in (text or "").splitlines() if _plain(raw)), "")
    if not first:
        return prefix.rstrip(" :")
    return prefix + subject_line(first, SUBJECT_LIMIT - len(prefix))


def compose(proposed: str, *, tests: str | None = None, details: str = "") -> str:
    """Subject from the proposal (or the details), a body with the rest and the test result, then the trailer."""
    source = proposed if (proposed or "").strip() else details
    subject = subject_line(source)
    body_lines = [line.rstrip() for line in (source or "").splitlines()[1:]] if (proposed or "").strip() else []
    body = _BODY_CONTROL.sub("", "\n".join(body_lines)).strip("\n")
    if TRAILER in body:
        body = body.replace(TRAILER, "").strip()
    parts = [subject]
    if body:
        parts.append(body)
    if tests:
        parts.append(f"Tests: {_CONTROL.sub('', tests).strip()}")
    parts.append(TRAILER)
    return "\n\n".join(parts) + "\n"


def _plain(line: str) -> str:
    line = _CONTROL.sub("", line)
    line = _MARKUP_PREFIX.sub("", line).strip()
    return re.sub(r"\s+", " ", line)


def _balance(line: str) -> str:
    """Drop Markdown emphasis and code marks that would be left open (a cut, or a model's typo)."""
    for mark in _PAIRED:
        if line.count(mark) % 2:
            index = line.rfind(mark)
            line = (line[:index] + line[index + len(mark):]).replace("  ", " ")
    return line.strip()
