"""apply_patch in the gpt-oss patch format, all or nothing.

```
*** Begin Patch
*** Update File: src/app.py
*** Move to: src/main.py          (optional)
@@ def handler(request):          (optional anchor)
 context
-old line
+new line
*** End of File                   (optional: the hunk ends the file)
*** Add File: docs/notes.md
+text
*** Delete File: old.py
*** End Patch
```

`parse_patch` and `apply_patch` are pure: reading, writing and removing files
are injected. Context is matched exactly, then ignoring trailing whitespace,
then ignoring surrounding whitespace. If any hunk fails nothing is written, and
the error names the file, the hunk and the closest text in the file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable, Literal

BEGIN, END = "*** Begin Patch", "*** End Patch"
ADD, UPDATE, DELETE, MOVE, EOF_MARK = "*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: ", "*** End of File"


class PatchError(ValueError):
    """The patch cannot be parsed or applied; the message is written for the model."""


@dataclass(frozen=True)
class Chunk:
    anchor: str | None
    old: tuple[str, ...]
    new: tuple[str, ...]
    at_eof: bool = False


@dataclass(frozen=True)
class FileOp:
    kind: Literal["add", "update", "delete"]
    path: str
    move_to: str | None = None
    chunks: tuple[Chunk, ...] = ()
    content: str = ""


@dataclass
class PatchOutcome:
    """What applying did: per-file new contents (None = removed), a summary, and a unified diff."""

    writes: dict[str, str | None] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    diff: str = ""
    added_lines: int = 0
    removed_lines: int = 0


# ---------------------------------------------------------------------- parsing

def parse_patch(text: str) -> list[FileOp]:
    """Parse the patch text; tolerant of surrounding prose, code fences and missing End Patch."""
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == BEGIN)
    except StopIteration:
        raise PatchError(f"the patch must start with '{BEGIN}' and end with '{END}'") from None
    body = lines[start + 1:]
    end = next((i for i, line in enumerate(body) if line.strip() == END), len(body))
    body = body[:end]
    ops: list[FileOp] = []
    i = 0
    while i < len(body):
        line = body[i]
        if line.startswith(ADD):
            path = line[len(ADD):].strip()
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
            ops.append(FileOp("delete", line[len(DELETE):].strip()))
            i += 1
        elif line.startswith(UPDATE):
            path = line[len(UPDATE):].strip()
            i += 1
            move_to = None
            if i < len(body) and body[i].startswith(MOVE):
                move_to = body[i][len(MOVE):].strip()
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


def _is_file_header(line: str) -> bool:
    return line.startswith((ADD, UPDATE, DELETE))


def _parse_chunks(body: list[str], i: int, path: str) -> tuple[list[Chunk], int]:
    chunks: list[Chunk] = []
    anchor: str | None = None
    old: list[str] = []
    new: list[str] = []

    def flush(at_eof: bool = False) -> None:
        nonlocal old, new, anchor
        if old or new:
            chunks.append(Chunk(anchor, tuple(old), tuple(new), at_eof))
        elif at_eof and chunks:
            last = chunks[-1]
            chunks[-1] = Chunk(last.anchor, last.old, last.new, True)
        old, new, anchor = [], [], None

    while i < len(body) and not _is_file_header(body[i]):
        line = body[i]
        if line.startswith("@@"):
            flush()
            anchor = line[2:].strip() or None
        elif line.strip() == EOF_MARK:
            flush(at_eof=True)
        elif line.startswith("+"):
            new.append(line[1:])
        elif line.startswith("-"):
            old.append(line[1:])
        elif line.startswith(" "):
            old.append(line[1:])
            new.append(line[1:])
        elif line == "":
            if i + 1 < len(body) and not _is_file_header(body[i + 1]) and body[i + 1].strip() != EOF_MARK:
                old.append("")
                new.append("")
        else:
            raise PatchError(f"Update File {path}: hunk line {line!r} must start with ' ', '-', '+' or '@@'")
        i += 1
    flush()
    return chunks, i


# ---------------------------------------------------------------------- applying

def apply_patch(ops: list[FileOp], read_fn: Callable[[str], str | None]) -> PatchOutcome:
    """Compute every file's new content (nothing is written here); PatchError if any hunk fails.

    `read_fn(path)` returns the file's text, or None if it does not exist.
    """
    outcome = PatchOutcome()
    diffs: list[str] = []
    for op in ops:
        current = outcome.writes[op.path] if op.path in outcome.writes else read_fn(op.path)
        if op.kind == "add":
            if current is not None:
                raise PatchError(f"Add File {op.path}: the file already exists; use '*** Update File:' to change it")
            outcome.writes[op.path] = op.content
            added = op.content.count("\n")
            outcome.summary.append(f"A {op.path} (+{added})")
            outcome.added_lines += added
            diffs.append(_diff(op.path, op.path, "", op.content))
        elif op.kind == "delete":
            if current is None:
                raise PatchError(f"Delete File {op.path}: no such file")
            outcome.writes[op.path] = None
            removed = current.count("\n") + (0 if current.endswith("\n") or not current else 1)
            outcome.summary.append(f"D {op.path} (-{removed})")
            outcome.removed_lines += removed
            diffs.append(_diff(op.path, op.path, current, ""))
        else:
            if current is None:
                raise PatchError(f"Update File {op.path}: no such file (use '*** Add File:' to create it)")
            updated = _update(op, current)
            target = op.move_to or op.path
            if op.move_to:
                if op.move_to != op.path and read_fn(op.move_to) is not None:
                    raise PatchError(f"Move to {op.move_to}: that file already exists")
                outcome.writes[op.path] = None
            outcome.writes[target] = updated
            plus, minus = _counts(current, updated)
            outcome.added_lines += plus
            outcome.removed_lines += minus
            label = f"R {op.path} -> {op.move_to}" if op.move_to else f"M {op.path}"
            outcome.summary.append(f"{label} (+{plus} -{minus})")
            diffs.append(_diff(op.path, target, current, updated))
    outcome.diff = "".join(diffs)
    return outcome


def _update(op: FileOp, text: str) -> str:
    eol = "\r\n" if "\r\n" in text else "\n"
    final_newline = text.endswith(eol) or text == ""
    lines = text.split(eol)
    if final_newline and lines and lines[-1] == "":
        lines.pop()
    cursor = 0
    for number, chunk in enumerate(op.chunks, 1):
        if chunk.anchor:
            found = _find(lines, [chunk.anchor], cursor, anchor=True)
            if found is None:
                found = _find(lines, [chunk.anchor], 0, anchor=True)
            if found is None:
                raise PatchError(_failure(op.path, number, chunk, lines, f"anchor '@@ {chunk.anchor}' not found"))
            cursor = found + 1
        if not chunk.old:
            position = len(lines) if (chunk.at_eof or not chunk.anchor) else cursor
            lines[position:position] = list(chunk.new)
            cursor = position + len(chunk.new)
            continue
        found = None
        if chunk.at_eof and len(lines) >= len(chunk.old):
            tail = len(lines) - len(chunk.old)
            found = _find(lines, list(chunk.old), tail)
        if found is None:
            found = _find(lines, list(chunk.old), cursor)
        if found is None:
            found = _find(lines, list(chunk.old), 0)
        if found is None:
            raise PatchError(_failure(op.path, number, chunk, lines, "context not found"))
        lines[found:found + len(chunk.old)] = list(chunk.new)
        cursor = found + len(chunk.new)
    result = eol.join(lines)
    return result + eol if (final_newline and lines) else result


def _find(lines: list[str], wanted: list[str], start: int, anchor: bool = False) -> int | None:
    """First index ≥ start where `wanted` matches: exactly, then ignoring trailing, then all surrounding space."""
    normalisers = (lambda s: s, str.rstrip, str.strip)
    for norm in normalisers:
        target = [norm(w) for w in wanted]
        for index in range(start, len(lines) - len(wanted) + 1):
            if anchor:
                if norm(lines[index]).startswith(target[0]) or target[0] in lines[index]:
                    return index
            elif all(norm(lines[index + k]) == target[k] for k in range(len(wanted))):
                return index
    return None


def _failure(path: str, number: int, chunk: Chunk, lines: list[str], what: str) -> str:
    expected = "\n".join(chunk.old) if chunk.old else (chunk.anchor or "")
    message = [f"apply_patch failed, nothing was written. {path}, hunk {number}: {what}. Expected these lines:",
               _indent(expected)]
    closest = _closest(lines, list(chunk.old) or [chunk.anchor or ""])
    if closest is not None:
        start, text = closest
        message += [f"Closest text in {path} (lines {start + 1}-{start + text.count(chr(10)) + 1}):", _indent(text)]
    message.append("Re-read the file (repo_browser.open_file) and send the patch again with exact context lines.")
    return "\n".join(message)


def _closest(lines: list[str], wanted: list[str]) -> tuple[int, str] | None:
    if not lines:
        return None
    size = max(len(wanted), 1)
    target = "\n".join(w.strip() for w in wanted)
    best, best_index = 0.0, None
    for index in range(0, max(len(lines) - size + 1, 1)):
        window = "\n".join(l.strip() for l in lines[index:index + size])
        matcher = difflib.SequenceMatcher(None, target, window, autojunk=False)
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_index = ratio, index
    if best_index is None or best < 0.3:
        return None
    return best_index, "\n".join(lines[best_index:best_index + size])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.split("\n"))


def _counts(before: str, after: str) -> tuple[int, int]:
    plus = minus = 0
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            plus += 1
        elif line.startswith("-") and not line.startswith("---"):
            minus += 1
    return plus, minus


def _diff(old_path: str, new_path: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{old_path}" if before else "/dev/null",
                                        tofile=f"b/{new_path}" if after else "/dev/null"))
