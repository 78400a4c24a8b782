"""apply_patch in the gpt-oss patch format: exact, or refused with the closest text.

```
*** Begin Patch
*** Update File: src/app.py
*** Move to: src/main.py          (optional)
@@ def handler(request):          (optional anchor; or a unified header @@ -12,7 +12,8 @@)
 context
-old line
+new line
*** End of File                   (optional: the hunk ends the file)
*** Add File: docs/notes.md
+text
*** Delete File: old.py
*** End Patch
```

`parse_patch`, `normalise_paths` and `apply_patch` are pure: reading files and
checking syntax are injected. What the engine promises:

- The file's own lines are never replaced by the patch's context. A hunk whose
  context matches only after normalising whitespace (trailing spaces, indentation
  short or long, tabs for spaces, blank lines left out) keeps the file's context
  and re-indents the added lines by the offset the match needed, in the file's
  own style; when that offset is not one consistent shift the hunk is refused.
- A hunk applies at one place or not at all: context that matches at several
  places is resolved by the End-of-File marker or a unified header's line
  number, otherwise refused with the places listed.
- Every hunk is located against the original file, the search for each starting
  where the previous one matched, through an index of the file's lines built
  once; the new text is assembled in one pass. Work is linear in the number of
  hunks (a 10,000-hunk patch costs about what its size costs).
- If any hunk fails, or the optional check reports a new syntax error, nothing
  is written; the error names the file, the hunk, the closest text and a short
  diff of expected against found.
- The outcome says how each hunk matched: exact, whitespace, eof or line-hint.
"""

from __future__ import annotations

import bisect
import difflib
import posixpath
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal

BEGIN, END = "*** Begin Patch", "*** End Patch"
ADD, UPDATE, DELETE, MOVE, EOF_MARK = "*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: ", "*** End of File"
_UNIFIED_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@+ ?(.*)$")
_FENCE = re.compile(r"^(```|~~~)")  # at column 0: an indented one is a context line of a Markdown file
_MAX_CANDIDATES = 64  # verified places one hunk may match; more is ambiguous whatever the hint says
_MAX_OCCURRENCES = 20_000  # index entries scanned for one hunk; bounds hostile files of identical lines
_WORK_PER_LINE = 50  # line comparisons allowed per line of file and patch: linear, whatever the input
_CLOSEST_LINES = 40  # the refusal's "closest text" compares at most this many lines
_TAB_WIDTHS = (4, 8, 2)

SyntaxCheck = Callable[[str, "str | None", str], "str | None"]


class PatchError(ValueError):
    """The patch cannot be parsed or applied; the message is written for the model."""


@dataclass(frozen=True)
class Chunk:
    """One hunk: its lines in order as (tag, text), tag one of ' ', '-', '+'."""

    anchor: str | None
    lines: tuple[tuple[str, str], ...]
    at_eof: bool = False
    hint: int | None = None  # 1-based first old line from a unified header
    section: str | None = None  # the text after a unified header: a soft anchor

    @property
    def old(self) -> tuple[str, ...]:
        return tuple(text for tag, text in self.lines if tag != "+")

    @property
    def new(self) -> tuple[str, ...]:
        return tuple(text for tag, text in self.lines if tag != "-")


@dataclass(frozen=True)
class FileOp:
    kind: Literal["add", "update", "delete"]
    path: str
    move_to: str | None = None
    chunks: tuple[Chunk, ...] = ()
    content: str = ""


@dataclass(frozen=True)
class HunkReport:
    """How one hunk matched: `fuzz` is exact, whitespace, eof or line-hint; `detail` says what differed."""

    path: str
    number: int
    line: int  # 1-based line of the original file where the hunk applied
    fuzz: str
    detail: str = ""


@dataclass
class PatchOutcome:
    """What applying did: per-file new contents (None = removed), a summary, a unified diff, per-hunk fuzz."""

    writes: dict[str, str | None] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    diff: str = ""
    added_lines: int = 0
    removed_lines: int = 0
    hunks: list[HunkReport] = field(default_factory=list)
    work: int = 0  # line comparisons spent locating hunks: grows with file and patch size, never their product

    def fuzzy_hunks(self) -> list[HunkReport]:
        """The hunks that did not match exactly: what a model or a person should double-check."""
        return [h for h in self.hunks if h.fuzz != "exact"]


# ---------------------------------------------------------------------- parsing

def parse_patch(text: str) -> list[FileOp]:
    """Parse the patch text; tolerant of prose and code fences around it and of a missing End Patch."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == BEGIN), None)
    if start is None:
        # A patch that forgot its Begin line but starts a file section is still unambiguous; so is a plain
        # unified diff (--- / +++ / @@), which is translated section by section.
        start = next((i - 1 for i, line in enumerate(lines) if _is_file_header(line)), None)
        if start is None:
            lines = _from_unified_diff(lines)
            start = -1
        if not lines:
            raise PatchError(f"the patch must start with '{BEGIN}' and end with '{END}'")
    body = lines[start + 1:]
    end = next((i for i, line in enumerate(body) if line.strip() == END), None)
    if end is None:  # no End Patch: a closing code fence ends the patch (prose may follow it)
        end = next((i for i, line in enumerate(body) if _FENCE.match(line)), len(body))
    body = body[:end]
    while body and (not body[-1].strip() or _FENCE.match(body[-1])):
        body.pop()
    ops: list[FileOp] = []
    i = 0
    while i < len(body):
        line = body[i]
        if line.startswith(ADD):
            path = _clean_path(line[len(ADD):])
            i += 1
            content = []
            while i < len(body) and not _is_file_header(body[i]):
                if body[i].startswith("+"):
                    content.append(body[i][1:])
                elif body[i].strip():
                    raise PatchError(f"Add File {path}: every line must start with '+', got {body[i]!r}")
                i += 1
            ops.append(FileOp("add", path, content="\n".join(content) + ("\n" if content else "")))
        elif line.startswith(DELETE):
            ops.append(FileOp("delete", _clean_path(line[len(DELETE):])))
            i += 1
        elif line.startswith(UPDATE):
            path = _clean_path(line[len(UPDATE):])
            i += 1
            move_to = None
            if i < len(body) and body[i].startswith(MOVE):
                move_to = _clean_path(body[i][len(MOVE):])
                i += 1
            chunks, i = _parse_chunks(body, i, path)
            if not chunks and move_to is None:
                raise PatchError(f"Update File {path}: no hunks (lines starting with ' ', '-' or '+')")
            ops.append(FileOp("update", path, move_to, tuple(chunks)))
        elif not line.strip():
            i += 1
        else:
            raise PatchError(f"unexpected line in patch: {line!r}; expected '*** Add File:', "
                             "'*** Update File:' or '*** Delete File:'")
    if not ops:
        raise PatchError("the patch changes no file")
    return ops


def _from_unified_diff(lines: list[str]) -> list[str]:
    """A unified diff (as `git diff` or `diff -u` print it) as the lines of this format; [] if it is not one."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = _diff_path(line[4:]), _diff_path(lines[i + 1][4:])
            i += 2
            body = []
            while i < len(lines) and not (lines[i].startswith("--- ") and i + 1 < len(lines)
                                          and lines[i + 1].startswith("+++ ")) and not lines[i].startswith("diff "):
                if not _FENCE.match(lines[i]):
                    body.append(lines[i])
                i += 1
            if old is None and new is not None:
                out += [ADD + new] + [text for text in body if text.startswith("+")]
            elif new is None and old is not None:
                out.append(DELETE + old)
            elif old is not None and new is not None:
                out += [UPDATE + old] + ([MOVE + new] if _unprefixed(new) != _unprefixed(old) else []) + body
        else:
            i += 1
    return out


def _diff_path(text: str) -> str | None:
    """The path of a ---/+++ line (timestamp dropped); None for /dev/null."""
    path = text.split("\t")[0].strip()
    return None if path == "/dev/null" else path


def _unprefixed(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) else path


def _is_file_header(line: str) -> bool:
    return line.startswith((ADD, UPDATE, DELETE))


def _clean_path(raw: str) -> str:
    return raw.strip().strip("`'\"").strip()


def _parse_chunks(body: list[str], i: int, path: str) -> tuple[list[Chunk], int]:
    chunks: list[Chunk] = []
    header: dict = {"anchor": None, "hint": None, "section": None}
    lines: list[tuple[str, str]] = []

    def flush(at_eof: bool = False) -> None:
        nonlocal lines, header
        if lines:
            chunks.append(Chunk(header["anchor"], tuple(lines), at_eof, header["hint"], header["section"]))
        elif at_eof and chunks:
            last = chunks[-1]
            chunks[-1] = Chunk(last.anchor, last.lines, True, last.hint, last.section)
        lines, header = [], {"anchor": None, "hint": None, "section": None}

    # `--- a/x` / `+++ b/x` right after the Update line are a unified diff's file header, not hunk lines.
    if i + 1 < len(body) and body[i].startswith("--- ") and body[i + 1].startswith("+++ "):
        i += 2
    while i < len(body) and not _is_file_header(body[i]):
        line = body[i]
        if line.startswith("@@"):
            flush()
            unified = _UNIFIED_HEADER.match(line.strip())
            if unified:
                header["hint"] = int(unified.group(1))
                header["section"] = unified.group(5).strip() or None
            else:
                header["anchor"] = line.strip().strip("@").strip() or None
        elif line.strip() == EOF_MARK:
            flush(at_eof=True)
        elif line.startswith("\\"):
            pass  # "\ No newline at end of file": the file keeps its own final newline
        elif line[:1] in ("+", "-", " "):
            lines.append((line[0], line[1:]))
        elif line == "":
            if i + 1 < len(body) and not _is_file_header(body[i + 1]) and body[i + 1].strip() != EOF_MARK:
                lines.append((" ", ""))
        elif line.startswith("***"):
            raise PatchError(f"Update File {path}: unexpected line {line!r} inside a hunk")
        else:
            # A context line that lost its leading space; matched like any other context line.
            lines.append((" ", line))
        i += 1
    flush()
    return chunks, i


# ---------------------------------------------------------------------- paths

def normalise_paths(ops: list[FileOp], exists: Callable[[str], bool], roots: Iterable[str] = ()) -> list[FileOp]:
    """Read paths the way models write them, when that is unambiguous.

    Absolute paths inside one of `roots` (the repository, as given and as
    resolved) become relative. `a/` and `b/` prefixes (from unified diffs) are
    dropped when the prefixed path does not exist and the plain one does; for
    new files, when another section of the same patch needed the same fix or
    the repository has no top-level `a`/`b` entry.
    """
    bases = [posixpath.normpath(root).rstrip("/") for root in roots if root]

    def relative(path: str) -> str:
        if path.startswith("/"):
            normal = posixpath.normpath(path)
            for base in bases:
                if normal.startswith(base + "/"):
                    return normal[len(base) + 1:]
        return path

    def strippable(path: str) -> bool:
        return path.startswith(("a/", "b/")) and len(path) > 2

    stripped_any = False
    result: list[FileOp] = []
    for op in ops:
        path = relative(op.path)
        if op.kind != "add" and strippable(path) and not exists(path) and exists(path[2:]):
            path, stripped_any = path[2:], True
        result.append(FileOp(op.kind, path, op.move_to and relative(op.move_to), op.chunks, op.content))

    def fix_new(path: str | None) -> str | None:
        if path and strippable(path) and not exists(path) and (stripped_any or not exists(path[:1])):
            return path[2:]
        return path

    return [FileOp(op.kind, fix_new(op.path) if op.kind == "add" else op.path, fix_new(op.move_to), op.chunks,
                   op.content) for op in result]


# ---------------------------------------------------------------------- applying

def apply_patch(ops: list[FileOp], read_fn: Callable[[str], str | None], *,
                check: SyntaxCheck | None = None) -> PatchOutcome:
    """Compute every file's new content (nothing is written here); PatchError if any hunk fails.

    `read_fn(path)` returns the file's text, or None if it does not exist.
    `check(path, before, after)` returns a description of a syntax error that
    `after` has and `before` had not, or None; any such error refuses the patch.
    """
    try:
        return _apply(ops, read_fn, check)
    except PatchError as error:
        text = str(error)
        if text.startswith("apply_patch"):
            raise
        raise PatchError(f"apply_patch failed, nothing was written: {text}") from None


def _apply(ops: list[FileOp], read_fn: Callable[[str], str | None], check: SyntaxCheck | None) -> PatchOutcome:
    outcome = PatchOutcome()
    diffs: list[str] = []
    originals: dict[str, str | None] = {}
    for op in ops:
        current = outcome.writes[op.path] if op.path in outcome.writes else read_fn(op.path)
        originals.setdefault(op.path, current)
        if op.kind == "add":
            if current is not None:
                raise PatchError(f"Add File {op.path}: the file already exists; use '*** Update File:' to change it")
            outcome.writes[op.path] = op.content
            added = op.content.count("\n")
            outcome.summary.append(f"A {op.path} (+{added})")
            outcome.added_lines += added
            diffs.append(_diff(op.path, op.path, "", op.content, None))
        elif op.kind == "delete":
            if current is None:
                raise PatchError(f"Delete File {op.path}: no such file")
            outcome.writes[op.path] = None
            removed = current.count("\n") + (0 if current.endswith("\n") or not current else 1)
            outcome.summary.append(f"D {op.path} (-{removed})")
            outcome.removed_lines += removed
            diffs.append(_diff(op.path, op.path, current, "", None))
        else:
            if current is None:
                raise PatchError(f"Update File {op.path}: no such file (use '*** Add File:' to create it)")
            edit = _FileEdit(op.path, current)
            updated, opcodes, reports = edit.apply(op.chunks)
            outcome.hunks.extend(reports)
            outcome.work += edit.work
            target = op.move_to or op.path
            if op.move_to and op.move_to != op.path:
                if read_fn(op.move_to) is not None:
                    raise PatchError(f"Move to {op.move_to}: that file already exists")
                originals.setdefault(op.move_to, None)
                outcome.writes[op.path] = None
            outcome.writes[target] = updated
            plus = sum(j2 - j1 for tag, _, _, j1, j2 in opcodes if tag != "equal")
            minus = sum(i2 - i1 for tag, i1, i2, _, _ in opcodes if tag != "equal")
            outcome.added_lines += plus
            outcome.removed_lines += minus
            label = f"R {op.path} -> {op.move_to}" if op.move_to else f"M {op.path}"
            outcome.summary.append(f"{label} (+{plus} -{minus})")
            diffs.append(_diff(op.path, target, current, updated, (edit.file.texts, edit.new_texts, opcodes)))
    if check is not None:
        for path, text in outcome.writes.items():
            if text is None:
                continue
            source = next((op.path for op in ops if op.move_to == path and op.path != path), path)
            error = check(path, originals.get(source), text)
            if error:
                raise PatchError(f"apply_patch refused, nothing was written: the patch would introduce a syntax "
                                 f"error in {path}, which the file did not have before.\n{error}\n"
                                 "Fix the patch (indentation, brackets, quotes) and send it again.")
    outcome.diff = "".join(diffs)
    return outcome


class _File:
    """A file as lines with their own line endings, and an index of its non-blank lines built once."""

    def __init__(self, text: str):
        raw = text.split("\n")
        self.final_newline = text.endswith("\n") or text == ""
        if self.final_newline:
            raw.pop()
        self.texts: list[str] = []
        self.ends: list[str] = []
        crlf = 0
        for number, line in enumerate(raw):
            if number == len(raw) - 1 and not self.final_newline:
                self.texts.append(line)
                self.ends.append("")
            elif line.endswith("\r"):
                self.texts.append(line[:-1])
                self.ends.append("\r\n")
                crlf += 1
            else:
                self.texts.append(line)
                self.ends.append("\n")
        self.eol = "\r\n" if crlf * 2 > len(raw) else "\n"
        self.stripped = [line.strip() for line in self.texts]
        self.nonblank = [i for i, s in enumerate(self.stripped) if s]  # ordinal → line index
        self.content_end = self.nonblank[-1] + 1 if self.nonblank else 0  # only blank lines after this
        self._index: dict[str, list[int]] | None = None
        self._unit: int | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def ordinal_at(self, line: int) -> int:
        """The ordinal of the first non-blank line at or after `line`."""
        return bisect.bisect_left(self.nonblank, line)

    def occurrences(self, stripped: str) -> list[int]:
        """Ordinals of the non-blank lines whose stripped text is `stripped`, ascending."""
        if self._index is None:
            index: dict[str, list[int]] = {}
            for ordinal, line in enumerate(self.nonblank):
                index.setdefault(self.stripped[line], []).append(ordinal)
            self._index = index
        return self._index.get(stripped, [])

    def indent_unit(self) -> int:
        """The file's indentation step in columns (gcd of indents), 0 when it has no indented line."""
        if self._unit is None:
            from math import gcd

            unit = 0
            for line in self.nonblank:
                text = self.texts[line]
                width = _columns(text[:len(text) - len(text.lstrip())], 4)
                unit = gcd(unit, width)
            self._unit = unit
        return self._unit


@dataclass
class _Placement:
    start: int  # original line span [start, end) that the hunk replaces
    end: int
    segment: list[tuple[str, str | None]]  # (text, ending or None for the file's own)
    report: HunkReport
    lead: int = 0  # the first `lead` lines of the span are context, kept as they are (likewise `trail`, at the end)
    trail: int = 0


class _Refused(Exception):
    """A match was found but the hunk cannot be applied there safely; becomes a PatchError with the text."""


class _FileEdit:
    """Locate every hunk of one file against its original text, then assemble the new text once."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.file = _File(text)
        self.new_texts: list[str] = []
        self.work = 0  # line comparisons spent locating hunks, against a budget linear in the input
        self.budget = 0

    def apply(self, chunks: Iterable[Chunk]) -> tuple[str, list[tuple[str, int, int, int, int]], list[HunkReport]]:
        chunks = list(chunks)
        self.budget = _WORK_PER_LINE * (len(self.file) + sum(len(chunk.lines) for chunk in chunks)) + 1_000_000
        placements: list[_Placement] = []
        cursor = 0
        for number, chunk in enumerate(chunks, 1):
            placement = self._place(number, chunk, cursor)
            placements.append(placement)
            # The next hunk's changes come after this one's; its context may reach back into this one's.
            cursor = max(cursor, placement.end - placement.trail)
        order = sorted(range(len(placements)), key=lambda k: (placements[k].start, k))
        for before, after in zip(order, order[1:]):
            self._share_context(placements, before, after)
        return self._assemble([placements[k] for k in order]) + ([p.report for p in placements],)

    def _share_context(self, placements: list[_Placement], before: int, after: int) -> None:
        """Two hunks whose spans overlap only where one of them has mere context: each keeps its own changes."""
        first, second = placements[before], placements[after]
        overlap = first.end - second.start
        if overlap <= 0:
            return
        from_first = min(overlap, first.trail)
        from_second = overlap - from_first
        if from_second > second.lead or second.start + from_second > second.end:
            a, b = sorted((before + 1, after + 1))
            raise PatchError(f"apply_patch failed, nothing was written. {self.path}: hunks {a} and {b} change the "
                             f"same lines (around line {second.start + 1}); merge them into one hunk.")
        if from_first:
            del first.segment[len(first.segment) - from_first:]
            first.end -= from_first
            first.trail -= from_first
        if from_second:
            del second.segment[:from_second]
            second.start += from_second
            second.lead -= from_second

    # ------------------------------------------------------------ locating

    def _place(self, number: int, chunk: Chunk, cursor: int) -> _Placement:
        file = self.file
        start = cursor
        if chunk.anchor:
            anchor_line = self._find_anchor(chunk.anchor, cursor)
            if anchor_line is None:
                raise PatchError(self._failure(number, chunk, f"anchor '@@ {chunk.anchor}' not found"))
            start = anchor_line + 1
        elif chunk.section:
            anchor_line = self._find_anchor(chunk.section, cursor, scan=False)
            if anchor_line is not None and anchor_line + 1 > start:
                start = anchor_line + 1
        old = [(k, text) for k, (tag, text) in enumerate(chunk.lines) if tag != "+"]
        if not old:
            if chunk.anchor:
                position, fuzz, detail = start, "exact", "inserted after the anchor line"
            elif chunk.hint is not None and not chunk.at_eof:
                # A model's line numbers are hints, not addresses: with no context nothing confirms them.
                raise PatchError(self._failure(number, chunk, "the hunk adds lines but has no context line to "
                                                              "place them by (line numbers alone are not trusted); "
                                                              "include the lines around the insertion"))
            else:
                position, fuzz, detail = len(file), "eof", "no context: appended at the end of the file"
            segment = [(text, None) for _, text in chunk.lines]
            return _Placement(position, position, segment, HunkReport(self.path, number, position + 1, fuzz, detail))
        if not any(text.strip() for _, text in old):
            raise PatchError(self._failure(number, chunk, "the hunk's context is only blank lines, so it could go "
                                                          "anywhere; include a non-blank line next to the change"))
        if chunk.hint is not None and not chunk.anchor:
            # Line numbers are about the original file, so look around them, not only after the last hunk.
            candidates = self._candidates(chunk, 0, near=chunk.hint - 1)
        else:
            candidates = self._candidates(chunk, start)
            if not candidates and start > 0:
                candidates = self._candidates(chunk, 0)  # hunks given out of order
        if not candidates:
            raise PatchError(self._failure(number, chunk, "context not found"))
        best_level = min(c.level for c in candidates)
        best = [c for c in candidates if c.level == best_level]
        fuzz = "exact" if best_level == 0 else "whitespace"
        notes: list[str] = []
        if len(best) > 1 and chunk.at_eof:
            at_end = [c for c in best if c.end >= file.content_end]
            if len(at_end) == 1:
                best, fuzz = at_end, "eof"
                notes.append("the End of File marker chose among several matches")
        if len(best) > 1 and chunk.hint is not None:
            distances = sorted((abs(c.start + 1 - chunk.hint), c.start) for c in best)
            if distances[0][0] < distances[1][0]:
                best = [c for c in best if c.start == distances[0][1]]
                fuzz = "line-hint"
                notes.append(f"the @@ -{chunk.hint} line number chose the match at line {best[0].start + 1}")
        if len(best) > 1:
            places = ", ".join(str(c.start + 1) for c in best[:8])
            raise PatchError(self._failure(
                number, chunk, f"the context matches {len(best)}{'+' if len(best) >= _MAX_CANDIDATES else ''} places "
                               f"(lines {places}); add an '@@ <line of the enclosing function or class>' anchor or "
                               "more context lines so it matches once"))
        if chunk.hint is not None and fuzz != "line-hint" and best[0].start + 1 != chunk.hint:
            notes.append(f"the @@ line number was off by {best[0].start + 1 - chunk.hint:+d}")
        if chunk.at_eof and fuzz != "eof" and best[0].end < file.content_end:
            notes.append("marked End of File but matched before the end")
        chosen = best[0]
        try:
            segment, detail = self._segment(chunk, chosen)
        except _Refused as refused:
            raise PatchError(self._failure(number, chunk, str(refused), found_at=chosen.start)) from None
        detail = "; ".join(filter(None, [detail] + notes))
        return _Placement(chosen.start, chosen.end, segment,
                          HunkReport(self.path, number, chosen.start + 1, fuzz, detail),
                          lead=chosen.first_change - chosen.start, trail=chosen.end - chosen.last_change_end)

    def _find_anchor(self, anchor: str, cursor: int, scan: bool = True) -> int | None:
        """The first line at or after `cursor` that is the anchor (stripped); failing that, with `scan`, the
        first that starts with or contains it, after `cursor` and then from the top."""
        file, wanted = self.file, anchor.strip()
        occurrences = file.occurrences(wanted)
        at = bisect.bisect_left(occurrences, file.ordinal_at(cursor))
        if at < len(occurrences):
            return file.nonblank[occurrences[at]]
        if occurrences and scan:
            return file.nonblank[occurrences[0]]
        if not scan:
            return None
        for first, last in ((cursor, len(file)), (0, cursor)):
            for index in range(first, last):
                if file.stripped[index].startswith(wanted) or (wanted and wanted in file.texts[index]):
                    self._spend(index - first + 1)
                    return index
            self._spend(last - first)
        return None

    def _spend(self, comparisons: int) -> None:
        """Count work against the budget; refuse a patch whose locating would not stay linear."""
        self.work += comparisons
        if self.work > self.budget:
            raise PatchError(f"apply_patch failed, nothing was written. {self.path}: the patch's context lines "
                             "and anchors are so repetitive or so far apart that locating them would take too long; "
                             "use fewer, more distinctive context lines or '@@' anchors, in file order.")

    def _candidates(self, chunk: Chunk, start: int, near: int | None = None) -> list["_Candidate"]:
        """Places at or after line `start` where the hunk's non-blank old lines match, stripped and in order.

        Found through the index entry of the hunk's rarest line; with `near`,
        the places closest to that line, on both sides.
        """
        file = self.file
        old = [(k, text) for k, (tag, text) in enumerate(chunk.lines) if tag != "+"]
        keys = [(k, text.strip()) for k, text in old if text.strip()]
        rarest = min(range(len(keys)), key=lambda i: len(file.occurrences(keys[i][1])))
        occurrences = file.occurrences(keys[rarest][1])
        # A hunk's leading context may reach back before `start` (into the previous hunk's trailing context).
        leading = next((i for i, (k, _) in enumerate(keys) if chunk.lines[k][0] != " "), len(keys))
        at = bisect.bisect_left(occurrences, file.ordinal_at(start) + rarest - leading)
        if near is None:
            window = occurrences[at:at + _MAX_OCCURRENCES]
        else:
            middle = bisect.bisect_left(occurrences, file.ordinal_at(near) + rarest)
            low = max(at, middle - _MAX_CANDIDATES // 2)
            window = occurrences[low:low + _MAX_CANDIDATES]
        found: list[_Candidate] = []
        for ordinal in window:
            begin = ordinal - rarest
            if begin + len(keys) > len(file.nonblank):
                break
            self._spend(len(keys))
            if all(file.stripped[file.nonblank[begin + i]] == key for i, (_, key) in enumerate(keys)):
                candidate = _Candidate.align(file, chunk, begin, len(keys))
                if candidate.first_change >= start:
                    found.append(candidate)
                    if len(found) >= _MAX_CANDIDATES:
                        break
        return found

    # ------------------------------------------------------------ rewriting

    def _segment(self, chunk: Chunk, chosen: "_Candidate") -> tuple[list[tuple[str, str | None]], str]:
        """The hunk's new lines for the chosen place: the file's own context, added lines re-indented."""
        file = self.file
        render, detail = _Reindent.for_match(file, chunk, chosen).renderer()
        segment: list[tuple[str, str | None]] = []
        position = chosen.start
        for k, (tag, text) in enumerate(chunk.lines):
            if tag == "+":
                segment.append((render(text), None))
                continue
            target = chosen.mapping.get(k)
            if target is None:
                continue  # a blank line in the hunk that the file does not have
            segment.extend((file.texts[i], file.ends[i]) for i in range(position, target))
            if tag == " ":
                segment.append((file.texts[target], file.ends[target]))
            position = target + 1
        segment.extend((file.texts[i], file.ends[i]) for i in range(position, chosen.end))
        return segment, "; ".join(filter(None, [chosen.describe(), detail]))

    def _assemble(self, placements: list[_Placement]) -> tuple[str, list[tuple[str, int, int, int, int]]]:
        """Join the untouched lines and the placed segments in one pass; opcodes for the diff come with it."""
        file = self.file
        texts: list[str] = []
        ends: list[str | None] = []
        opcodes: list[tuple[str, int, int, int, int]] = []
        position = 0
        for placement in placements:
            if placement.start > position:
                opcodes.append(("equal", position, placement.start, len(texts), len(texts) + placement.start - position))
                texts.extend(file.texts[position:placement.start])
                ends.extend(file.ends[position:placement.start])
            before = len(texts)
            old_slice = file.texts[placement.start:placement.end]
            new_slice = [text for text, _ in placement.segment]
            texts.extend(new_slice)
            ends.extend(end for _, end in placement.segment)
            matcher = difflib.SequenceMatcher(None, old_slice, new_slice, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                opcodes.append((tag, placement.start + i1, placement.start + i2, before + j1, before + j2))
            position = placement.end
        if position < len(file):
            opcodes.append(("equal", position, len(file), len(texts), len(texts) + len(file) - position))
            texts.extend(file.texts[position:])
            ends.extend(file.ends[position:])
        for index, end in enumerate(ends):
            if end is None or (end == "" and index < len(ends) - 1):
                ends[index] = file.eol
        if ends:
            if file.final_newline and not ends[-1]:
                ends[-1] = file.eol
            elif not file.final_newline:
                ends[-1] = ""
        self.new_texts = texts
        return "".join(text + end for text, end in zip(texts, ends)), opcodes

    # ------------------------------------------------------------ refusing

    def _failure(self, number: int, chunk: Chunk, what: str, found_at: int | None = None) -> str:
        file = self.file
        wanted = ([text for tag, text in chunk.lines if tag != "+"] or [chunk.anchor or ""])[:_CLOSEST_LINES]
        message = [f"apply_patch failed, nothing was written. {self.path}, hunk {number}: {what}."]
        if not any(line.strip() for line in wanted):
            return "\n".join(message)
        message += ["Expected these lines:", _indent("\n".join(wanted))]
        closest = (found_at, file.texts[found_at:found_at + len(wanted)]) if found_at is not None else \
            _closest(file, wanted, chunk.hint)
        if closest is not None:
            start, found = closest
            message += [f"Closest text in {self.path} (lines {start + 1}-{start + len(found)}):",
                        _indent("\n".join(found))]
            delta = list(difflib.unified_diff(wanted, found, "expected (patch)", "found (file)", lineterm="", n=1))
            if delta:
                message += ["Difference:", _indent("\n".join(delta[2:][:24]))]
                if [line.strip() for line in wanted] == [line.strip() for line in found]:
                    message.append("(They differ only in whitespace: indentation, tabs or trailing spaces.)")
        message.append("Re-read the file (repo_browser.open_file) and send the patch again with exact context lines.")
        return "\n".join(message)


@dataclass
class _Candidate:
    """One place a hunk matches: its line span and where each old line of the hunk lands in the file."""

    start: int
    end: int
    mapping: dict[int, int]  # hunk line index → file line index (old lines only)
    level: int  # the worst difference: 0 exact, 1 trailing whitespace, 2 indentation, 3 blank lines
    blank_changes: int
    kinds: frozenset[int]
    first_change: int  # file line where the hunk's first change (removal or insertion point) is
    last_change_end: int  # file line just after its last change

    @staticmethod
    def align(file: _File, chunk: Chunk, begin: int, count: int) -> "_Candidate":
        old = [k for k, (tag, _) in enumerate(chunk.lines) if tag != "+"]
        nonblank = [k for k in old if chunk.lines[k][1].strip()]
        mapping: dict[int, int] = {k: file.nonblank[begin + i] for i, k in enumerate(nonblank)}
        extra = 0
        # Blank old lines between, before and after the non-blank ones: pair them with the file's blank lines.
        groups: list[list[int]] = [[]]
        for k in old:
            if k in mapping:
                groups.append([])
            else:
                groups[-1].append(k)
        anchors = [mapping[k] for k in nonblank]
        for g, blanks in enumerate(groups):
            if not blanks and 0 < g < len(groups) - 1:
                extra += anchors[g] - anchors[g - 1] - 1  # the file has blank lines the hunk left out
                continue
            if g == 0:
                room = _take_blank(file, range(anchors[0] - 1, max(anchors[0] - 1 - len(blanks), -1), -1))[::-1]
                pairs = zip(blanks[len(blanks) - len(room):], room)
            elif g == len(groups) - 1:
                pairs = zip(blanks, _take_blank(file, range(anchors[-1] + 1, min(anchors[-1] + 1 + len(blanks), len(file)))))
            else:
                room = list(range(anchors[g - 1] + 1, anchors[g]))
                extra += max(len(room) - len(blanks), 0)
                pairs = zip(blanks, room)
            paired = dict(pairs)
            mapping.update(paired)
            extra += len(blanks) - len(paired)
        start, end = min(mapping.values()), max(mapping.values()) + 1
        kinds = {3} if extra else set()
        for k, line in mapping.items():
            mine, theirs = chunk.lines[k][1], file.texts[line]
            if mine != theirs:
                kinds.add(1 if mine.rstrip() == theirs.rstrip() or not theirs.strip() else 2)
        first_change = last_change_end = None
        previous = start  # just after the last file line the hunk has named so far
        for k, (tag, _) in enumerate(chunk.lines):
            if tag == "+":
                first_change = previous if first_change is None else first_change
                last_change_end = previous
            elif k in mapping:
                if tag == "-":
                    first_change = mapping[k] if first_change is None else first_change
                    last_change_end = mapping[k] + 1
                previous = mapping[k] + 1
        return _Candidate(start, end, mapping, max(kinds, default=0), extra, frozenset(kinds),
                          end if first_change is None else first_change,
                          end if last_change_end is None else last_change_end)

    def describe(self) -> str:
        words = {1: "trailing whitespace differs", 2: "indentation differs",
                 3: f"{self.blank_changes} blank line(s) differ"}
        return ", ".join(words[kind] for kind in sorted(self.kinds))


def _take_blank(file: _File, indices: Iterable[int]) -> list[int]:
    taken = []
    for index in indices:
        if file.stripped[index]:
            break
        taken.append(index)
    return taken


class _Reindent:
    """The indentation shift that maps the patch's lines onto the file's, applied to the added lines."""

    def __init__(self, shift: int | None, width: int, tabs: bool, known: dict[str, str], detail: str):
        self.shift, self.width, self.tabs, self.known, self.detail = shift, width, tabs, known, detail

    @classmethod
    def for_match(cls, file: _File, chunk: Chunk, chosen: _Candidate) -> "_Reindent":
        context: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        for k, line in chosen.mapping.items():
            tag, mine = chunk.lines[k]
            theirs = file.texts[line]
            if mine.strip():
                (context if tag == " " else removed).append((_leading(mine), _leading(theirs)))
        pairs = removed + context
        if all(p == f for p, f in pairs):
            return cls(0, 4, False, {}, "")
        tabs = any("\t" in f for _, f in pairs)
        added = [_leading(text) for tag, text in chunk.lines if tag == "+" and text.strip()]
        if not added:
            return cls(0, 4, tabs, {}, "")
        # The added lines are written like the removed ones; context is the fallback.
        group = removed or context
        solved = _solve(group) or (None if removed else _missing_prefix(context))
        if solved is None:
            which = "removed" if removed else "context"
            raise _Refused(f"the {which} lines' indentation differs from the file's by different amounts, so the "
                           "added lines cannot be re-indented safely")
        width, shift = solved
        if not removed and shift == 1 and not tabs:
            # Context one column short is a lost diff prefix far more often than a real shift:
            # put the added lines where the file's indentation step says they belong.
            unit = file.indent_unit()
            fits = [s for s in (0, 1) if unit < 2 or all((_columns(a, width) + s) % unit == 0 for a in added)]
            shift = fits[0] if fits else 0
        exact_group = _solve(group)
        known = {p: f for p, f in group} if exact_group is not None and exact_group[1] == shift else {}
        kind = "tabs/spaces" if any(("\t" in p) != ("\t" in f) for p, f in group) else "indentation"
        if shift and tabs and shift % width == 0:
            detail = f"added lines re-indented by {shift // width:+d} tab(s)"
        elif shift:
            detail = f"added lines re-indented by {shift:+d} columns" + (" (tabs/spaces)" if kind == "tabs/spaces" else "")
        else:
            detail = "added lines re-indented in the file's style (tabs/spaces)" if kind == "tabs/spaces" else ""
        return cls(shift, width, tabs, known, detail)

    def renderer(self) -> tuple[Callable[[str], str], str]:
        def render(text: str) -> str:
            if not text.strip() or self.shift is None:
                return text
            lead = _leading(text)
            if self.shift == 0 and not self.known and not self.tabs:
                return text
            if lead in self.known:
                return self.known[lead] + text[len(lead):]
            column = _columns(lead, self.width) + self.shift
            if column < 0:
                raise _Refused("an added line would need negative indentation")
            if self.tabs:
                return "\t" * (column // self.width) + " " * (column % self.width) + text[len(lead):]
            return " " * column + text[len(lead):]

        return render, self.detail


def _leading(text: str) -> str:
    return text[:len(text) - len(text.lstrip(" \t"))]


def _columns(whitespace: str, width: int) -> int:
    column = 0
    for char in whitespace:
        column = column + width - column % width if char == "\t" else column + 1
    return column


def _solve(pairs: list[tuple[str, str]]) -> tuple[int, int] | None:
    """(tab width, shift) such that every file indent is the patch indent shifted; no shift preferred."""
    if not pairs:
        return None
    found: list[tuple[int, int]] = []
    for width in _TAB_WIDTHS:
        shifts = {_columns(f, width) - _columns(p, width) for p, f in pairs}
        if len(shifts) == 1:
            found.append((width, shifts.pop()))
    if not found:
        return None
    return next((w, s) for w, s in found if s == 0) if any(s == 0 for _, s in found) else found[0]


def _missing_prefix(pairs: list[tuple[str, str]]) -> tuple[int, int] | None:
    """Context lines that lost their leading space: indented ones one column short, unindented ones equal."""
    shifts = {_columns(f, 4) - _columns(p, 4) for p, f in pairs}
    if shifts == {0, 1} and all(not f for p, f in pairs if _columns(f, 4) == _columns(p, 4)):
        return 4, 1
    return None


def _closest(file: _File, wanted: list[str], hint: int | None) -> tuple[int, list[str]] | None:
    """The window of the file most like the expected lines (for the refusal message only)."""
    if not file.texts:
        return None
    wanted = wanted[:_CLOSEST_LINES]
    size = max(len(wanted), 1)
    target = "\n".join(w.strip() for w in wanted)
    keys = {w.strip() for w in wanted if w.strip()}
    # Only windows that share a line with the hunk, or around the hint: bounded work on big files.
    starts: set[int] = set()
    for key in keys:
        for ordinal in file.occurrences(key)[:200]:
            line = file.nonblank[ordinal]
            starts.update(range(max(line - size + 1, 0), line + 1))
    if hint is not None:
        starts.update(range(max(hint - 1 - size, 0), min(hint - 1 + size, len(file))))
    if not starts:
        step = max(len(file) // 2000, 1)
        starts.update(range(0, max(len(file) - size + 1, 1), step))
    best, best_index = 0.0, None
    for index in sorted(starts)[:5000]:
        window = "\n".join(file.stripped[index:index + size])
        matcher = difflib.SequenceMatcher(None, target, window, autojunk=False)
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_index = ratio, index
    if best_index is None or best < 0.3:
        return None
    return best_index, file.texts[best_index:best_index + size]


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.split("\n"))


def _diff(old_path: str, new_path: str, before: str, after: str,
          known: tuple[list[str], list[str], list[tuple[str, int, int, int, int]]] | None) -> str:
    """A unified diff; for updates from the opcodes the engine already has (no whole-file re-diff)."""
    from_file = f"a/{old_path}" if before else "/dev/null"
    to_file = f"b/{new_path}" if after else "/dev/null"
    if known is None:
        return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                            fromfile=from_file, tofile=to_file))
    old, new, opcodes = known
    matcher = _KnownOpcodes(opcodes)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(3):
        if not out:
            out += [f"--- {from_file}\n", f"+++ {to_file}\n"]
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line + "\n" for line in old[i1:i2]]
                continue
            out += ["-" + line + "\n" for line in old[i1:i2]]
            out += ["+" + line + "\n" for line in new[j1:j2]]
    return "".join(out)


class _KnownOpcodes(difflib.SequenceMatcher):
    """difflib's hunk grouping over opcodes computed elsewhere."""

    def __init__(self, opcodes: list[tuple[str, int, int, int, int]]):
        super().__init__(None, [], [])
        merged: list[tuple[str, int, int, int, int]] = []
        for op in opcodes:
            if op[1] == op[2] and op[3] == op[4]:
                continue
            if merged and op[0] == merged[-1][0] == "equal":  # difflib's grouping expects one run per stretch
                merged[-1] = ("equal", merged[-1][1], op[2], merged[-1][3], op[4])
            else:
                merged.append(op)
        self._known = merged or [("equal", 0, 0, 0, 0)]

    def get_opcodes(self):
        return list(self._known)


def _range(start: int, stop: int) -> str:
    length = stop - start
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"
