"""`--server-model NAME` (or the `server_model` setting) names the model in every request to an http:// server.

A tiny OpenAI-compatible server on loopback records what the agent sends.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.test_exec import agent, events
from tests.fixtures.repos import make_calc_repo


class _RecordingServer(BaseHTTPRequestHandler):
    """/v1/completions answering every request with one final Harmony message, keeping each request's body."""

    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for text, reason in (("<|channel|>final<|message|>", None), ("Hello.", "stop")):
            event = {"choices": [{"text": text, "finish_reason": reason}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RecordingServer.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


def test_the_server_model_flag_and_setting_name_the_model_in_each_request(repo, server):
    done = agent("exec", "--backend", server, "--server-model", "gpt-oss-120b", "--json", "Say hello", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert events(done.stdout)[-1]["status"] == "completed"
    assert _RecordingServer.received and all(r["model"] == "gpt-oss-120b" for r in _RecordingServer.received)

    _RecordingServer.received = []
    env = {**os.environ, "GPTOSS_AGENT_SERVER_MODEL": "gpt-oss-20b"}  # the setting, from the environment layer
    done = agent("exec", "--backend", server, "--json", "Say hello", cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    assert _RecordingServer.received and all(r["model"] == "gpt-oss-20b" for r in _RecordingServer.received)

    _RecordingServer.received = []
    done = agent("exec", "--backend", server, "--json", "Say hello", cwd=repo)  # unset: the server's own model
    assert done.returncode == 0, done.stderr
    assert _RecordingServer.received and all("model" not in r for r in _RecordingServer.received)
