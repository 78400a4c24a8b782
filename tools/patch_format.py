"""The apply_patch text format, read the way models really write it (pure).

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

Also accepted when unambiguous: prose and code fences around the patch, a
missing Begin or End line, CRLF patch text, `--- a/x` / `+++ b/x` file headers,
`\\ No newline at end of file`, context lines that lost their leading space,
a plain unified diff (`git diff`, `diff -u`), and paths written with `a/` / `b/`
prefixes or as absolute paths inside the repository (`normalise_paths`).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Literal

BEGIN, END = "*** Begin Patch", "*** End Patch"
ADD, UPDATE, DELETE, MOVE, EOF_MARK = "*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: ", "*** End of File"
_UNIFIED_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@+ ?(.*)$")
_FENCE = re.compile(r"^(```|~~~)")  # at column 0: an indented one is a context line of a Markdown file


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
    old_no_eol: bool = False  # "\\ No newline at end of file" after the old side's last line
    new_no_eol: bool = False  # ... after the new side's last line

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
    git_prefixed: bool = False  # came with `--- a/x` / `+++ b/x` headers: `a/` is probably git's prefix


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
    # ` *** End Patch` (leading space) is a context line of a file that holds that text, not the end.
    end = next((i for i, line in enumerate(body) if line.rstrip() == END), None)
    if end is None:  # no End Patch: a closing code fence ends the patch (prose may follow it)
        end = next((i for i, line in enumerate(body) if _FENCE.match(line)), len(body))
        last = next((i for i in range(end - 1, -1, -1) if body[i].strip()), None)
        if last is not None and body[last].strip() == END:  # an indented End Patch as the very last line
            end = last
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
            blanks = 0
            while i < len(body) and not _is_file_header(body[i]):
                if body[i].startswith("+"):
                    content += [""] * blanks + [body[i][1:]]  # a blank line between '+' lines is a blank line
                    blanks = 0
                elif body[i].strip():
                    raise PatchError(f"Add File {path}: every line must start with '+', got {body[i]!r}")
                elif content:
                    blanks += 1
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
            prefixed = (i + 1 < len(body) and body[i].startswith("--- a/") and body[i + 1].startswith("+++ b/"))
            chunks, i = _parse_chunks(body, i, path)
            if not chunks and move_to is None:
                raise PatchError(f"Update File {path}: no hunks (lines starting with ' ', '-' or '+')")
            ops.append(FileOp("update", path, move_to, tuple(chunks), git_prefixed=prefixed))
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
            header = [line, lines[i + 1]]  # kept: the parser reads git's a/ b/ prefixes from it
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
                out += ([UPDATE + old] + ([MOVE + new] if _unprefixed(new) != _unprefixed(old) else [])
                        + header + body)
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
    fresh = {"anchor": None, "hint": None, "section": None, "old_no_eol": False, "new_no_eol": False}
    header: dict = dict(fresh)
    lines: list[tuple[str, str]] = []

    def flush(at_eof: bool = False) -> None:
        nonlocal lines, header
        if lines:
            chunks.append(Chunk(header["anchor"], tuple(lines), at_eof, header["hint"], header["section"],
                                header["old_no_eol"], header["new_no_eol"]))
        elif at_eof and chunks:
            chunks[-1] = dataclasses.replace(chunks[-1], at_eof=True)
        lines, header = [], dict(fresh)

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
            # "\ No newline at end of file" belongs to the line before it: the old side's, the new side's or both.
            tag = lines[-1][0] if lines else " "
            header["old_no_eol"] = header["old_no_eol"] or tag in "- "
            header["new_no_eol"] = header["new_no_eol"] or tag in "+ "
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


def normalise_paths(ops: list[FileOp], exists: Callable[[str], bool], roots: Iterable[str] = ()) -> list[FileOp]:
    """Read paths the way models write them, when that is unambiguous.

    Absolute paths inside one of `roots` (the repository, as given and as
    resolved) become relative. `a/` and `b/` prefixes (from unified diffs) are
    dropped when the prefixed path does not exist and the plain one does; for
    new files, when another section of the same patch needed the same fix or
    the repository has no top-level `a`/`b` entry. A git diff's `a/x` when both
    `a/x` and `x` exist is ambiguous and refused. Every path is normalised
    (`./a.py` and `a.py` are one file), so two sections for one file apply in order.
    """
    bases = [posixpath.normpath(root).rstrip("/") for root in roots if root]

    def relative(path: str) -> str:
        if path.startswith("/"):
            normal = posixpath.normpath(path)
            for base in bases:
                if normal.startswith(base + "/"):
                    return normal[len(base) + 1:]
            return path
        return _same_file_spelling(path)

    def strippable(path: str) -> bool:
        return path.startswith(("a/", "b/")) and len(path) > 2

    stripped_any = False
    result: list[FileOp] = []
    for op in ops:
        path = relative(op.path)
        if op.kind != "add" and strippable(path) and exists(path[2:]):
            if not exists(path):
                path, stripped_any = path[2:], True
            elif op.git_prefixed:
                raise PatchError(f"{op.path}: ambiguous: both '{path}' and '{path[2:]}' exist and a git diff writes "
                                 f"'{path[:2]}' before every path; write '*** Update File: <the path>' without the "
                                 "prefix (or name the file exactly) and send the patch again")
        result.append(FileOp(op.kind, path, op.move_to and relative(op.move_to), op.chunks, op.content,
                             op.git_prefixed))

    def fix_new(path: str | None) -> str | None:
        if path and strippable(path) and not exists(path) and (stripped_any or not exists(path[:1])):
            return path[2:]
        return path

    return [FileOp(op.kind, fix_new(op.path) if op.kind == "add" else op.path, fix_new(op.move_to), op.chunks,
                   op.content, op.git_prefixed) for op in result]


def _same_file_spelling(path: str) -> str:
    """`./a.py`, `a//b.py` and `a.py/` as `a.py`, `a/b.py`: one file, one name. `..` is kept for the jail to judge."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return path if ".." in parts else "/".join(parts) or path
