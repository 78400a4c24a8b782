"""Re-indenting a hunk's added lines to where the file's own lines say they belong (pure).

When a hunk's context matches only after normalising whitespace, the patch's
indentation and the file's differ by some shift. If every matched line differs
by the same number of columns (for some tab width), the added lines are moved
by that shift and written in the file's own style (tabs or spaces); removed
lines decide the shift when there are any, since the model writes them like
the added ones. Anything less consistent is refused: guessing indentation is
how a one-line fix turns into a block moved out of its function.
"""

from __future__ import annotations

from typing import Callable

_TAB_WIDTHS = (4, 8, 2)


class IndentRefused(Exception):
    """A match was found but its added lines cannot be re-indented safely; the message says why."""


class Reindent:
    """The indentation shift that maps the patch's lines onto the file's, applied to the added lines."""

    def __init__(self, shift: int | None, width: int, tabs: bool, known: dict[str, str], detail: str):
        self.shift, self.width, self.tabs, self.known, self.detail = shift, width, tabs, known, detail

    @classmethod
    def for_match(cls, file, chunk, chosen) -> "Reindent":
        """The shift for one located hunk: `file` has `texts` and `indent_unit()`, `chunk` its `lines` as
        (tag, text), `chosen` maps hunk line indexes to file line indexes (`mapping`)."""
        context: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        for k, line in chosen.mapping.items():
            tag, mine = chunk.lines[k]
            theirs = file.texts[line]
            if mine.strip():
                (context if tag == " " else removed).append((leading(mine), leading(theirs)))
        pairs = removed + context
        if all(p == f for p, f in pairs):
            return cls(0, 4, False, {}, "")
        tabs = any("\t" in f for _, f in pairs)
        added = [leading(text) for tag, text in chunk.lines if tag == "+" and text.strip()]
        if not added:
            return cls(0, 4, tabs, {}, "")
        # The added lines are written like the removed ones; context is the fallback.
        group = removed or context
        solved = _solve(group) or (None if removed else _missing_prefix(context))
        if solved is None:
            which = "removed" if removed else "context"
            raise IndentRefused(f"the {which} lines' indentation differs from the file's by different amounts, so "
                                "the added lines cannot be re-indented safely")
        width, shift = solved
        if not removed and shift == 1 and not tabs:
            # Context one column short is a lost diff prefix far more often than a real shift:
            # put the added lines where the file's indentation step says they belong.
            unit = file.indent_unit()
            fits = [s for s in (0, 1) if unit < 2 or all((columns(a, width) + s) % unit == 0 for a in added)]
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
            lead = leading(text)
            if self.shift == 0 and not self.known and not self.tabs:
                return text
            if lead in self.known:
                return self.known[lead] + text[len(lead):]
            column = columns(lead, self.width) + self.shift
            if column < 0:
                raise IndentRefused("an added line would need negative indentation")
            if self.tabs:
                return "\t" * (column // self.width) + " " * (column % self.width) + text[len(lead):]
            return " " * column + text[len(lead):]

        return render, self.detail


def leading(text: str) -> str:
    return text[:len(text) - len(text.lstrip(" \t"))]


def columns(whitespace: str, width: int) -> int:
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
        shifts = {columns(f, width) - columns(p, width) for p, f in pairs}
        if len(shifts) == 1:
            found.append((width, shifts.pop()))
    if not found:
        return None
    return next((w, s) for w, s in found if s == 0) if any(s == 0 for _, s in found) else found[0]


def _missing_prefix(pairs: list[tuple[str, str]]) -> tuple[int, int] | None:
    """Context lines that lost their leading space: indented ones one column short, unindented ones equal."""
    shifts = {columns(f, 4) - columns(p, 4) for p, f in pairs}
    if shifts == {0, 1} and all(not f for p, f in pairs if columns(f, 4) == columns(p, 4)):
        return 4, 1
    return None
