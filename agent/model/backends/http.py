"""A LAN inference server (vLLM, llama.cpp server, Ollama) as a backend.

The server is driven with raw completions (`/v1/completions`, the prompt as
Harmony text with its special tokens), so Harmony parsing stays ours and no
server-side chat template or tool-call parser gets between the model and us.

The server is untrusted like the model it serves:
- Its name is resolved once, when the backend is built; the address is checked
  (loopback and private ranges only, unless the user passed `--allow-remote`)
  and every request connects to that pinned address, with the name kept in the
  Host header. A DNS answer that changes later (rebinding) changes nothing.
- Special-purpose ranges are not the LAN: 198.18.0.0/15 (what fake-IP proxies
  hand out for every name), 100.64.0.0/10 (carrier NAT), link-local
  (169.254/16, fe80::/10: cloud metadata lives there), multicast, 0/8, 240/4.
- What it sends is bounded: `max_tokens` is enforced here (we stop reading),
  one SSE line and one response have byte caps, each step has a wall-clock cap
  and the connection an idle timeout. Each bound ends the step with a clear
  error instead of a process that grows until the machine gives out.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, Collection, Sequence
from urllib.parse import urlsplit

from gptoss_agent.agent.model.harmony import HarmonyCodec
from gptoss_agent.agent.model.harmony_stream import CALL, RETURN
from gptoss_agent.agent.protocols import TokenCallback
from gptoss_agent.agent.types import GenerationStats

Resolver = Callable[[str, int], Sequence[str]]
"""host, port → IP address strings, in preference order (injectable: tests simulate rebinding)."""

# The local network: loopback and the private ranges, nothing else.
LAN_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"))

# Named so a refusal says why an address that looks local is not.
_SPECIAL_RANGES = tuple((ipaddress.ip_network(n), why) for n, why in (
    ("198.18.0.0/15", "benchmarking range, used by fake-IP proxies for every name"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("169.254.0.0/16", "link-local, where cloud metadata services live"),
    ("fe80::/10", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("0.0.0.0/8", "'this network'"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("64:ff9b::/96", "NAT64, a public IPv4 address in disguise"),
))

_MAX_MARKER = 32  # longer than any `<|…|>` special token's text (`<|reserved_201087|>` is 19)


class HTTPBackendError(RuntimeError):
    """The server answered something unusable, too much, or too slowly."""


class BackendSetupError(HTTPBackendError):
    """The backend cannot be used at all: the CLI reports this once and exits 2."""


class BackendUnreachableError(BackendSetupError):
    """The server's name does not resolve, or nothing accepts a connection at its address."""


class RemoteAddressError(BackendSetupError, ValueError):
    """The server is outside the local network and --allow-remote was not given."""


@dataclass(frozen=True)
class StreamLimits:
    """Bounds on one generation from the server."""

    max_line_bytes: int = 1 << 20  # one SSE line
    max_response_bytes: int = 64 << 20  # one whole response
    step_timeout_s: float = 1800.0  # wall clock for one generate call
    idle_timeout_s: float = 300.0  # no byte at all for this long (prompt processing on a slow server)
    connect_timeout_s: float = 10.0


@dataclass(frozen=True)
class ServerAddress:
    """A server URL with its address resolved once and pinned."""

    url: str
    scheme: str
    host: str
    port: int
    base_path: str
    pinned: str  # the IP every request connects to


def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer for `host`, addresses in order, duplicates removed."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_lan_address(address: str) -> bool:
    """True for loopback and private addresses (RFC 1918, IPv6 ULA), including IPv4-mapped ones."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in LAN_NETWORKS if network.version == ip.version)


def _why_not_lan(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return f"{address} (not an IP address)"
    for network, why in _SPECIAL_RANGES:
        if network.version == ip.version and ip in network:
            return f"{address} ({why})"
    return address


def resolve_server(url: str, *, allow_remote: bool = False, resolver: Resolver = system_resolver) -> ServerAddress:
    """Parse the URL, resolve its host once, check every address, and pin the first."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise BackendSetupError(f"not a server URL: {url!r} (expected http://HOST:PORT)")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]  # a literal address: nothing to resolve
    except ValueError:
        try:
            addresses = [str(a) for a in resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            raise BackendUnreachableError(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise BackendUnreachableError(f"cannot resolve {host}: no address")
    if not allow_remote:
        outside = [_why_not_lan(a) for a in addresses if not is_lan_address(a)]
        if outside:
            raise RemoteAddressError(
                f"{host} resolves to {', '.join(outside)}, outside the local network; gptoss-agent "
                "only talks to loopback or private addresses. Pass --allow-remote to override.")
    return ServerAddress(url, parts.scheme, host, port, parts.path.rstrip("/"), addresses[0])


def check_address(url: str, *, allow_remote: bool = False,
                  resolver: Resolver = system_resolver) -> tuple[str, int, str]:
    """(host, port, base path) of a server URL that is on this machine or the LAN."""
    address = resolve_server(url, allow_remote=allow_remote, resolver=resolver)
    return address.host, address.port, address.base_path


class HTTPBackend:
    """Streams completions from an OpenAI-compatible server on the local network."""

    def __init__(self, url: str, codec: HarmonyCodec, *, allow_remote: bool = False, model: str | None = None,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                 timeout_s: float | None = None, limits: StreamLimits | None = None,
                 resolver: Resolver = system_resolver, probe: bool = True) -> None:
        self.url = url
        self.address = resolve_server(url, allow_remote=allow_remote, resolver=resolver)
        limits = limits or StreamLimits()
        if timeout_s is not None:
            limits = StreamLimits(limits.max_line_bytes, limits.max_response_bytes, limits.step_timeout_s,
                                  timeout_s, min(limits.connect_timeout_s, timeout_s))
        self.limits = limits
        self._codec = codec
        self._model = model
        self._sampling = {"temperature": temperature, "top_p": top_p}
        if seed is not None:
            self._sampling["seed"] = seed
        if probe:
            self._probe()

    def _probe(self) -> None:
        """Fail at set-up, with one message, when nothing listens at the pinned address."""
        try:
            socket.create_connection((self.address.pinned, self.address.port),
                                     timeout=self.limits.connect_timeout_s).close()
        except OSError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: BaseException) -> BackendUnreachableError:
        where = self.address.pinned if self.address.pinned == self.address.host else \
            f"{self.address.host} = {self.address.pinned}"
        return BackendUnreachableError(f"cannot reach the server at {self.url} ({where}, port "
                                       f"{self.address.port}): {exc.strerror or exc}"
                                       if isinstance(exc, OSError) else f"cannot reach {self.url}: {exc}")

    def generate(self, prompt: Sequence[int], *, stop: Collection[int], on_token: TokenCallback,
                 cancel: threading.Event, max_tokens: int) -> GenerationStats:
        body = {"prompt": self._codec.decode(prompt), "max_tokens": max_tokens, "stream": True,
                "skip_special_tokens": False, "spaces_between_special_tokens": False, **self._sampling}
        if self._model:
            body["model"] = self._model
        started = time.perf_counter()
        connection = _connection(self.address, self.limits)
        try:
            connection.connect()
        except OSError as exc:
            raise self._unreachable(exc) from None
        watchdog = _Watchdog(connection.sock, cancel, self.limits.step_timeout_s)
        try:
            connection.request("POST", self.address.base_path + "/v1/completions", json.dumps(body),
                               {"Content-Type": "application/json", "Accept": "text/event-stream"})
            response = connection.getresponse()
            if response.status != 200:
                raise HTTPBackendError(f"{self.url} answered {response.status}: {response.read(500)!r}")
            result = self._stream(response, len(prompt), started, stop, on_token, cancel, max_tokens)
            if watchdog.fired is None:
                return result
            raise HTTPBackendError("the stream was cut by the watchdog")
        except (OSError, http.client.HTTPException, HTTPBackendError) as exc:
            if watchdog.fired == "cancelled":
                return GenerationStats(len(prompt), 0, len(prompt), 0, time.perf_counter() - started, 0.0,
                                       "cancelled")
            if watchdog.fired == "deadline":
                raise HTTPBackendError(f"{self.url} did not finish the step within "
                                       f"{self.limits.step_timeout_s:g} s (the wall-clock cap per step)") from None
            if isinstance(exc, HTTPBackendError):
                raise
            if isinstance(exc, TimeoutError):
                raise HTTPBackendError(f"{self.url} sent nothing for {self.limits.idle_timeout_s:g} s "
                                       "(idle timeout)") from None
            raise HTTPBackendError(f"cannot talk to {self.url}: {exc}") from exc
        finally:
            watchdog.stop()
            connection.close()

    def _stream(self, response, prompt_tokens: int, started: float, stop: Collection[int],
                on_token: TokenCallback, cancel: threading.Event, max_tokens: int) -> GenerationStats:
        parser = self._codec.parser()
        pending = ""
        generated, reason, first = 0, "max_tokens", None
        cached = 0

        def stats(why: str) -> GenerationStats:
            now = time.perf_counter()
            return GenerationStats(prompt_tokens, cached, prompt_tokens - cached, generated,
                                   (first or now) - started, now - (first or now), why)

        for payload in _events(response, self.limits, self.url):
            if cancel.is_set():
                return stats("cancelled")
            if payload == "[DONE]":
                break
            event = _decode_event(payload, self.url)
            usage = event.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens_details"), dict):
                value = usage["prompt_tokens_details"].get("cached_tokens")
                cached = value if isinstance(value, int) and 0 <= value <= prompt_tokens else cached
            choices = event.get("choices")
            choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
            text = choice.get("text")
            pending += text if isinstance(text, str) else ""
            ready, pending = _split_safe(pending)
            for token in self._codec.encode_with_specials(ready) if ready else ():
                if generated >= max_tokens:  # the server ignored max_tokens: stop reading here
                    return stats("max_tokens")
                first = first or time.perf_counter()
                generated += 1
                requested = on_token(token)
                parser.feed(token)
                if token in stop or requested:
                    return stats("stop_token" if token in stop else "requested")
            if choice.get("finish_reason") == "stop":
                reason = "stop_token"
        if reason == "stop_token":
            # Servers end on <|call|> / <|return|> without sending them: say which it was.
            header = parser.current_header
            token = CALL if header is not None and header.recipient else RETURN
            generated += 1
            on_token(token)
        return stats(reason)

    def close(self) -> None:
        """Connections are per request; nothing to release."""


def _events(response, limits: StreamLimits, url: str):
    """The `data:` payloads of an SSE stream, each line and the whole response capped in bytes."""
    total = 0
    while True:
        raw = response.readline(limits.max_line_bytes + 1)
        if not raw:
            return
        total += len(raw)
        if len(raw) > limits.max_line_bytes:
            raise HTTPBackendError(f"{url} sent a line longer than {limits.max_line_bytes} bytes; stopped reading")
        if total > limits.max_response_bytes:
            raise HTTPBackendError(f"{url} sent more than {limits.max_response_bytes} bytes in one response; "
                                   "stopped reading")
        line = raw.decode("utf-8", errors="replace").strip()
        if line.startswith("data:"):
            yield line[5:].strip()


def _decode_event(payload: str, url: str) -> dict:
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        raise HTTPBackendError(f"{url} sent an event that is not JSON: {payload[:200]!r}") from None
    if not isinstance(event, dict):
        raise HTTPBackendError(f"{url} sent an event that is not a JSON object: {payload[:200]!r}")
    return event


def _split_safe(text: str) -> tuple[str, str]:
    """Hold back a trailing, possibly incomplete `<|…|>` marker until the next chunk.

    Only the last few characters can start a marker, so this is constant work
    per chunk, and what is held back never grows: an unterminated `<|` followed
    by endless text is released as text once it is longer than any marker."""
    cut = text.rfind("<|", max(0, len(text) - _MAX_MARKER))
    if cut != -1 and "|>" not in text[cut:]:
        return text[:cut], text[cut:]
    return text, ""


def _connection(address: ServerAddress, limits: StreamLimits) -> http.client.HTTPConnection:
    cls = _PinnedHTTPSConnection if address.scheme == "https" else _PinnedHTTPConnection
    return cls(address.host, address.port, timeout=limits.idle_timeout_s, pinned=address.pinned,
               connect_timeout=limits.connect_timeout_s)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the pinned address; the Host header still names the server."""

    def __init__(self, host: str, port: int, *, timeout: float, pinned: str, connect_timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pinned = pinned
        self._connect_timeout = connect_timeout

    def _open_socket(self) -> socket.socket:
        sock = socket.create_connection((self._pinned, self.port), self._connect_timeout)
        sock.settimeout(self.timeout)  # from here on: the idle timeout
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        if self.sock is None:
            self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS; the certificate is checked against the server's name, not the address."""

    default_port = 443

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._context = ssl.create_default_context()

    def connect(self) -> None:
        if self.sock is None:
            self.sock = self._context.wrap_socket(self._open_socket(), server_hostname=self.host)


class _Watchdog:
    """Ends a blocked read when the user cancels or the step's wall-clock cap passes.

    A socket timeout only bounds the gap between two bytes; a server that drips
    one byte a second never trips it. Shutting the socket down from here makes
    the blocked read return at once, whatever the server does."""

    def __init__(self, sock: socket.socket, cancel: threading.Event, limit_s: float) -> None:
        # The socket itself, not the connection: http.client hands the socket over to
        # the response (and forgets it) when the server says `Connection: close`.
        self.fired: str | None = None
        self._sock = sock
        self._cancel = cancel
        self._deadline = time.monotonic() + limit_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="http-backend-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if self._cancel.is_set():
                self._fire("cancelled")
                return
            if time.monotonic() > self._deadline:
                self._fire("deadline")
                return

    def _fire(self, why: str) -> None:
        self.fired = why
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
