"""A LAN inference server (vLLM, llama.cpp server, Ollama) as a backend.

The server is driven with raw completions (`/v1/completions`, the prompt as
Harmony text with its special tokens), so Harmony parsing stays ours and no
server-side chat template or tool-call parser gets between the model and us.
Only loopback and private addresses are allowed unless the user says
otherwise, loudly (`--allow-remote`).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
from typing import Collection, Sequence
from urllib.parse import urlsplit

from agent.harmony import HarmonyCodec
from agent.harmony_stream import CALL, RETURN
from agent.protocols import TokenCallback
from agent.types import GenerationStats


class RemoteAddressError(ValueError):
    """The server is outside the local network and --allow-remote was not given."""


class HTTPBackendError(RuntimeError):
    """The server could not be reached or answered something unusable."""


def check_address(url: str, *, allow_remote: bool = False) -> tuple[str, int, str]:
    """(host, port, base path) of a server URL that is on this machine or the LAN."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPBackendError(f"not a server URL: {url!r} (expected http://HOST:PORT)")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not allow_remote:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
        except socket.gaierror as exc:
            raise HTTPBackendError(f"cannot resolve {host}: {exc}") from None
        public = sorted(a for a in addresses if not _is_local(a))
        if public:
            raise RemoteAddressError(
                f"{host} resolves to {', '.join(public)}, outside the local network; gptoss-agent "
                "only talks to loopback or private addresses. Pass --allow-remote to override.")
    return host, port, parts.path.rstrip("/")


def _is_local(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_loopback or ip.is_private or ip.is_link_local


class HTTPBackend:
    """Streams completions from an OpenAI-compatible server on the local network."""

    def __init__(self, url: str, codec: HarmonyCodec, *, allow_remote: bool = False, model: str | None = None,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                 timeout_s: float = 600.0) -> None:
        self.url = url
        self._host, self._port, self._base = check_address(url, allow_remote=allow_remote)
        self._https = url.startswith("https")
        self._codec = codec
        self._model = model
        self._sampling = {"temperature": temperature, "top_p": top_p}
        if seed is not None:
            self._sampling["seed"] = seed
        self._timeout = timeout_s

    def generate(self, prompt: Sequence[int], *, stop: Collection[int], on_token: TokenCallback,
                 cancel: threading.Event, max_tokens: int) -> GenerationStats:
        body = {"prompt": self._codec.decode(prompt), "max_tokens": max_tokens, "stream": True,
                "skip_special_tokens": False, "spaces_between_special_tokens": False, **self._sampling}
        if self._model:
            body["model"] = self._model
        started = time.perf_counter()
        connection = self._connect()
        try:
            connection.request("POST", self._base + "/v1/completions", json.dumps(body),
                               {"Content-Type": "application/json", "Accept": "text/event-stream"})
            response = connection.getresponse()
            if response.status != 200:
                raise HTTPBackendError(f"{self.url} answered {response.status}: {response.read(500)!r}")
            return self._stream(response, len(prompt), started, stop, on_token, cancel, max_tokens)
        except (OSError, http.client.HTTPException) as exc:
            raise HTTPBackendError(f"cannot talk to {self.url}: {exc}") from exc
        finally:
            connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def _stream(self, response, prompt_tokens: int, started: float, stop: Collection[int],
                on_token: TokenCallback, cancel: threading.Event, max_tokens: int) -> GenerationStats:
        parser = self._codec.parser()
        pending = ""
        generated, reason, first = 0, "max_tokens", None
        cached = 0
        for raw in response:
            if cancel.is_set():
                reason = "cancelled"
                break
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            event = json.loads(payload)
            usage = event.get("usage") or {}
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", cached) or cached
            choice = (event.get("choices") or [{}])[0]
            pending += choice.get("text", "")
            ready, pending = _split_safe(pending)
            for token in self._codec.encode_with_specials(ready) if ready else ():
                first = first or time.perf_counter()
                generated += 1
                requested = on_token(token)
                parser.feed(token)
                if token in stop or requested:
                    return GenerationStats(prompt_tokens, cached, prompt_tokens - cached, generated,
                                           (first or time.perf_counter()) - started,
                                           time.perf_counter() - (first or started),
                                           "stop_token" if token in stop else "requested")
            if choice.get("finish_reason") == "stop":
                reason = "stop_token"
        if reason == "stop_token":
            # Servers end on <|call|> / <|return|> without sending them: say which it was.
            header = parser.current_header
            token = CALL if header is not None and header.recipient else RETURN
            generated += 1
            on_token(token)
        now = time.perf_counter()
        return GenerationStats(prompt_tokens, cached, prompt_tokens - cached, generated,
                               (first or now) - started, now - (first or now), reason)

    def close(self) -> None:
        """Connections are per request; nothing to release."""


def _split_safe(text: str) -> tuple[str, str]:
    """Hold back a trailing, possibly incomplete `<|…|>` marker until the next chunk."""
    cut = text.rfind("<|")
    if cut != -1 and "|>" not in text[cut:]:
        return text[:cut], text[cut:]
    return text, ""
