"""A4 findings 1, 6 and 7: the no-model screen and a model that cannot start, as a new user meets them."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from gptoss_agent.agent.model import discovery as models
from gptoss_agent.agent.frontends.tui.app import GptossApp, ModelMissing
from gptoss_agent.agent.frontends.tui.screens import NoModelScreen
from gptoss_agent.agent.frontends.tui.widgets import AnswerView
from tests.fixtures.repos import final
from tests.tui.conftest import wait_for
from tests.tui.pty_session import PtySession
from tests.tui.test_app import asynctest, screen_text, send, transcript_text
from tests.tui.test_screens import PLACES

ROOT = Path(__file__).resolve().parents[2]


@asynctest
async def test_a_second_enter_in_the_path_field_is_ignored_not_a_crash(repo):
    asked = []

    def connect(model, progress, sink, cancel_load=None):
        asked.append(model)
        raise ModelMissing(PLACES, models.PULL_COMMAND, refused=f"{model}: no such file" if model else None)

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen))
        await pilot.press(*"/tmp/x", "enter", "enter", "enter")
        await wait_for(pilot, lambda: len(asked) == 2 and isinstance(app.screen, NoModelScreen))
        await pilot.pause(0.3)
        assert app.is_running and asked == [None, "/tmp/x"]
        assert "Could not load /tmp/x: no such file" in screen_text(app)  # the file named, and why


@asynctest
async def test_the_no_model_screen_says_how_to_quit_names_backend_and_keeps_what_was_typed(repo):
    release = threading.Event()

    def connect(model, progress, sink, cancel_load=None):
        release.wait(30)
        raise ModelMissing(PLACES, models.PULL_COMMAND)

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "fix the bug")  # typed before the model was looked for
        release.set()
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen))
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert "No gpt-oss model found" in shown
        assert "Esc or Ctrl+C quits" in shown and "--backend" in shown
        assert "Kept, sent once a model loads: fix the bug" in shown
        assert app.screen.query_one("#model-path").region.bottom <= 24  # everything still fits at 80×24
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not app.is_running


@asynctest
async def test_ctrl_c_on_the_no_model_screen_quits_at_once(repo):
    def connect(model, progress, sink, cancel_load=None):
        raise ModelMissing(PLACES, models.PULL_COMMAND)

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen))
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        assert not app.is_running


@asynctest
async def test_after_a_failed_start_model_path_loads_another_and_undo_clear_work(make_app, repo):
    good = make_app([final("Loaded and answering.")])
    tries = []

    def connect(model, progress, sink, cancel_load=None):
        tries.append(model)
        if model is None:
            raise RuntimeError("llama.cpp: failed to load model from broken.gguf")
        return good._connect(model, progress, sink, cancel_load)

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "explain calc.py")
        await wait_for(pilot, lambda: app.start_error is not None)
        await send(pilot, "/undo")
        await wait_for(pilot, lambda: "nothing to undo" in transcript_text(app))
        await send(pilot, "/clear")
        await pilot.pause(0.2)
        assert "needs the model" not in transcript_text(app)
        assert app.outbox == ["explain calc.py"]  # /clear cleared the screen, not what the user typed
        await send(pilot, "/model /models/good.gguf")
        await wait_for(pilot, lambda: app.query(AnswerView))  # the kept message went to the new model
        assert tries == [None, "/models/good.gguf"] and app.outbox == []


def test_quitting_the_no_model_screen_in_a_real_terminal_leaves_cleanly(repo, tmp_path):
    """The real `gptoss-agent` with no model anywhere: Enter twice, then Esc quits with status 0."""
    home = tmp_path / "home"
    home.mkdir()
    session = PtySession([sys.executable, "-m", "gptoss_agent.agent.frontends.cli"], cwd=repo, columns=80, rows=24,
                         env={"HOME": str(home), "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                              "GPTOSS_AGENT_MODEL": ""})
    session.wait_for(b"No gpt-oss model found", timeout=60)
    session.send("/tmp/x\r\r")
    session.wait_for(b"Could not load x", timeout=30)
    session.read_for(1.0)
    assert session.process.poll() is None and b"ScreenStackError" not in session.output
    session.send("\x1b")
    assert session.close(timeout=15) == 0


def test_a_crash_inside_the_app_exits_non_zero_and_shows_its_traceback(repo, tmp_path):
    """A4 #1: the ScreenStackError crash exited 0, as if the user had quit. A bug that escapes
    now reaches the shell as a failure (the traceback is printed after the screen is restored)."""
    crash = ("import sys; import gptoss_agent.agent.frontends.tui.app as app\n"
             "def broken(self): raise RuntimeError('injected bug F4')\n"
             "app.GptossApp._welcome = broken\n"
             "from gptoss_agent.agent.frontends.cli import main; sys.exit(main(sys.argv[1:]))\n")
    replay = tmp_path / "replay.json"
    replay.write_text("[]")
    session = PtySession([sys.executable, "-c", crash, "--backend", f"replay:{replay}"], cwd=repo, columns=80, rows=24,
                         env={"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    session.wait_for(b"injected bug F4", timeout=60)
    assert session.close(timeout=20) == 1
