"""A hostile inference server on loopback: rebinding, special ranges, floods, endless lines, stalls.

The server is a real TCP server in a thread that writes raw HTTP, so each test
decides exactly what the backend receives. Name resolution is injected: a
resolver that answers a LAN address first and a public one afterwards is DNS
rebinding, without touching the system's resolver.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import tracemalloc

import pytest

from gptoss_agent.agent.model.backends.http import (BackendSetupError, BackendUnreachableError, HTTPBackend,
                                                    HTTPBackendError, RemoteAddressError, StreamLimits, _split_safe,
                                                    is_lan_address, resolve_server)
from gptoss_agent.agent.model.harmony_stream import CALL, RETURN

STOP = {CALL, RETURN}
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def event(text: str, finish: str | None = None) -> bytes:
    return f"data: {json.dumps({'choices': [{'text': text, 'finish_reason': finish}]})}\n\n".encode()


class HostileServer:
    """Accepts connections on 127.0.0.1 and runs `self.script(sock)` for each request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.script = lambda sock: sock.sendall(HEADERS + event("<|channel|>final<|message|>ok", "stop"))
        self.finished = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                headers, body = _read_request(self.request)
                if not headers:
                    return  # the backend's reachability probe: connect, then close
                outer.requests.append((headers, body))
                try:
                    outer.script(self.request)
                except OSError:
                    pass  # the backend hung up: that is what bounded reading does
                finally:
                    outer.finished.set()

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _read_request(sock: socket.socket) -> tuple[dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return {}, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return headers, body


@pytest.fixture
def server():
    hostile = HostileServer()
    yield hostile
    hostile.close()


def generate(backend, *, max_tokens=1000, cancel=None):
    tokens: list[int] = []
    stats = backend.generate([1, 2, 3], stop=STOP, on_token=tokens.append, cancel=cancel or threading.Event(),
                             max_tokens=max_tokens)
    return tokens, stats


# ---------------------------------------------------------------------- addresses

def test_rebinding_cannot_move_later_requests(codec, server):
    """The name is resolved once; a later answer pointing at a public address is never asked for or used."""
    answers = [["127.0.0.1"], ["8.8.8.8"], ["8.8.8.8"]]
    asked: list[str] = []

    def resolver(host, port):
        asked.append(host)
        return answers[len(asked) - 1]

    backend = HTTPBackend(f"http://model.lan:{server.port}", codec, resolver=resolver)
    for _ in range(2):
        tokens, _ = generate(backend)
        assert codec.decode(tokens).startswith("<|channel|>final<|message|>ok")
    assert asked == ["model.lan"]  # one resolution for the whole run
    assert len(server.requests) == 2  # both requests reached the pinned loopback server
    assert all(headers["host"] == f"model.lan:{server.port}" for headers, _ in server.requests)


@pytest.mark.parametrize("address", ["198.18.0.1", "198.19.255.254", "100.64.0.1", "169.254.169.254", "224.0.0.251",
                                     "0.0.0.0", "240.0.0.1", "8.8.8.8", "fe80::1", "ff02::1", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "::"])
def test_special_purpose_and_public_ranges_are_not_the_lan(address):
    assert not is_lan_address(address)
    with pytest.raises(RemoteAddressError, match="outside the local network"):
        resolve_server("http://model.lan:8000", resolver=lambda host, port: [address])


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "10.0.0.5", "172.16.3.4", "172.31.255.1",
                                     "192.168.1.20", "::1", "fd12:3456::1", "::ffff:192.168.1.9"])
def test_loopback_and_private_ranges_are_the_lan(address):
    assert is_lan_address(address)
    assert resolve_server("http://model.lan:8000", resolver=lambda host, port: [address]).pinned == address


def test_one_public_answer_among_private_ones_is_refused_and_named():
    with pytest.raises(RemoteAddressError, match=r"198\.18\.0\.7 \(benchmarking range"):
        resolve_server("http://model.lan:8000", resolver=lambda host, port: ["192.168.1.2", "198.18.0.7"])


def test_unresolvable_and_unreachable_servers_are_set_up_errors(codec):
    def fails(host, port):
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(BackendUnreachableError, match="cannot resolve nowhere.lan"):
        HTTPBackend("http://nowhere.lan:8000", codec, resolver=fails)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(BackendSetupError, match="cannot reach the server"):
        HTTPBackend(f"http://127.0.0.1:{port}", codec)


# ---------------------------------------------------------------------- floods and stalls

def test_a_server_that_ignores_max_tokens_is_stopped_at_max_tokens(codec, server):
    def flood(sock):
        sock.sendall(HEADERS + event("<|channel|>final<|message|>"))
        while True:
            sock.sendall(event("word " * 50))

    server.script = flood
    started = time.perf_counter()
    tokens, stats = generate(HTTPBackend(f"http://127.0.0.1:{server.port}", codec), max_tokens=300)
    assert len(tokens) == 300 and stats.stop_reason == "max_tokens"
    assert time.perf_counter() - started < 20


def test_an_endless_sse_line_is_cut_at_the_line_cap_with_bounded_memory(codec, server):
    def endless_line(sock):
        sock.sendall(HEADERS + b"data: {\"choices\": [{\"text\": \"")
        while True:
            sock.sendall(b"A" * 65536)

    server.script = endless_line
    backend = HTTPBackend(f"http://127.0.0.1:{server.port}", codec, limits=StreamLimits(max_line_bytes=1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(HTTPBackendError, match="a line longer than 1048576 bytes"):
            generate(backend)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_a_response_over_the_byte_cap_is_cut(codec, server):
    def chatter(sock):
        sock.sendall(HEADERS)
        while True:
            sock.sendall(b": keep-alive padding " + b"." * 1000 + b"\n")

    server.script = chatter
    backend = HTTPBackend(f"http://127.0.0.1:{server.port}", codec, limits=StreamLimits(max_response_bytes=2 << 20))
    with pytest.raises(HTTPBackendError, match="more than 2097152 bytes in one response"):
        generate(backend)


def test_a_silent_server_hits_the_idle_timeout(codec, server):
    server.script = lambda sock: (sock.sendall(HEADERS), time.sleep(30))
    backend = HTTPBackend(f"http://127.0.0.1:{server.port}", codec, limits=StreamLimits(idle_timeout_s=0.5))
    started = time.perf_counter()
    with pytest.raises(HTTPBackendError, match="sent nothing for 0.5 s"):
        generate(backend)
    assert time.perf_counter() - started < 15


def test_a_dripping_server_hits_the_wall_clock_cap(codec, server):
    """One byte every 50 ms never trips an idle timeout; the step's wall-clock cap still ends it."""
    def drip(sock):
        sock.sendall(HEADERS + b"data: ")
        while True:
            sock.sendall(b"x")
            time.sleep(0.05)

    server.script = drip
    backend = HTTPBackend(f"http://127.0.0.1:{server.port}", codec,
                          limits=StreamLimits(step_timeout_s=1.0, idle_timeout_s=5.0))
    started = time.perf_counter()
    with pytest.raises(HTTPBackendError, match="within 1 s"):
        generate(backend)
    assert time.perf_counter() - started < 15


def test_cancel_ends_a_blocked_read_at_once(codec, server):
    server.script = lambda sock: (sock.sendall(HEADERS), time.sleep(30))
    backend = HTTPBackend(f"http://127.0.0.1:{server.port}", codec)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.perf_counter()
    tokens, stats = generate(backend, cancel=cancel)
    assert stats.stop_reason == "cancelled" and tokens == []
    assert time.perf_counter() - started < 15


def test_an_unterminated_marker_before_a_megabyte_of_text_stays_linear(codec, server):
    """`<|` that never closes used to be held back and rescanned with every chunk (quadratic)."""
    def marker_then_text(sock):
        sock.sendall(HEADERS + event("<|channel|>final<|message|><|") +
                     b"".join(event("abcdefgh " * 6) for _ in range(5_000)) + event("", "stop"))

    server.script = marker_then_text
    started = time.perf_counter()
    tokens, _ = generate(HTTPBackend(f"http://127.0.0.1:{server.port}", codec), max_tokens=10_000_000)
    assert time.perf_counter() - started < 30
    text = codec.decode(tokens)
    assert text.startswith("<|channel|>final<|message|><|abcdefgh ") and text.count("abcdefgh") == 30_000


def test_what_is_held_back_for_a_possible_marker_never_grows():
    ready, held = _split_safe("<|" + "a" * 1_000_000)
    assert held == "" and len(ready) == 1_000_002
    ready, held = _split_safe("text " * 100_000 + "<|ret")
    assert held == "<|ret"


@pytest.mark.parametrize("payload", [b"[" * 100_000 + b"]" * 100_000, b"not json at all", b"[1, 2, 3]"])
def test_malformed_events_are_a_clear_error(codec, server, payload):
    server.script = lambda sock: sock.sendall(HEADERS + b"data: " + payload + b"\n\n")
    with pytest.raises(HTTPBackendError, match="sent an event that is not"):
        generate(HTTPBackend(f"http://127.0.0.1:{server.port}", codec))


def test_wrong_types_in_events_are_ignored_not_a_crash(codec, server):
    server.script = lambda sock: sock.sendall(
        HEADERS + b'data: {"choices": "nope", "usage": [1]}\n\n' + b'data: {"choices": [{"text": 42}]}\n\n'
        + event("<|channel|>final<|message|>fine", "stop"))
    tokens, stats = generate(HTTPBackend(f"http://127.0.0.1:{server.port}", codec))
    assert codec.decode(tokens) == "<|channel|>final<|message|>fine<|return|>"
