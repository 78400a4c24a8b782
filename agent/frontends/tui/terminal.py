"""Keep what the user types while the TUI starts: the terminal is taken out of line mode at once.

Why: until Textual puts the terminal in raw mode (a second or so after launch,
after the imports), the tty is in line mode: it echoes keys onto the shell's
screen and turns every Enter (CR) into a newline (LF), which the TUI then reads
as Ctrl+J, "new line", so a task typed at once and sent with Enter was never
sent. Switching off canonical mode, echo and CR→LF translation as the very
first thing keeps each key as typed, in order, unread in the tty's buffer until
the app reads it. Nothing is flushed (TCSANOW), and the original settings are
restored on the way out, whatever happens in between.

Keys typed even earlier (while Python itself starts) already went through line
mode: they are read out here at once and handed to the app as `TypeAhead.text`,
byte for byte, and the app reads them exactly as Textual reads keys later (CR is
Enter, LF is Ctrl+J, a new line). Line mode had turned each Enter in them into
LF, and nothing can tell that LF from a Ctrl+J any more, so they stay new lines:
the text waits in the input, whole, for an Enter typed after the switch. The
switch comes as early as Python allows (see `agent/cli.py`), so only keys typed
before or within some tens of milliseconds of the launch are in that text.

This module imports nothing heavy; `agent/cli.py` uses it before importing Textual.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from dataclasses import dataclass
from typing import IO, Iterator

MAX_TYPE_AHEAD = 64 * 1024


@dataclass
class TypeAhead:
    """What `keys_held` did: whether the terminal left line mode, and the keys typed before it did."""

    held: bool = False
    text: str = ""


def _read_pending(fd: int) -> str:
    """Bytes already waiting in the tty (typed in line mode), without blocking, as they are."""
    data = b""
    while len(data) < MAX_TYPE_AHEAD and select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace")


@contextlib.contextmanager
def keys_held(stream: IO | None = None) -> Iterator[TypeAhead]:
    """While inside, keys typed are kept as typed (no echo, no CR→LF, no line buffering)."""
    stream = stream or sys.stdin
    try:
        import termios

        fd = stream.fileno()
        original = termios.tcgetattr(fd)
    except Exception:  # not a terminal, or no termios: nothing to hold
        yield TypeAhead()
        return
    held = [list(part) if isinstance(part, list) else part for part in original]
    held[0] &= ~termios.ICRNL  # iflag: CR stays CR, so Enter stays Enter
    held[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: no line buffering, no echo; ISIG kept (Ctrl+C works)
    held[6][termios.VMIN] = 1
    held[6][termios.VTIME] = 0
    try:
        termios.tcsetattr(fd, termios.TCSANOW, held)
    except termios.error:
        yield TypeAhead()
        return
    try:
        yield TypeAhead(True, _read_pending(fd))
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSANOW, original)
