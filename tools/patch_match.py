"""Locating a patch's hunks in one file and writing the file's new text (pure).

Every hunk is located against the original file through an index of its
non-blank lines (stripped text → positions) built once: a hunk is looked up by
its rarest line and verified around each occurrence, the search for each hunk
starting where the previous hunk's changes ended. Matching is exact first,
then ignoring trailing spaces, indentation and blank lines; the file's own
lines are kept and only the hunk's changes are applied. Several equally good
places are resolved by the End-of-File marker or a unified header's line
number, or refused. Line comparisons are counted against a budget linear in
the size of file and patch, so no input makes the work quadratic. The new text
is assembled in one pass, with each line's own line ending.
"""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass
from math import gcd
from typing import Iterable

from gptoss_agent.tools.patch_format import Chunk, PatchError
from gptoss_agent.tools.patch_indent import IndentRefused, Reindent, columns

_MAX_CANDIDATES = 64  # verified places one hunk may match; more is ambiguous whatever the hint says
_MAX_OCCURRENCES = 20_000  # index entries scanned for one hunk; bounds hostile files of identical lines
_WORK_PER_LINE = 50  # line comparisons allowed per line of file and patch: linear, whatever the input
_CLOSEST_LINES = 40  # the refusal's "closest text" compares at most this many lines


@dataclass(frozen=True)
class HunkReport:
    """How one hunk matched: `fuzz` is exact, whitespace, eof, line-hint or anchor; `detail` says what differed."""

    path: str
    number: int
    line: int  # 1-based line of the original file where the hunk applied
    fuzz: str
    detail: str = ""


class _File:
    """A file as lines with their own line endings, and an index of its non-blank lines built once."""

    def __init__(self, text: str):
        self.bom = "\ufeff" if text.startswith("\ufeff") else ""  # kept, but not part of the first line's text
        text = text[len(self.bom):]
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
            unit = 0
            for line in self.nonblank:
                text = self.texts[line]
                width = columns(text[:len(text) - len(text.lstrip())], 4)
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


class FileEdit:
    """Locate every hunk of one file against its original text, then assemble the new text once."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.file = _File(text)
        self.new_texts: list[str] = []
        self.work = 0  # line comparisons spent locating hunks, against a budget linear in the input
        self.budget = 0
        self.final_newline = self.file.final_newline  # what the new text ends with; a '\\ No newline' may change it

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
        self._final_newline(chunks, placements)
        order = sorted(range(len(placements)), key=lambda k: (placements[k].start, k))
        for before, after in zip(order, order[1:]):
            self._share_context(placements, before, after)
        return self._assemble([placements[k] for k in order]) + ([p.report for p in placements],)

    def _final_newline(self, chunks: list[Chunk], placements: list[_Placement]) -> None:
        """Honour a '\\ No newline at end of file' marker that changes the file's end; refuse one placed elsewhere."""
        for number, (chunk, placement) in enumerate(zip(chunks, placements), 1):
            if not (chunk.old_no_eol or chunk.new_no_eol):
                continue
            wanted = not chunk.new_no_eol
            if wanted == self.final_newline:
                continue
            if placement.end < len(self.file):
                raise PatchError(f"apply_patch failed, nothing was written. {self.path}: hunk {number} says "
                                 "'\\ No newline at end of file' but matched at line "
                                 f"{placement.start + 1}, not at the end of the file")
            self.final_newline = wanted

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
        anchor_exact = True
        if chunk.anchor:
            anchor_line, anchor_exact = self._find_anchor(chunk.anchor, cursor)
            if anchor_line is None:
                raise PatchError(self._failure(number, chunk, f"anchor '@@ {chunk.anchor}' not found"))
            start = anchor_line + 1
        elif chunk.section:
            anchor_line, _ = self._find_anchor(chunk.section, cursor, scan=False)
            if anchor_line is not None and anchor_line + 1 > start:
                start = anchor_line + 1
        old = [(k, text) for k, (tag, text) in enumerate(chunk.lines) if tag != "+"]
        if not old:
            if chunk.anchor and anchor_exact:
                position, fuzz, detail = start, "exact", "inserted after the anchor line"
            elif chunk.anchor:
                # Nothing but the anchor places these lines, so say which line it took to be the anchor.
                position, fuzz = start, "anchor"
                detail = (f"no line is exactly '{chunk.anchor.strip()}'; inserted after line {start} "
                          f"'{file.stripped[start - 1][:80]}', which begins with it")
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
            candidates = self._candidates(chunk, 0, near=chunk.hint - 1) or self._candidates(chunk, 0)
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
            count = f"{len(best)}{'+' if len(best) >= _MAX_CANDIDATES else ''}"
            raise PatchError(self._failure(
                number, chunk, f"the context matches {count} places (lines {places}); add an '@@ <line of the "
                               "enclosing function or class>' anchor or more context lines so it matches once",
                ambiguous=True))
        if chunk.hint is not None and fuzz != "line-hint" and best[0].start + 1 != chunk.hint:
            notes.append(f"the @@ line number was off by {best[0].start + 1 - chunk.hint:+d}")
        if chunk.at_eof and fuzz != "eof" and best[0].end < file.content_end:
            notes.append("marked End of File but matched before the end")
        chosen = best[0]
        try:
            segment, detail = self._segment(chunk, chosen)
        except IndentRefused as refused:
            raise PatchError(self._failure(number, chunk, str(refused), found_at=chosen.start)) from None
        detail = "; ".join(filter(None, [detail] + notes))
        return _Placement(chosen.start, chosen.end, segment,
                          HunkReport(self.path, number, chosen.start + 1, fuzz, detail),
                          lead=chosen.first_change - chosen.start, trail=chosen.end - chosen.last_change_end)

    def _find_anchor(self, anchor: str, cursor: int, scan: bool = True) -> tuple[int | None, bool]:
        """(line, exact): the first line at or after `cursor` that is the anchor (stripped); failing that, with
        `scan`, the first that contains it as whole words (`def f` is in `def f(x):`, never in `def foo():`),
        after `cursor` and then from the top."""
        file, wanted = self.file, anchor.strip()
        occurrences = file.occurrences(wanted)
        at = bisect.bisect_left(occurrences, file.ordinal_at(cursor))
        if at < len(occurrences):
            return file.nonblank[occurrences[at]], True
        if occurrences and scan:
            return file.nonblank[occurrences[0]], True
        if not scan or not wanted:
            return None, True
        words = re.compile(("(?<!\\w)" if wanted[0].isalnum() or wanted[0] == "_" else "") + re.escape(wanted)
                           + ("(?!\\w)" if wanted[-1].isalnum() or wanted[-1] == "_" else ""))
        for first, last in ((cursor, len(file)), (0, cursor)):
            for index in range(first, last):
                if wanted in file.texts[index] and words.search(file.texts[index]):
                    self._spend(index - first + 1)
                    return index, False
            self._spend(last - first)
        return None, False

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
                candidate = _Candidate.align(file, chunk, begin)
                if candidate.first_change >= start:
                    found.append(candidate)
                    if len(found) >= _MAX_CANDIDATES:
                        break
        return found

    # ------------------------------------------------------------ rewriting

    def _segment(self, chunk: Chunk, chosen: "_Candidate") -> tuple[list[tuple[str, str | None]], str]:
        """The hunk's new lines for the chosen place: the file's own context, added lines re-indented."""
        file = self.file
        render, detail = Reindent.for_match(file, chunk, chosen).renderer()
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
            if self.final_newline and not ends[-1]:
                ends[-1] = file.eol
            elif not self.final_newline:
                ends[-1] = ""
        self.new_texts = texts
        return file.bom + "".join(text + end for text, end in zip(texts, ends)), opcodes

    # ------------------------------------------------------------ refusing

    def _failure(self, number: int, chunk: Chunk, what: str, found_at: int | None = None,
                 ambiguous: bool = False) -> str:
        file = self.file
        wanted = ([text for tag, text in chunk.lines if tag != "+"] or [chunk.anchor or ""])[:_CLOSEST_LINES]
        message = [f"apply_patch failed, nothing was written. {self.path}, hunk {number}: {what}."]
        if not any(line.strip() for line in wanted):
            return "\n".join(message)
        message += ["Expected these lines:", _indent("\n".join(wanted))]
        if ambiguous:
            return "\n".join(message)
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
    def align(file: _File, chunk: Chunk, begin: int) -> "_Candidate":
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
