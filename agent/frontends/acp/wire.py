"""The JSON-RPC wire under `gptoss-agent acp`: newline-delimited JSON on two file descriptors, checked.

The SDK's own stdio transport skips a line that is not JSON without a word and
stops serving at a message that is not an object; an editor (or a person
typing into the pipe) then waits forever. Here every line is checked before the
SDK sees it: what is not a JSON-RPC 2.0 message is answered with a
well-formed error (parse error, invalid request, message too large) and the
next line is read. Only valid messages reach the SDK's router, which answers
unknown methods and invalid params itself. NaN and Infinity (which Python's
json reads but JSON does not have) are refused here with the request's id:
the SDK would echo them in its error, which then could not be written.
Whatever is sent is strict JSON; a reply that cannot be is still sent, its
non-finite numbers written as strings, so no request goes unanswered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from typing import Any

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
MAX_MESSAGE_BYTES = 64 << 20  # a prompt with embedded files fits; a runaway line does not fill memory
TOO_LONG: Any = object()  # what _read_line returns for a line over the limit

log = logging.getLogger("gptoss-agent.acp")


def problem(message: Any) -> tuple[int, str, Any] | None:
    """Why a decoded message is not a JSON-RPC 2.0 request, notification or response: (code, text, id), or None."""
    if not isinstance(message, dict):
        what = "a batch (an array)" if isinstance(message, list) else f"a JSON {type(message).__name__}"
        return INVALID_REQUEST, f"Invalid request: {what}, not an object", None
    ident = message.get("id")
    valid_id = ident is None or (isinstance(ident, (str, int)) and not isinstance(ident, bool))
    reply_id = ident if valid_id else None
    if message.get("jsonrpc") != "2.0":
        return INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"', reply_id
    if not valid_id:
        return INVALID_REQUEST, 'Invalid request: "id" must be a string, a number or null', None
    if "method" in message:
        if not isinstance(message["method"], str):
            return INVALID_REQUEST, 'Invalid request: "method" must be a string', reply_id
        if "params" in message and not isinstance(message["params"], (dict, list)):
            return INVALID_REQUEST, 'Invalid request: "params" must be an object or an array', reply_id
        return None
    if "id" not in message:
        return INVALID_REQUEST, "Invalid request: neither a request, a notification nor a response", None
    if ("result" in message) == ("error" in message):
        return INVALID_REQUEST, 'Invalid response: it needs exactly one of "result" and "error"', reply_id
    return None


def _finite(value: Any) -> Any:
    """`value` with every NaN/Infinity float replaced by its name as a string (strict JSON can hold it then)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def error_reply(code: int, text: str, ident: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": text}}


class CheckedTransport:
    """An `acp` Transport over a StreamReader and a StreamWriter that answers bad lines itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any, on_end=None) -> None:
        self._reader, self._writer = reader, writer
        self._lock = asyncio.Lock()
        self._on_end = on_end  # awaited at the end of input, before the SDK hears of it
        self.bad_lines = 0

    async def send(self, message: dict[str, Any]) -> None:
        try:
            text = json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        except ValueError:  # a non-finite float somewhere (an echo of the input): written as a string instead
            text = json.dumps(_finite(message), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        data = (text + "\n").encode()
        async with self._lock:
            self._writer.write(data)
            await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            line = await self._read_line()
            if line is None:
                if self._on_end is not None:  # answer what is in flight before the SDK closes the connection
                    await self._on_end()
                return None
            if line is TOO_LONG:
                await self._refuse(INVALID_REQUEST, f"Invalid request: larger than {MAX_MESSAGE_BYTES} bytes", None)
                continue
            if not line.strip():
                continue
            constants: list[str] = []
            try:
                message = json.loads(line, parse_constant=lambda name: constants.append(name))
            except (ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, a huge integer
                await self._refuse(PARSE_ERROR, f"Parse error: {str(exc)[:200]}", None)
                continue
            found = problem(message)
            if found is not None:
                await self._refuse(*found)
                continue
            if constants:  # read as null above; the request is answered with its own id
                await self._refuse(INVALID_PARAMS if "method" in message else INVALID_REQUEST,
                                   f"Invalid params: {constants[0]} is not a JSON number", message.get("id"))
                continue
            return message

    async def close(self) -> None:
        try:
            self._writer.close()
        except (OSError, RuntimeError):
            pass

    async def _refuse(self, code: int, text: str, ident: Any) -> None:
        self.bad_lines += 1
        log.warning("refused a message: %s", text)
        await self.send(error_reply(code, text, ident))

    async def _read_line(self) -> Any:
        """One line; None at the end of input; TOO_LONG for a line over the limit (read to its end, dropped)."""
        size, chunks = 0, []
        while True:
            try:
                chunk = await self._reader.readuntil(b"\n")
                done = True
            except asyncio.IncompleteReadError as exc:
                if not exc.partial and not size:
                    return None
                chunk, done = exc.partial, True
            except asyncio.LimitOverrunError as exc:
                chunk, done = await self._reader.readexactly(exc.consumed), False
            size += len(chunk)
            if size <= MAX_MESSAGE_BYTES:
                chunks.append(chunk)
            if done:
                return b"".join(chunks) if size <= MAX_MESSAGE_BYTES else TOO_LONG


async def open_pipes(read_fd: int, write_fd: int, *, prefix: bytes = b"") -> tuple[asyncio.StreamReader, Any]:
    """Asyncio streams over two descriptors; `prefix`: input already read, read first.

    Pipes, sockets and terminals get asyncio's own transports; a regular file
    (`gptoss-agent acp < requests.jsonl > replies.jsonl`) is read by a thread
    and written with plain blocking writes.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    if prefix:
        reader.feed_data(prefix)
    source = os.fdopen(read_fd, "rb", 0)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)
    except ValueError:  # not a pipe, socket or character device
        threading.Thread(target=_feed, args=(loop, reader, source), name="gptoss-acp-input", daemon=True).start()
    sink = os.fdopen(write_fd, "wb", 0)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sink)
    except ValueError:
        return reader, _BlockingWriter(sink)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


def _feed(loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader, source) -> None:
    """(thread) Copy a non-pipe input into the reader until its end."""
    try:
        while chunk := source.read(65536):
            loop.call_soon_threadsafe(reader.feed_data, chunk)
    except (OSError, ValueError):
        pass
    finally:
        loop.call_soon_threadsafe(reader.feed_eof)


class _BlockingWriter:
    """The StreamWriter surface CheckedTransport uses, over a descriptor asyncio cannot watch (a regular file)."""

    def __init__(self, sink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> None:
        self._sink.write(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._sink.close()


# ---------------------------------------------------------------------- the handshake, before the SDK is loaded

def initialize_result() -> dict[str, Any]:
    """Our answer to `initialize` (protocol version 1), as JSON: capabilities, name and version, no auth.

    The SDK's schema takes about a second to import; this answer needs none of
    it, so an editor hears back at once (the server validates the same dict
    with the SDK's InitializeResponse when it answers a later initialize).
    """
    from gptoss_agent.agent import __version__

    return {"protocolVersion": 1,
            "agentCapabilities": {"loadSession": True,
                                  "promptCapabilities": {"image": False, "audio": False, "embeddedContext": True},
                                  "mcpCapabilities": {"http": False, "sse": False},
                                  "sessionCapabilities": {"list": {}}},
            "authMethods": [],
            "agentInfo": {"name": "gptoss-agent", "title": "gptoss-agent (gpt-oss, offline)",
                          "version": __version__}}


def handshake(line: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """The reply to a first line that is a well-formed `initialize` request, and the client's capabilities.

    None for anything else: the full server answers it (with an error where due).
    """
    try:
        message = json.loads(line, parse_constant=_not_json)  # NaN/Infinity: the full server refuses it
    except (ValueError, RecursionError):
        return None
    if problem(message) is not None or message.get("method") != "initialize" or message.get("id") is None:
        return None
    params = message.get("params")
    version = params.get("protocolVersion") if isinstance(params, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= 65535:
        return None
    capabilities = params.get("clientCapabilities")
    reply = {"jsonrpc": "2.0", "id": message["id"], "result": initialize_result()}
    return (json.dumps(reply, separators=(",", ":")) + "\n").encode(), (
        capabilities if isinstance(capabilities, dict) else {})


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_first_line(fd: int, limit: int = 1 << 20) -> tuple[bytes, bytes]:
    """(the first line, whatever was read after it) from a blocking descriptor; at EOF the line is what came."""
    data = b""
    while b"\n" not in data and len(data) < limit:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    line, newline, rest = data.partition(b"\n")
    return (line + newline, rest) if newline else (data, b"")
