"""`gptoss-agent` itself in a real pseudo-terminal: what a person types at launch is never lost.

The keys are written to the terminal the moment the process starts, long
before the first frame (Python is still importing); the session log then shows
what the model received.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import final, make_calc_repo
from tests.tui.pty_session import PtySession


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


def user_messages_in_newest_session(codec) -> list[str]:
    state = Path(os.environ["GPTOSS_AGENT_STATE_DIR"])
    newest = max(state.rglob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    messages = []
    for line in newest.read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "segment" and record.get("segment") == "user":
            text = codec.decode(record["tokens"])
            messages.append(re.search(r"<\|message\|>(.*?)<\|end\|>", text, re.DOTALL).group(1))
    return messages


def test_typing_before_the_first_frame_keeps_every_key_and_enter_in_order(repo, tmp_path, codec):
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([final("First answer."), final("Second answer."), final("Third answer.")]))
    session = PtySession([sys.executable, "-m", "agent.cli", "--backend", f"replay:{replay}"], cwd=repo,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep +
                              os.environ.get("PYTHONPATH", "")}, columns=100, rows=30)
    session.send("fix the add function\r/plan\rthen explain it\r")  # typed at once: Python has not even started
    session.wait_for(b"Second answer.", timeout=90)
    frame = session.first_seen(b"approval")
    session.send("and a third\r")
    session.wait_for(b"Third answer.", timeout=60)
    session.send("\x03\x03")
    assert session.close() == 0
    assert user_messages_in_newest_session(codec) == ["fix the add function", "then explain it", "and a third"]
    screen = session.screen_text()
    assert "No plan yet." in screen  # /plan ran as a command, in its place
    assert frame > 0
