"""Untrusted text wrapped so that it cannot pass for anything else, for the model and for a person.

Three wrappers, one idea: text a repository or a command wrote must not be able to end the block it is shown in.
- `Fence`: markers carrying a random nonce, for what the model reads as data (tool output in a summariser's view,
  test names and messages); the text cannot predict the marker.
- `repository_fence`: the labelled block that says whose words the repository's own files are (AGENTS.md, the repo
  map); a line imitating its close marker is escaped.
- `fenced`: a markdown code fence longer than any backtick run inside, for text a person's markdown renderer shows
  (an editor's tool cards, attached files).
Pure: text in, text out.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from gptoss_agent.agent.safe_text import INVISIBLE_MARKS, line


@dataclass(frozen=True)
class Fence:
    """Markers around untrusted text; the nonce makes them impossible for that text to reproduce."""

    nonce: str

    @classmethod
    def new(cls) -> "Fence":
        return cls(secrets.token_hex(8))

    @property
    def open(self) -> str:
        return f"<<data {self.nonce}>>"

    @property
    def close(self) -> str:
        return f"<</data {self.nonce}>>"

    def wrap(self, text: str) -> str:
        """`text` as labelled data; a (vanishingly unlikely) copy of the nonce inside is defused."""
        return f"{self.open}\n{text.replace(self.nonce, '[nonce]')}\n{self.close}"


# Blank-looking characters Python's \s does not match (zero-width, bidi marks, BOM, fillers): a line that
# starts with them and then the close marker reads to the model as the fence's end (A5 4).
_INVISIBLE = ("\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"  # format characters
              + "".join(sorted(INVISIBLE_MARKS)))
_BLANK = rf"[\s{_INVISIBLE}]"
_FENCE_LIKE = re.compile(rf"^({_BLANK}*)(<<<|>>>)(?={_BLANK}*(end{_BLANK}+)?repository[- ]content)",
                         re.IGNORECASE | re.MULTILINE)


def repository_fence(label: str, text: str) -> str:
    """`text` inside a repository-content block; a line imitating the fence is escaped with a backslash."""
    body = _FENCE_LIKE.sub(lambda m: m.group(1) + "\\" + m.group(2), text.strip("\n"))
    label = " ".join(label.split())[:200]
    return f"<<<repository-content: {label}\n{body}\n>>>end repository-content"


_BACKTICKS = re.compile(r"`+")


def fenced(text: str, info: str = "") -> str:
    """`text` in a code fence longer than any backtick run inside it (so it cannot be closed from within)."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{line(info)}\n{text}\n{fence}"
