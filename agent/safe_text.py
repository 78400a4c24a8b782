"""The one neutraliser for text the model or a repository wrote, before a person sees it.

Why: a terminal obeys control sequences wherever they come from. A file or a
model answer holding ESC ] 52 writes the clipboard, ESC [ 2 J clears the screen,
a carriage return or cursor movement overwrites what an approval shows, SGR 8
hides the rest of a command, bidi overrides reorder it and zero-width characters
make two different strings look alike. So every human-facing string from an
untrusted source goes through here, and what cannot be shown safely is shown as
a visible escape instead of being obeyed or silently dropped: a person sees
that something was there (`\\x1b`, `<U+202E>`) and the command they approve is
still the command that runs.

Only our own styling (Rich/Textual styles, our own SGR codes) reaches the
terminal; this module never emits control characters itself.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Iterator

# Characters that show nothing yet are not format characters (which are escaped by category below): Hangul
# fillers and the halfwidth filler (letters), and marks: the combining grapheme joiner, Khmer's inherent
# vowels, Mongolian and Unicode variation selectors (sixteen of those spell any byte two hex digits at a
# time, and Python accepts them in identifiers). agent/fences.py counts them as blank too.
INVISIBLE_MARKS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f"
                            + "".join(map(chr, range(0xFE00, 0xFE10))))
# ... and, for a person reading, the braille blank, which looks like a space
_INVISIBLE = INVISIBLE_MARKS | {"\u2800"}
# Categories escaped wholesale: controls (C0, DEL, C1), format characters (bidi
# overrides and isolates, zero-width space/joiners, soft hyphen, word joiner,
# BOM, tag characters), lone surrogates, and line/paragraph separators.
_ESCAPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


@lru_cache(maxsize=4096)
def _must_escape(char: str) -> bool:
    if char in _INVISIBLE:
        return True
    if "\U000e0100" <= char <= "\U000e01ef":  # variation selectors supplement: invisible, used to smuggle bytes
        return True
    return unicodedata.category(char) in _ESCAPED_CATEGORIES


def escape_of(char: str) -> str:
    """How one unsafe character is shown: `\\x1b` for controls, `<U+202E>` for the rest."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(char, f"\\x{code:02x}")
    return f"<U+{code:04X}>"


def spans(text: str, *, multiline: bool = False, strict: bool = False) -> Iterator[tuple[str, bool]]:
    """The text as (piece, is_escape) pairs, so a renderer can style escapes apart from real text.

    With `multiline`, newlines and tabs stay (CR LF counts as a newline); a lone
    CR is escaped, since it moves the cursor back over what was written. With
    `strict` (commands a person approves), spaces other than the ASCII space are
    escaped too: `a<U+00A0>b` is one argument that would look like two.
    """
    plain: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if multiline and char == "\r" and text.startswith("\n", index + 1):
            index += 1
            continue
        if _keeps(char, multiline, strict):
            plain.append(char)
        else:
            if plain:
                yield "".join(plain), False
                plain = []
            yield escape_of(char), True
        index += 1
    if plain:
        yield "".join(plain), False


def _keeps(char: str, multiline: bool, strict: bool) -> bool:
    if char == " " or (multiline and char in "\n\t"):
        return True
    if char.isprintable():
        return not _must_escape(char)
    # Not printable: controls, format characters, and spaces other than " ".
    return not strict and unicodedata.category(char) == "Zs"


def visible(text: str, *, multiline: bool = False, strict: bool = False) -> str:
    """`text` with every control, bidi, zero-width and other invisible character made a visible escape."""
    if text.isascii() and text.isprintable():  # the common case, fast
        return text
    return "".join(piece for piece, _ in spans(text, multiline=multiline, strict=strict))


def line(text: object) -> str:
    """A one-line preview: newlines, tabs and every control character escaped."""
    return visible(str(text), multiline=False)


def block(text: object) -> str:
    """A multi-line block: newlines and tabs kept, every other control character escaped."""
    return visible(str(text), multiline=True)


def command(text: object) -> str:
    """A command a person approves: like `block`, and every space other than " " escaped too."""
    return visible(str(text), multiline=True, strict=True)


def hidden_count(text: str, *, strict: bool = False) -> int:
    """How many characters of `text` are shown as escapes in a block (a warning counts them for the user)."""
    return sum(1 for _, escaped in spans(text, multiline=True, strict=strict) if escaped)
