"""A lone surrogate from the model (`"\\ud800"` in JSON) is not text any file, path, command or
UTF-8 stream can hold: the tool call is refused with a message, and the session log, the
transcript and the JSONL stream all survive it.
"""

from __future__ import annotations

import json

from gptoss_agent.agent.session import SessionLog
from tests.fixtures.repos import final, write_replay
from tests.security.settings_helpers import cli, events, repo  # noqa: F401 (fixture)

CALLS = [
    ("repo_browser.open_file", '{"path": "\\ud800"}'),
    ("repo_browser.search", '{"query": "\\ud800"}'),
    ("functions.git_commit", '{"message": "msg \\ud800"}'),
    ("container.exec", '{"cmd": "echo \\ud800"}'),
]


def raw_call(recipient: str, body: str) -> str:
    return f"<|channel|>commentary to={recipient} <|constrain|>json<|message|>{body}<|call|>"


def test_every_tool_refuses_a_lone_surrogate_and_the_run_and_its_log_survive(repo, tmp_path, isolated_state):
    replay = write_replay(tmp_path / "r.json", [raw_call(r, b) for r, b in CALLS] + [final("ok \ud800")])
    done = cli("exec", "--json", "--approval", "full-auto", "--backend", f"replay:{replay}", "--cwd", str(repo),
               "task", cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [e for e in events(done.stdout) if e["type"] == "tool_result"]
    assert len(results) == len(CALLS)
    assert all(not r["ok"] and "lone surrogate" in r["output"] for r in results), results
    assert events(done.stdout)[-1]["status"] == "completed"
    ours = (str(repo), str(repo.resolve()))  # the state folder is shared: find this run's log by its repository
    logs = [p for p in (isolated_state / "state" / "sessions").glob("*.jsonl")
            if json.loads(p.read_bytes().decode("utf-8").splitlines()[0]).get("repo") in ours]
    log = max(logs, key=lambda p: p.stat().st_mtime)
    text = log.read_bytes().decode("utf-8")  # strict: the log is valid UTF-8
    assert "\\ud800" in text
    listed = cli("sessions", cwd=repo)
    assert listed.returncode == 0 and log.stem in listed.stdout, listed.stderr


def test_the_plain_transcript_shows_a_lone_surrogate_as_an_escape(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [raw_call(*CALLS[0]), final("hi \ud800 there")])
    done = cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lone surrogate" in done.stdout + done.stderr
    assert "completed" in done.stdout


def test_a_session_log_writes_any_string_and_reads_it_back(tmp_path):
    log = SessionLog.create(repo=str(tmp_path), task="t \ud800", config={}, directory=tmp_path)
    log.write("event", event={"text": "a\ud800b\udcff"})
    log.close()
    records = [json.loads(line) for line in log.path.read_text(encoding="utf-8").splitlines()]
    assert records[0]["task"] == "t \ud800" and records[1]["event"]["text"] == "a\ud800b\udcff"
