"""apply_patch: exact, or refused with the closest text (pure: reading and checking are injected).

`parse_patch` reads the text (tools/patch_format.py), `normalise_paths` reads
its paths as the repository's, `apply_patch` computes every file's new content
(tools/patch_match.py) and nothing is written here. What it promises:

- The file's own lines are never replaced by the patch's context. A hunk whose
  context matches only after normalising whitespace (trailing spaces, indentation
  short or long, tabs for spaces, blank lines left out) keeps the file's context
  and re-indents the added lines by the offset the match needed, in the file's
  own style (tools/patch_indent.py); when that offset is not one consistent
  shift the hunk is refused.
- A hunk applies at one place or not at all: context that matches at several
  places is resolved by the End-of-File marker or a unified header's line
  number, otherwise refused with the places listed.
- Work is linear in the number of hunks: each is located against the original
  file through an index built once, and the new text is assembled in one pass.
- If any hunk fails, or the injected check reports a syntax error the file did
  not have, nothing is written; the error names the file, the hunk, the closest
  text and a short diff of expected against found (or the error's line, column
  and surrounding lines).
- The outcome says how each hunk matched: exact, whitespace, eof or line-hint.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

from gptoss_agent.tools.patch_format import Chunk, FileOp, PatchError, normalise_paths, parse_patch
from gptoss_agent.tools.patch_match import FileEdit, HunkReport

__all__ = ["Chunk", "FileOp", "HunkReport", "PatchError", "PatchOutcome", "apply_patch", "normalise_paths",
           "parse_patch"]

SyntaxCheck = Callable[[str, "str | None", str], "str | None"]


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
            edit = FileEdit(op.path, current)
            updated, opcodes, reports = edit.apply(op.chunks)
            outcome.hunks.extend(reports)
            outcome.work += edit.work
            target = op.move_to or op.path
            if op.move_to and op.move_to != op.path:
                if outcome.writes.get(op.move_to) is not None:
                    raise PatchError(f"Move to {op.move_to}: an earlier section of this patch already writes that "
                                     "file; two files cannot be moved onto one")
                if op.move_to not in outcome.writes and read_fn(op.move_to) is not None:
                    raise PatchError(f"Move to {op.move_to}: that file already exists (delete it first, in its own "
                                     "'*** Delete File:' section, if replacing it is intended)")
                originals.setdefault(op.move_to, None)
                outcome.writes[op.path] = None
            outcome.writes[target] = updated
            plus = sum(j2 - j1 for tag, _, _, j1, j2 in opcodes if tag != "equal")
            minus = sum(i2 - i1 for tag, i1, i2, _, _ in opcodes if tag != "equal")
            outcome.added_lines += plus
            outcome.removed_lines += minus
            label = f"R {op.path} -> {op.move_to}" if op.move_to else f"M {op.path}"
            newline = _final_newline_change(current, updated)
            if not (plus or minus or newline or op.move_to):
                raise PatchError(f"Update File {op.path}: the patch changes nothing in this file (its '-' and '+' "
                                 "lines are the same)")
            outcome.summary.append(f"{label} (+{plus} -{minus}{', ' + newline if newline else ''})")
            known = None if newline else (edit.file.texts, edit.new_texts, opcodes)
            diffs.append(_diff(op.path, target, current, updated, known))
    if check is not None:
        for path, text in outcome.writes.items():
            if text is None:
                continue
            source = next((op.path for op in ops if op.move_to == path and op.path != path), path)
            error = check(path, originals.get(source), text)
            if error:
                places = [str(h.line) for h in outcome.hunks if h.path == source]
                where = f"\nThe patch's hunks in this file start at line(s) {', '.join(places)}." if places else ""
                raise PatchError(f"apply_patch refused, nothing was written: the patch would introduce a syntax "
                                 f"error in {path}, which the file did not have before.\n{error}{where}\n"
                                 "Fix the patch (indentation, brackets, quotes) and send it again.")
    outcome.diff = "".join(diffs)
    return outcome


def _final_newline_change(before: str, after: str) -> str:
    """'final newline added' / 'final newline removed' when only that differs at the end, else ''."""
    had, has = before.endswith("\n") or not before, after.endswith("\n") or not after
    return "" if had == has else ("final newline added" if has else "final newline removed")


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
