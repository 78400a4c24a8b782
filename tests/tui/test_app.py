"""Pilot tests: a person using the TUI, with the real loop behind it."""

from __future__ import annotations

import asyncio
import functools

from agent.tui.screens import ApprovalScreen
from agent.tui.widgets import AnswerView, PromptInput, ReasoningBlock, ToolCard
from tests.fixtures.repos import FIX_PATCH, call, final
from tests.tui.conftest import until_answerable, wait_for


def asynctest(function):
    """Run an async test body in its own event loop (no asyncio plugin needed)."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        return asyncio.run(function(*args, **kwargs))

    return run


def transcript_text(app) -> str:
    """Everything the transcript shows as text: notes, titles, streamed text."""
    parts = []
    for widget in app.query("#transcript *"):
        for attr in ("content", "text", "title"):
            value = getattr(widget, attr, None)
            if value is not None and not callable(value):
                parts.append(str(value))
    return "\n".join(parts)


async def send(pilot, text):
    prompt = pilot.app.query_one(PromptInput)
    prompt.text = text
    prompt.focus()
    await pilot.press("enter")


@asynctest
async def test_a_task_shows_reasoning_tool_cards_and_the_answer(make_app, repo):
    app = make_app([call("repo_browser.open_file", {"path": "calc.py"}, analysis="Let me look."),
                    final("The bug is in `add`.", analysis="Found it.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "Why does test_add fail?")
        await wait_for(pilot, lambda: app.query(AnswerView))
        cards = list(app.query(ToolCard))
        assert len(cards) == 1 and "repo_browser.open_file  calc.py  ✓" in cards[0].title
        assert len(app.query(ReasoningBlock)) == 2 and all(b.collapsed for b in app.query(ReasoningBlock))
        assert "The bug is in `add`." in app.query_one(AnswerView)._markdown


@asynctest
async def test_approving_a_patch_in_the_modal_applies_it(make_app, repo):
    app = make_app([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "fix add")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert "+    return a + b" in app.screen.preview
        await until_answerable(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert "a + b" in (repo / "calc.py").read_text()


@asynctest
async def test_denying_with_a_reason_tells_the_model(make_app, repo):
    app = make_app([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Understood.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "fix add")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await until_answerable(pilot)
        await pilot.press("t")
        await pilot.press(*"use a helper instead")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert "a - b" in (repo / "calc.py").read_text()
        prompt_text = app.runtime.agent.codec.decode(app.runtime.agent.conversation.prompt())
        assert "The user declined this call: use a helper instead" in prompt_text


@asynctest
async def test_escape_cancels_a_generation_mid_stream(make_app):
    app = make_app([final("word " * 3000)], delay=0.002)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "talk a lot")
        await wait_for(pilot, lambda: app._stream is not None and len(app._stream.text) > 50)
        await pilot.press("escape")
        await wait_for(pilot, lambda: "■ cancelled" in transcript_text(app))
        assert not app.query(AnswerView)


@asynctest
async def test_undo_restores_the_file(make_app, repo):
    app = make_app([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed.")], approval="full-auto")
    original = (repo / "calc.py").read_text()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "fix add")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert (repo / "calc.py").read_text() != original
        await send(pilot, "/undo")
        await wait_for(pilot, lambda: "restored 1 file(s)" in transcript_text(app))
        assert (repo / "calc.py").read_text() == original


@asynctest
async def test_at_file_mention_attaches_the_file(make_app, repo):
    app = make_app([final("Seen it.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "explain @calc.py please")
        await wait_for(pilot, lambda: app.query(AnswerView))
        prompt_text = app.runtime.agent.codec.decode(app.runtime.agent.conversation.prompt())
        assert "Attached calc.py:\n```\ndef add(a, b):\n    return a - b" in prompt_text


@asynctest
async def test_five_thousand_tokens_stream_and_typing_is_not_lost(make_app):
    words = " ".join(f"w{i}" for i in range(2500))
    app = make_app([final(words)], delay=0.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "stream")
        prompt = app.query_one(PromptInput)
        await pilot.press(*"typed during the stream")
        await wait_for(pilot, lambda: app.query(AnswerView), timeout=60)
        assert app.query_one(AnswerView)._markdown == words
        assert app.runtime.agent.codec.count(words) >= 5000
        assert prompt.text == "typed during the stream"


@asynctest
async def test_message_sent_before_the_model_is_ready_is_queued(make_app):
    app = make_app([final("Queued and answered.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "early bird")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert "Queued and answered." in app.query_one(AnswerView)._markdown


@asynctest
async def test_command_palette_lists_the_agents_actions(make_app):
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Undo", "Diff", "Test", "Commit", "Reasoning: high", "Approval: full-auto", "Quit"):
            assert title in titles
        await wait_for(pilot, lambda: app.runtime is not None)
        next(c for c in app.get_system_commands(app.screen) if c.title == "Approval: full-auto").callback()
        assert app.approval == "full-auto"


@asynctest
async def test_slash_and_at_file_completion(make_app):
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press("/", "u", "n")
        await pilot.pause(0.1)
        assert prompt.suggestions == ["/undo"]
        await pilot.press("tab")
        assert prompt.text == "/undo "
        prompt.text = ""
        await pilot.press(*"look at @cal")
        await pilot.pause(0.1)
        assert prompt.suggestions == ["@calc.py", "@tests/test_calc.py"]
        await pilot.press("tab")
        assert prompt.text == "look at @calc.py "


def test_light_terminals_get_the_light_theme():
    from agent.tui.app import _terminal_is_light

    assert _terminal_is_light({"COLORFGBG": "0;15"}) and not _terminal_is_light({"COLORFGBG": "15;0"})
    assert _terminal_is_light({"GPTOSS_AGENT_THEME": "light", "COLORFGBG": "15;0"})
    assert not _terminal_is_light({})
