"""Bounded host work on hostile model-side input: time and peak memory, against an ordinary baseline.

1. Counting (and rendering as a tool result) a 1 MB single-line file, against 1 MB of ordinary source.
   For scale, the unchunked library on a tenth of the hostile line (the full line makes it panic).
2. A LAN server that ignores max_tokens and streams forever, against one that stops at max_tokens.
3. A server that sends one 10 MB SSE line, against a normal 1 MB stream of events.

Peak memory is the Python heap peak (tracemalloc) during the measured call, in a separate pass so
tracing does not distort the times. Goal (issue 11): each at most a few seconds and a few hundred MB.
"""

from __future__ import annotations

import json
import random
import socket
import socketserver
import string
import threading
import time
import tracemalloc

from _common import ROOT, canonical_vocab_dir

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def measure(fn) -> tuple[float, float, object]:
    """(seconds, peak MiB, result) of one call; the peak from a second, traced call."""
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return elapsed, peak, result


def event(text: str, finish: str | None = None) -> bytes:
    return f"data: {json.dumps({'choices': [{'text': text, 'finish_reason': finish}]})}\n\n".encode()


class Server:
    """A loopback server whose reply is `self.script(sock)`."""

    def __init__(self) -> None:
        outer = self
        self.script = None

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                while len(body) < length:
                    body += self.request.recv(65536)
                try:
                    outer.script(self.request)
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def flood(sock: socket.socket) -> None:
    sock.sendall(HEADERS + event("<|channel|>final<|message|>"))
    while True:
        sock.sendall(event("word " * 50))


def polite(tokens: int):
    def script(sock: socket.socket) -> None:
        sock.sendall(HEADERS + event("<|channel|>final<|message|>") +
                     b"".join(event(" word") for _ in range(tokens)) + event("", "stop") + b"data: [DONE]\n\n")
    return script


def one_line(size: int):
    def script(sock: socket.socket) -> None:
        sock.sendall(HEADERS + b'data: {"choices": [{"text": "')
        block = b"A" * 65536
        for _ in range(size // len(block)):
            sock.sendall(block)
        sock.sendall(b'"}]}\n\n')
    return script


def many_lines(size: int):
    def script(sock: socket.socket) -> None:
        line = event("x" * 1000)
        sock.sendall(HEADERS + line * (size // len(line)) + event("", "stop"))
    return script


def generate(backend, max_tokens: int):
    tokens: list[int] = []
    try:
        stats = backend.generate([1, 2, 3], stop={200_002, 200_012}, on_token=tokens.append,
                                 cancel=threading.Event(), max_tokens=max_tokens)
        return f"{len(tokens)} tokens, {stats.stop_reason}"
    except Exception as exc:  # noqa: BLE001 - the refusal is the measured outcome
        return f"refused: {str(exc)[:70]}"


def main() -> None:
    from gptoss_agent.agent.model.backends.http import HTTPBackend
    from gptoss_agent.agent.model.harmony import HarmonyCodec

    codec = HarmonyCodec.load(canonical_vocab_dir())
    source = "".join(p.read_text() for p in sorted((ROOT / "agent").rglob("*.py")))
    ordinary = (source * (1_000_000 // len(source) + 1))[:1_000_000]
    hostile = {
        "1M '='": "=" * 1_000_000,
        "1M spaces": " " * 1_000_000,
        "1M random letters": "".join(random.Random(1).choice(string.ascii_letters) for _ in range(1_000_000)),
    }

    print("1. counting + rendering a 1 MB file as a tool result")
    base_t, base_m, base_n = measure(lambda: (codec.count(ordinary),
                                              codec.render_tool_result("functions.x", ordinary))[0])
    print(f"   baseline 1 MB ordinary source: {base_t:.3f} s, peak {base_m:.0f} MiB, {base_n} tokens")
    for name, text in hostile.items():
        t, m, n = measure(lambda: (codec.count(text), codec.render_tool_result("functions.x", text))[0])
        print(f"   {name + ' (one line)':<30} {t:.3f} s ({t / base_t:.2f}× baseline), peak {m:.0f} MiB "
              f"({m / max(base_m, 1e-9):.2f}×), {n} tokens")
    tenth = "=" * 100_000
    started = time.perf_counter()
    codec._encoding.encode(tenth, allowed_special=set(), disallowed_special=())
    print(f"   for scale: the unchunked library on 100,000 '=' (a tenth): {time.perf_counter() - started:.2f} s; "
          "on the full line it panics")

    server = Server()
    backend = HTTPBackend(server.url, codec)
    print("2. a server streaming past max_tokens (4,096)")
    server.script = polite(4000)
    base_t, base_m, outcome = measure(lambda: generate(backend, 4096))
    print(f"   baseline, a server that stops by itself after 4,000: {base_t:.3f} s, peak {base_m:.1f} MiB ({outcome})")
    server.script = flood
    t, m, outcome = measure(lambda: generate(backend, 4096))
    print(f"   flooding server: {t:.3f} s ({t / base_t:.2f}×), peak {m:.1f} MiB ({m / base_m:.2f}×) ({outcome})")

    print("3. one 10 MB SSE line (line cap 1 MiB)")
    server.script = many_lines(1 << 20)
    base_t, base_m, outcome = measure(lambda: generate(backend, 10_000_000))
    print(f"   baseline, 1 MB in ordinary events: {base_t:.3f} s, peak {base_m:.1f} MiB ({outcome})")
    server.script = one_line(10 << 20)
    t, m, outcome = measure(lambda: generate(backend, 10_000_000))
    print(f"   10 MB line: {t:.3f} s ({t / base_t:.2f}×), peak {m:.1f} MiB ({m / base_m:.2f}×) ({outcome})")


if __name__ == "__main__":
    main()
