"""A4 #5 and #8: Esc and Ctrl+C act on a draft before they act on the running turn or the app."""

from __future__ import annotations

import threading

from gptoss_agent.agent.frontends.tui.widgets import AnswerView, PromptInput
from tests.fixtures.repos import final
from tests.tui.conftest import wait_for
from tests.tui.test_app import asynctest, screen_text, send, transcript_text


@asynctest
async def test_a_second_esc_drops_the_recalled_message_and_does_not_cancel_the_turn(make_app):
    held = threading.Event()
    app = make_app([final("First answer."), final("After the queue.")], held=held)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "first")
        await wait_for(pilot, lambda: app._busy)
        await send(pilot, "queued one")
        prompt = app.query_one(PromptInput)
        await pilot.press("escape")  # takes the queued message back into the input
        assert prompt.text == "queued one" and app.outbox == []
        await pilot.press("escape")  # drops it: the turn goes on
        await pilot.pause(0.3)
        assert prompt.text == "" and app._busy and not app._cancel.is_set()
        assert "dropped from the queue: queued one" in transcript_text(app)
        prompt.text = "a draft I am writing"
        await pilot.press("escape")  # a draft of one's own: kept, and Esc says how to interrupt
        await pilot.pause(0.2)
        assert prompt.text == "a draft I am writing" and not app._cancel.is_set()
        assert "Esc interrupts when the input is empty" in transcript_text(app)
        prompt.text = ""
        await pilot.press("escape")  # an empty input: now Esc interrupts
        await wait_for(pilot, lambda: app._cancel.is_set())
        assert "cancelling" in transcript_text(app)


@asynctest
async def test_ctrl_c_clears_a_draft_first_and_its_quit_warning_shows_while_scrolled_up(make_app):
    app = make_app([final("\n\n".join(f"paragraph {i}" for i in range(60)))])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "long answer")
        await wait_for(pilot, lambda: app.query(AnswerView) and not app._busy)
        transcript = app.query_one("#transcript")
        transcript.scroll_home(animate=False)
        await pilot.pause(0.2)
        prompt = app.query_one(PromptInput)
        prompt.text = "line one\nline two"
        await pilot.press("ctrl+c")  # clears the draft, quits nothing
        await pilot.pause(0.2)
        assert prompt.text == "" and app.is_running
        await pilot.press("ctrl+c")  # an empty input: arms quitting, and says so where it is seen
        await pilot.pause(0.3)
        assert app.is_running and "Ctrl+C again to quit" in screen_text(app).split("\n")[-1]  # the status bar
        assert transcript.scroll_y < transcript.max_scroll_y - 1  # the view was not moved to show it
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        assert not app.is_running
