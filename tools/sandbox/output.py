"""A command's output capped as head + tail, with the bytes left out counted and binary output named,
never shown."""

from __future__ import annotations


class CappedOutput:
    """Keeps the first and last half of the byte budget; counts what falls in between."""

    def __init__(self, budget: int) -> None:
        self._half = max(budget // 2, 1)
        self._head = bytearray()
        self._tail = bytearray()
        self.omitted = 0

    def add(self, chunk: bytes) -> None:
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > self._half:
                cut = len(self._tail) - self._half
                self.omitted += cut
                del self._tail[:cut]

    def text(self) -> tuple[str, bool]:
        raw = bytes(self._head) + bytes(self._tail)
        if raw and (raw.count(0) > len(raw) // 100 or _undecodable_share(raw) > 0.1):
            return f"[binary output: {len(raw) + self.omitted} bytes, not shown]", True
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if self.omitted:
            return f"{head}\n[… {self.omitted} bytes omitted …]\n{tail}", False
        return head + tail, False


def _undecodable_share(raw: bytes) -> float:
    text = raw.decode("utf-8", errors="replace")
    return text.count("\ufffd") / max(len(text), 1)
