"""Untrusted text cut into pieces the tokenizer can always handle, in linear time.

The o200k tokenizer first splits text with a regular expression, then runs
byte-pair merging inside each piece. Both steps are super-linear in the length
of one piece, and openai-harmony's regex engine panics (a Rust
`PanicException`, which is not an `Exception`) on a piece of about a million
characters: 100,000 `=` cost 7 s, a million crash the process. A piece is long
only when the text has no place where the split pattern must cut anyway, so a
file of one long line of `=` or of random letters is the dangerous case.

`chunks` cuts text only where no o200k piece can straddle the cut, so encoding
chunk by chunk gives exactly the tokens of encoding the whole text. A stretch
with no such place longer than `MAX_RUN` characters is cut every `MAX_RUN`
characters: those cuts are where counting becomes approximate (a token or so
per cut, on text no person writes), and they are what keeps the work linear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

MAX_RUN = 128
"""Longest stretch handed to the tokenizer without a natural cut (characters)."""

GROUP = 8192
"""Characters of naturally cut text encoded per call (fewer calls, same tokens)."""

# Places no o200k piece crosses:
# - after the last newline of a run of whitespace that is followed by text, except
#   right before a `/` (a piece may end in `[\r\n/]*`): the piece `\s*[\r\n]+` and
#   the tail `[\r\n/]*` both stop there, and indentation starts a new piece;
# - before a space that follows a non-space (a piece only ever *starts* with a space).
_NATURAL_CUT = re.compile(r"(?<=\n)(?=[^\s/]|[^\S\r\n]+\S)|(?<=\S)(?= )")


@dataclass(frozen=True)
class Chunk:
    """A slice of the text; `exact` is False where it was cut at an arbitrary place."""

    text: str
    exact: bool


def chunks(text: str, *, max_run: int = MAX_RUN, group: int = GROUP) -> Iterator[Chunk]:
    """Cut `text` into chunks to encode one by one; concatenated they are the text again."""
    if len(text) <= max_run:
        if text:
            yield Chunk(text, True)
        return
    pending_start = pending_end = 0  # naturally cut text not yet yielded: text[pending_start:pending_end]
    position = 0
    for cut in _cuts(text):
        if cut - position > max_run:
            if pending_end > pending_start:
                yield Chunk(text[pending_start:pending_end], True)
            for start in range(position, cut, max_run):
                yield Chunk(text[start:min(start + max_run, cut)], False)
            pending_start = pending_end = cut
        else:
            if cut - pending_start > group and pending_end > pending_start:
                yield Chunk(text[pending_start:pending_end], True)
                pending_start = pending_end
            pending_end = cut
        position = cut
    if pending_end > pending_start:
        yield Chunk(text[pending_start:pending_end], True)


def needs_chunking(text: str, *, max_run: int = MAX_RUN) -> bool:
    """True when some stretch of `text` has no natural cut for more than `max_run` characters."""
    if len(text) <= max_run:
        return False
    position = 0
    for cut in _cuts(text):
        if cut - position > max_run:
            return True
        position = cut
    return False


def _cuts(text: str) -> Iterator[int]:
    """Every natural cut in order, then the end of the text."""
    for match in _NATURAL_CUT.finditer(text):
        if match.start():
            yield match.start()
    yield len(text)
