"""Drive a program in a real pseudo-terminal: type keys as a person would, read every byte it writes.

Pilot tests run Textual without a terminal; these sessions go through the real
driver, the tty line discipline and the real escape-sequence output, which is
where lost keystrokes and terminal injection happen. Used by tests/tui,
tests/security/test_terminal_*.py and bench/tui.py. Standard library only.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Sequence

ALT_SCREEN = b"\x1b[?1049h"


class PtySession:
    """One child process on the slave side of a new pty of `columns`×`rows`."""

    live: "set[PtySession]" = set()  # sessions not closed yet: a failed test must not leave its TUI running

    def __init__(self, argv: Sequence[str], *, cwd: Path | str, env: dict[str, str] | None = None,
                 columns: int = 100, rows: int = 30) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows),
                       **(env or {})}
        environment.pop("TEXTUAL", None)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(list(argv), cwd=str(cwd), env=environment, stdin=slave, stdout=slave,
                                        stderr=slave, start_new_session=True, close_fds=True)
        os.close(slave)
        PtySession.live.add(self)
        self.output = bytearray()
        self.stamps: list[tuple[float, int]] = []  # (seconds since start, output length after that read)

    def send(self, data: bytes | str) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def wait_until_out_of_line_mode(self, timeout: float = 30.0) -> float:
        """Wait until the program has switched the terminal out of line mode (ICANON off); seconds since start.

        From then on each key reaches it as typed (Enter stays CR, Ctrl+J stays LF)."""
        deadline = time.perf_counter() + timeout
        while termios.tcgetattr(self.master)[3] & termios.ICANON:
            if time.perf_counter() > deadline:
                raise AssertionError(f"the terminal was still in line mode after {timeout}s")
            self._read_once(0.005)
        return time.perf_counter() - self.started

    def read_for(self, seconds: float) -> None:
        """Collect output for `seconds` (or until the child closes the terminal)."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if not self._read_once(deadline - time.perf_counter()):
                return

    def wait_for(self, needle: bytes, timeout: float = 30.0, *, after: int = 0) -> float:
        """Read until `needle` appears in the output (after offset `after`); seconds since start."""
        deadline = time.perf_counter() + timeout
        while needle not in self.output[after:]:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not self._read_once(remaining):
                tail = bytes(self.output[-600:])
                raise AssertionError(f"{needle!r} not seen in {timeout}s; last output: {tail!r}")
        return self.first_seen(needle, after=after)

    def first_seen(self, needle: bytes, *, after: int = 0) -> float:
        """When the output first held `needle` (seconds after the child started)."""
        index = self.output.find(needle, after)
        end = index + len(needle)
        return next(stamp for stamp, length in self.stamps if length >= end)

    def _read_once(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed its side
            return False
        if not chunk:
            return False
        self.output.extend(chunk)
        self.stamps.append((time.perf_counter() - self.started, len(self.output)))
        # Answer the terminal queries Textual sends (cursor position), as a real terminal would.
        if b"\x1b[6n" in chunk:
            self.send(b"\x1b[1;1R")
        return True

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the child has used so far: a figure that does not depend on machine load."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self, timeout: float = 10.0) -> int | None:
        """Wait for the child to leave (killing it if it does not), then close the terminal."""
        try:
            deadline = time.perf_counter() + timeout
            while self.process.poll() is None and time.perf_counter() < deadline:
                self._read_once(0.05)
            if self.process.poll() is None:
                self.process.kill()
            return self.process.wait(5)
        finally:
            PtySession.live.discard(self)
            os.close(self.master)

    def screen_text(self) -> str:
        """The output with escape sequences removed: enough to check what text was drawn."""
        import re

        text = bytes(self.output).decode("utf-8", errors="replace")
        return re.sub(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78MDEc])", "", text)


def kill_leftovers() -> None:
    """Kill every session a test left open (its assertion failed before it closed it)."""
    for session in list(PtySession.live):
        try:
            os.killpg(session.process.pid, 9)
        except OSError:
            pass
        session.process.wait(5)
        PtySession.live.discard(session)
        try:
            os.close(session.master)
        except OSError:
            pass
