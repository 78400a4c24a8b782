"""`gptoss-agent` itself in a real pseudo-terminal: what a person types at launch is never lost.

The keys are written to the terminal long before the first frame (Python is
still importing); the session log then shows what the model received.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import final, make_calc_repo
from tests.tui.pty_session import ALT_SCREEN, PtySession

ROOT = Path(__file__).resolve().parents[2]


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


def launch(repo, replay) -> PtySession:
    return PtySession([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "--backend", f"replay:{replay}"], cwd=repo,
                      env={"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")},
                      columns=100, rows=30)


def test_typing_before_the_first_frame_keeps_every_key_enter_and_ctrl_j_in_order(repo, tmp_path, codec):
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([final("First answer."), final("Second answer."), final("Third answer.")]))
    session = launch(repo, replay)
    typed_at = session.wait_until_out_of_line_mode()  # tens of milliseconds in: Python is still importing
    # Enter (CR) sends; Ctrl+J (LF) is a new line inside the message, as in the running app.
    session.send("fix the add function\r/plan\rthen\nexplain it\r")
    session.wait_for(b"Second answer.", timeout=90)
    frame = session.first_seen(b"approval", after=session.output.find(ALT_SCREEN))
    session.send("and a third\r")
    session.wait_for(b"Third answer.", timeout=60)
    session.send("\x03\x03")
    assert session.close() == 0
    assert typed_at < frame  # the keys really came before the first frame
    assert user_messages_in_newest_session(codec) == ["fix the add function", "then\nexplain it", "and a third"]
    assert "No plan yet." in session.screen_text()  # /plan ran as a command, in its place
    listing = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "sessions"], cwd=repo, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    row = next(line for line in listing.splitlines() if "fix the add function" in line)
    assert "(interactive session)" not in row  # named by its first message, as every peer does


def test_keys_typed_before_the_terminal_leaves_line_mode_wait_whole_in_the_input(repo, tmp_path, codec):
    """Line mode had already turned that Enter into LF, which no program can tell from Ctrl+J: the text is
    kept, as a new line, and the next Enter sends it; nothing is sent half-written, nothing is lost."""
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([final("First answer.")]))
    session = launch(repo, replay)
    session.send("typed ahead\r")  # at once: the terminal is still in line mode
    session.wait_for(ALT_SCREEN)
    start = session.output.find(ALT_SCREEN)  # (before it, the line mode's own echo of the keys)
    session.wait_for(b"typed ahead", after=start)  # drawn in the input
    session.wait_for(b"Ready", timeout=90, after=start)
    session.read_for(0.5)
    assert b"First answer." not in session.output
    session.send("\r")
    session.wait_for(b"First answer.", timeout=60)
    session.send("\x03\x03")
    assert session.close() == 0
    assert user_messages_in_newest_session(codec) == ["typed ahead"]


def test_a_burst_with_backspace_and_arrows_is_handled_in_the_order_typed(repo, tmp_path, codec):
    """Keys written in one go (a fast typist on a busy machine, a paste, tmux send-keys): editing keys
    act where they were typed, not after the letters and the Enter behind them."""
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([final("First answer."), final("Second answer.")]))
    session = launch(repo, replay)
    session.wait_for(b"Ready", timeout=90)
    session.send("ab\x7fc\rxyz\x1b[D\x1b[DQ\r")
    session.wait_for(b"Second answer.", timeout=60)
    session.send("\x03\x03")
    assert session.close() == 0
    assert user_messages_in_newest_session(codec) == ["ac", "xQyz"]
