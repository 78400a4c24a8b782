"""Snapshot tests (pytest-textual-snapshot): what a person sees, pixel for pixel, at 100×30 and, for the
transcript and the approval modal, also at 80×24 (the smallest usual terminal) and 120×40.

The SVGs under __snapshots__ were recorded with the Textual version in
SNAPSHOT_TEXTUAL_VERSION; rendering changes between Textual releases, so with
another version these are skipped (say so, re-record with --snapshot-update).
The test extra pins that version, so under CI a mismatch is a failure, not a skip.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import textual

from gptoss_agent.agent.frontends.tui.app import GptossApp, ModelMissing
from tests.fixtures.repos import FIX_PATCH, call, final
from tests.tui.conftest import wait_for
from tests.tui.test_app import send
from tests.tui.test_screens import PLACES as SEARCHED
from gptoss_agent.agent.model.discovery import PULL_COMMAND

RECORDED = (Path(__file__).parent / "SNAPSHOT_TEXTUAL_VERSION").read_text().strip()
if textual.__version__ != RECORDED and os.environ.get("CI"):
    raise RuntimeError(f"snapshots were recorded with Textual {RECORDED} but CI installed {textual.__version__}: "
                       "the test extra must pin the recorded version")
pytestmark = pytest.mark.skipif(textual.__version__ != RECORDED,
                                reason=f"snapshots recorded with Textual {RECORDED}, this is {textual.__version__}")
SIZE = (100, 30)


@pytest.fixture(autouse=True)
def every_sandbox_guarantee_holds(monkeypatch):
    """Snapshots record the layout, so they must not depend on what this machine's sandbox
    can give (as root, "unprivileged uid inside" does not hold and the status bar says ⚠1).
    That detection is tested for real in tests/security/test_sandbox_*.py and the TUI's
    warning in tests/tui/test_app.py."""
    import gptoss_agent.agent.frontends.tui.app as app_module

    monkeypatch.setattr(app_module, "_weak_sandbox_properties", lambda sandbox: [])
SIZES = {"80x24": (80, 24), "100x30": (100, 30), "120x40": (120, 40)}
REPO = Path("/home/dev/project")  # a fixed name for the welcome line (no settings file there to ask about)

PLACES = ("  --model                (not set)\n  GPTOSS_AGENT_MODEL     (not set)\n"
          "  Hugging Face cache     ~/.cache/huggingface/hub → folder absent\n"
          "  LM Studio              ~/.lmstudio/models → folder absent\n"
          "  Ollama                 ~/.ollama/models → no gpt-oss:20b manifest")


def test_startup_while_the_model_loads(snap_compare):
    release = threading.Event()

    def connect(model, progress, sink, cancel_load=None):
        progress(0.4)
        release.wait(3)
        raise RuntimeError("test over")

    try:
        assert snap_compare(GptossApp(connect, timings=False, animate=False, repo=REPO), terminal_size=SIZE,
                            run_before=lambda pilot: pilot.pause(0.3))
    finally:
        release.set()


@pytest.mark.parametrize("size", list(SIZES))
def test_no_model_screen(snap_compare, size):
    """The command and the path field always fit; what was searched (two lines a place, as
    `models.search().describe()` prints it) takes the rows left and scrolls at 80×24."""
    def connect(model, progress, sink, cancel_load=None):
        raise ModelMissing(SEARCHED, PULL_COMMAND)

    assert snap_compare(GptossApp(connect, timings=False, animate=False, repo=REPO), terminal_size=SIZES[size],
                        run_before=lambda pilot: pilot.pause(0.3))


@pytest.mark.parametrize("size", ["80x24", "120x40"])
def test_welcome_once_the_model_is_ready(snap_compare, make_app, size):
    app = make_app([final("unused")], still=True)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.runtime is not None and app._git)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", ["80x24", "120x40"])
def test_working_with_a_queued_message(snap_compare, make_app, size):
    """The model thinks (nothing streamed yet, so the picture is fixed) while a second message waits."""
    held = threading.Event()
    app = make_app([final("First."), final("Second.")], still=True, held=held)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.runtime is not None and app._git)
        await send(pilot, "fix the failing test in calc.py")
        await wait_for(pilot, lambda: app._busy)
        await send(pilot, "then run the whole suite")
        await pilot.pause(0.3)

    try:
        assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
    finally:
        held.set()


def test_help_screen(snap_compare):
    def connect(model, progress, sink, cancel_load=None):
        raise ModelMissing(PLACES, "gptoss-agent model pull")

    assert snap_compare(GptossApp(connect, timings=False, animate=False, repo=REPO), terminal_size=SIZE, press=["f1"])


@pytest.mark.parametrize("size", list(SIZES))
def test_transcript_with_reasoning_tool_card_and_diff(snap_compare, make_app, size):
    app = make_app([call("repo_browser.open_file", {"path": "calc.py"}, analysis="The add test fails; read calc.py."),
                    call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="add subtracts."),
                    final("Fixed `add` in **calc.py**: it now returns `a + b`.", analysis="Done.")],
                   approval="full-auto", still=True)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "Fix the failing test")
        await wait_for(pilot, lambda: app.query("AnswerView") and not app._busy and not app._queue
                       and app._git == "main*" and not app.query_one("#new-output").display)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", list(SIZES))
def test_approval_modal(snap_compare, make_app, size):
    app = make_app([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed.")], approval="ask",
                   still=True)

    async def run_before(pilot):
        from gptoss_agent.agent.frontends.tui.screens import ApprovalScreen

        await wait_for(pilot, lambda: app.runtime is not None and app._git)
        await send(pilot, "fix add")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_approval_of_a_command_with_hidden_characters_at_80x24(snap_compare, make_app):
    command = ["bash", "-lc", "touch owned; true\x1b[1A\r$ echo harmless\u202e"]
    app = make_app([call("container.exec", {"cmd": command}), final("ok")], approval="ask", still=True)

    async def run_before(pilot):
        from gptoss_agent.agent.frontends.tui.screens import ApprovalScreen

        await wait_for(pilot, lambda: app.runtime is not None and app._git)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_a_message_typed_while_the_model_loads_waits_visibly_at_80x24(snap_compare):
    release = threading.Event()

    def connect(model, progress, sink, cancel_load=None):
        progress(0.4)
        release.wait(5)
        raise RuntimeError("test over")

    async def run_before(pilot):
        await pilot.pause(0.2)
        await send(pilot, "fix the failing test in calc.py")
        await pilot.pause(0.2)

    try:
        assert snap_compare(GptossApp(connect, timings=False, animate=False, repo=REPO), terminal_size=(80, 24),
                            run_before=run_before)
    finally:
        release.set()
