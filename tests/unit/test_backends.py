"""The replay and LAN-server backends honour the same contract as llama.cpp."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gptoss_agent.agent.model.backends.http import (BackendUnreachableError, HTTPBackend, HTTPBackendError,
                                                    RemoteAddressError, check_address)
from gptoss_agent.agent.model.backends.replay import ReplayBackend, ReplayError
from gptoss_agent.agent.model.harmony_stream import CALL, RETURN

STOP = {CALL, RETURN}


def collect(backend, prompt, **kwargs):
    tokens: list[int] = []
    kwargs.setdefault("stop", STOP)
    stats = backend.generate(prompt, on_token=tokens.append, cancel=kwargs.pop("cancel", threading.Event()),
                             max_tokens=kwargs.pop("max_tokens", 1000), **kwargs)
    return tokens, stats


def test_replay_streams_each_completion_and_stops_at_the_stop_token(codec):
    backend = ReplayBackend(['<|channel|>final<|message|>one<|return|>ignored after stop',
                             '<|channel|>final<|message|>two<|return|>'], codec)
    prompt = codec.render_user("hi") + list(codec.assistant_start)
    tokens, stats = collect(backend, prompt)
    assert codec.decode(tokens) == "<|channel|>final<|message|>one<|return|>"
    assert stats.stop_reason == "stop_token" and tokens[-1] == RETURN
    second = prompt + tokens[:-1] + [200_007] + codec.render_user("again") + list(codec.assistant_start)
    tokens, stats = collect(backend, second)
    assert codec.decode(tokens).endswith("two<|return|>")
    assert stats.cached_tokens == len(prompt) + 4  # the sampled tokens a KV cache holds: all but the stop token


def test_replay_that_runs_out_says_so(codec):
    backend = ReplayBackend(["<|channel|>final<|message|>only<|return|>"], codec, source="demo.json")
    collect(backend, [1, 2])
    with pytest.raises(ReplayError, match="demo.json has no completion left"):
        collect(backend, [1, 2])


def test_replay_file_errors_are_clear(codec, tmp_path):
    with pytest.raises(ReplayError, match="not found"):
        ReplayBackend.from_file(tmp_path / "missing.json", codec)
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ReplayError, match="JSON array of strings"):
        ReplayBackend.from_file(bad, codec)
    bad.write_text("[1, 2")
    with pytest.raises(ReplayError, match="not valid JSON"):
        ReplayBackend.from_file(bad, codec)
    bad.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReplayError, match="nested too deeply"):
        ReplayBackend.from_file(bad, codec)
    bad.write_bytes(b"\xff\xfe[")
    with pytest.raises(ReplayError, match="not valid JSON"):
        ReplayBackend.from_file(bad, codec)


def test_replay_cancel_and_max_tokens(codec):
    backend = ReplayBackend(["<|channel|>final<|message|>" + "word " * 50 + "<|return|>"] * 2, codec)
    tokens, stats = collect(backend, [1], max_tokens=5)
    assert len(tokens) == 5 and stats.stop_reason == "max_tokens"
    cancel = threading.Event()
    cancel.set()
    tokens, stats = collect(backend, [1], cancel=cancel)
    assert tokens == [] and stats.stop_reason == "cancelled"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:11434", "http://10.1.2.3:8000",
                                 "http://192.168.1.20", "http://[::1]:8000"])
def test_local_and_private_servers_are_allowed(url):
    host, port, _ = check_address(url)
    assert host and port


def test_public_address_is_refused_unless_allowed():
    with pytest.raises(RemoteAddressError, match="--allow-remote"):
        check_address("http://8.8.8.8:8000")
    assert check_address("http://8.8.8.8:8000", allow_remote=True)[0] == "8.8.8.8"


def test_not_a_url():
    with pytest.raises(HTTPBackendError, match="expected http://HOST:PORT"):
        check_address("ftp://server")


class _FakeCompletions(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/completions that streams a fixed Harmony reply, as vLLM would."""

    chunks: list[str] = []
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, chunk in enumerate(self.chunks):
            last = i == len(self.chunks) - 1
            event = {"choices": [{"text": chunk, "finish_reason": "stop" if last else None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_backend_streams_tokens_and_names_the_stop_the_server_swallowed(codec, fake_server):
    # The server splits a special token across chunks and drops the final <|call|>, as vLLM does.
    _FakeCompletions.chunks = ["<|channel|>commentary to=functions.run", "_tests <|cons", "train|>json<|message|>",
                               '{"paths": []}']
    backend = HTTPBackend(fake_server, codec)
    prompt = codec.render_user("run the tests") + list(codec.assistant_start)
    tokens, stats = collect(backend, prompt)
    assert codec.decode(tokens) == '<|channel|>commentary to=functions.run_tests <|constrain|>json<|message|>{"paths": []}<|call|>'
    assert tokens[-1] == CALL and stats.stop_reason == "stop_token"
    sent = _FakeCompletions.received[-1]
    assert sent["prompt"] == codec.decode(prompt) and sent["skip_special_tokens"] is False


def test_http_backend_final_answer_ends_with_return(codec, fake_server):
    _FakeCompletions.chunks = ["<|channel|>final<|message|>", "All good."]
    tokens, _ = collect(HTTPBackend(fake_server, codec), [1, 2, 3])
    assert tokens[-1] == RETURN


def test_http_backend_unreachable_server_is_a_set_up_error(codec):
    """Nothing listening: one clear error when the backend is built (the CLI exits 2 on it)."""
    with pytest.raises(BackendUnreachableError, match="cannot reach the server at http://127.0.0.1:9"):
        HTTPBackend("http://127.0.0.1:9", codec, timeout_s=2)
    backend = HTTPBackend("http://127.0.0.1:9", codec, timeout_s=2, probe=False)  # went away after set-up
    with pytest.raises(BackendUnreachableError, match="cannot reach"):
        collect(backend, [1])
