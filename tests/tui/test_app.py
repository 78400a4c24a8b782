"""Pilot tests: a person using the TUI, with the real loop behind it."""

from __future__ import annotations

import time

import asyncio
import functools
import re
from pathlib import Path

import pytest

from gptoss_agent.agent.frontends.tui.screens import ApprovalScreen, HelpScreen, LinkScreen, TrustScreen
from gptoss_agent.agent.frontends.tui.widgets import AnswerView, PromptInput, ReasoningBlock, ToolCard
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
        assert len(cards) == 1 and str(cards[0].title).startswith("✓ ≡ repo_browser.open_file  calc.py")
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
        await pilot.press("ctrl+y")
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
        await pilot.press("ctrl+t")
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
async def test_a_refused_mention_is_shown_to_the_user_and_never_sent(make_app, repo):
    """A4 #2: `@.env` went to the model; `@../x` vanished without a word. Both are named now."""
    (repo / ".env").write_text("SECRET_TOKEN=A4ENV\n")
    app = make_app([final("Seen it.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "look @.env @../x @calc.py")
        await wait_for(pilot, lambda: app.query(AnswerView))
        prompt_text = app.runtime.agent.codec.decode(app.runtime.agent.conversation.prompt())
        assert "A4ENV" not in prompt_text and "Attached calc.py:" in prompt_text
        shown = transcript_text(app)
        assert "not attached: .env: " in shown and "not attached: ../x: " in shown


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
        await wait_for(pilot, lambda: prompt.suggestions)  # the file list comes from a worker
        assert prompt.suggestions == ["@calc.py", "@tests/test_calc.py"]
        await pilot.press("tab")
        assert prompt.text == "look at @calc.py "


def test_light_terminals_get_the_light_theme():
    from gptoss_agent.agent.frontends.tui.app import _terminal_is_light

    assert _terminal_is_light({"COLORFGBG": "0;15"}) and not _terminal_is_light({"COLORFGBG": "15;0"})
    assert _terminal_is_light({"GPTOSS_AGENT_THEME": "light", "COLORFGBG": "15;0"})
    assert not _terminal_is_light({})


# ---------------------------------------------------------------------- input never lost


@asynctest
async def test_a_burst_of_keys_is_handled_in_order(make_app):
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await pilot.press(*"/plan", "enter", *"/", *"help", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "No plan yet." in transcript_text(app)
        assert "Unknown command" not in transcript_text(app)


@asynctest
async def test_keys_typed_before_the_first_frame_are_kept_with_their_enter(make_app):
    from gptoss_agent.agent.frontends.tui.app import GptossApp

    app = make_app([final("First answer."), final("Second answer.")])
    typed = GptossApp(app._connect, approval="ask", timings=False, animate=False,
                      type_ahead="first task\rsecond\r")
    async with typed.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(typed.query(AnswerView)) == 2)
        assert user_messages(typed) == ["first task", "second"]


@asynctest
async def test_a_message_typed_while_the_agent_works_is_queued_visibly_and_sent_after(make_app):
    app = make_app([final("word " * 3000), final("Second answer.")], delay=0.003)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "first")
        await wait_for(pilot, lambda: app._stream is not None)
        await send(pilot, "and then this")
        assert app.outbox == ["and then this"]
        assert "and then this" in str(app.query_one("#outbox").render())
        await wait_for(pilot, lambda: len(app.query(AnswerView)) == 2, timeout=60)
        assert user_messages(app) == ["first", "and then this"]
        assert not app.query_one("#outbox").display


@asynctest
async def test_escape_takes_a_queued_message_back_to_edit(make_app):
    app = make_app([final("word " * 3000), final("unused")], delay=0.003)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "first")
        await wait_for(pilot, lambda: app._stream is not None)
        await send(pilot, "second thoughts")
        await pilot.press("escape")
        assert app.outbox == [] and app.query_one(PromptInput).text == "second thoughts"
        assert app._busy  # Esc edited the queue; it did not interrupt the turn
        await wait_for(pilot, lambda: app.query(AnswerView), timeout=60)
        assert user_messages(app) == ["first"]


@asynctest
async def test_a_second_tab_after_completing_a_file_does_not_repeat_it(make_app):
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"see @calc")
        await wait_for(pilot, lambda: prompt.suggestions)
        await pilot.press("tab")
        assert prompt.text == "see @calc.py "
        await pilot.press("tab")
        await pilot.pause(0.1)
        assert prompt.text == "see @calc.py "
        assert app.focused is prompt


# ---------------------------------------------------------------------- output always shows what happened


@asynctest
async def test_welcome_then_ready_line_name_model_repository_and_sandbox(make_app, repo):
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await pilot.pause(0.1)
        text = transcript_text(app)
        assert "Type a task and press Enter" in text and "/help" in text
        assert "Ready: replay (replay) · sandbox " + app.runtime.ctx.sandbox.mechanism in text


@asynctest
async def test_working_indicator_counts_time_and_says_esc_interrupts(make_app):
    app = make_app([final("word " * 3000)], delay=0.003)  # 9 s of streaming: the clock moves before it ends
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        working = app.query_one("#working")
        assert not working.display
        await send(pilot, "talk")
        await wait_for(pilot, lambda: "esc to interrupt" in str(working.render()))
        assert re.search(r"working \d+s", str(working.render()))
        first = int(re.search(r"working (\d+)s", str(working.render())).group(1))
        # Later than the first reading (a loaded machine may skip a tick, so not necessarily first + 1).
        await wait_for(pilot, lambda: int(re.search(r"working (\d+)s", str(working.render())).group(1)) > first,
                       timeout=30)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not working.display)


@asynctest
async def test_command_output_scrolls_into_view(make_app):
    app = make_app([final("\n\n".join(f"paragraph {i}" for i in range(60)))])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "long answer")
        await wait_for(pilot, lambda: app.query(AnswerView) and not app._busy)
        await send(pilot, "/plan")
        await pilot.pause(0.3)
        transcript = app.query_one("#transcript")
        assert transcript.max_scroll_y > 0 and transcript.scroll_y >= transcript.max_scroll_y - 1
        assert not app.query_one("#new-output").display


@asynctest
async def test_output_below_a_scrolled_up_view_shows_a_marker_instead_of_jumping(make_app):
    app = make_app([final("\n\n".join(f"paragraph {i}" for i in range(60)))])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "long answer")
        await wait_for(pilot, lambda: app.query(AnswerView) and not app._busy)
        await pilot.pause(0.2)
        await pilot.press("pageup", "pageup")
        await pilot.pause(0.2)
        transcript = app.query_one("#transcript")
        reading = transcript.scroll_y
        await send(pilot, "/plan")
        await pilot.pause(0.3)
        assert abs(transcript.scroll_y - reading) <= 1 and transcript.scroll_y < transcript.max_scroll_y - 5
        assert app.query_one("#new-output").display
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown")
        await pilot.pause(0.3)
        assert not app.query_one("#new-output").display


@asynctest
async def test_the_status_bar_git_field_follows_undo(make_app, repo):
    app = make_app([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed.")], approval="full-auto")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "fix add")
        await wait_for(pilot, lambda: "main*" in str(app.query_one("#status").render()))
        await send(pilot, "/undo")
        await wait_for(pilot, lambda: "restored" in transcript_text(app))
        await wait_for(pilot, lambda: "main*" not in str(app.query_one("#status").render())
                       and "main" in str(app.query_one("#status").render()))


@asynctest
async def test_a_refused_call_looks_refused_and_tool_time_leaves_out_the_approval_wait(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["true"]}), call("container.exec", {"cmd": ["touch", "x"]}),
                    final("Done.")], timings=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        thinking = 3.0
        await pilot.pause(thinking)  # the user thinks
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await until_answerable(pilot)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.query(AnswerView))
        first, second = list(app.query(ToolCard))
        # Seconds of work, not the seconds of thinking (the sandboxed `true` itself can take a second or more
        # on a loaded machine, so the bound is the thinking time, which counting the wait would exceed).
        shown = float(re.search(r"✓ ([\d.]+)s", str(first.title)).group(1))
        assert first.outcome == "ok" and shown < thinking
        assert second.outcome == "refused" and "⊘ refused" in str(second.title) and "failed" not in str(second.title)
        assert not (repo / "x").exists()


@asynctest
async def test_the_approval_shows_the_exact_quoted_argv(make_app):
    app = make_app([call("container.exec", {"cmd": ["bash", "-lc", "sleep 30; echo done"]}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.screen.preview == "$ bash -lc 'sleep 30; echo done'"
        await until_answerable(pilot)
        await pilot.press("ctrl+n")


def screen_text(app) -> str:
    """What the terminal shows right now, as text: one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def unwrapped(app, widget) -> str:
    """The rows the widget covers on screen, joined without line breaks (to find text the preview wrapped)."""
    region = widget.region
    rows = screen_text(app).split("\n")[region.y:region.bottom]
    return "".join(row[region.x:region.right].rstrip(" ▁▂▃▄▅▆▇█▊▎┃│") for row in rows)


@asynctest
async def test_a_multi_line_command_says_how_many_more_lines_and_yes_waits_until_the_end_was_seen(make_app, repo):
    script = "\n".join(f"echo line {i}" for i in range(40)) + "\ntouch evil"
    app = make_app([call("container.exec", {"cmd": ["bash", "-c", script]}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        more = app.screen.query_one("#approval-more")
        await wait_for(pilot, lambda: "more line(s) below" in str(more.render()))
        assert "touch evil" not in screen_text(app)
        await until_answerable(pilot)
        await pilot.press("ctrl+y")  # not yet: the end has not been on screen
        await pilot.pause(0.3)
        assert isinstance(app.screen, ApprovalScreen) and not (repo / "evil").exists()
        await pilot.press("end")
        await wait_for(pilot, lambda: "touch evil" in screen_text(app))
        assert "more line(s) below" not in str(more.render())
        await until_answerable(pilot)
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert (repo / "evil").exists()


@asynctest
async def test_a_command_longer_than_the_screen_keeps_the_buttons_and_scrolls_to_its_last_character(make_app, repo):
    size = (80, 24)
    command = ["bash", "-lc", "echo " + "x" * 1500 + " ; touch HIDDEN_TAIL"]
    app = make_app([call("container.exec", {"cmd": command}), final("ok")])
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause(0.2)
        for button in app.screen.query("#approval-buttons Button"):
            assert button.region.bottom <= size[1] and button.region.height > 0, button.id
        preview = app.screen.query_one("#approval-preview")
        assert "Yes" in screen_text(app) and "HIDDEN_TAIL" not in unwrapped(app, preview)
        more = str(app.screen.query_one("#approval-more").render())
        assert "more line(s) below" in more  # the wrapped length counts
        assert app.screen.query_one("#yes").disabled
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown", "pagedown", "pagedown", "pagedown",
                          "pagedown", "pagedown", "pagedown", "pagedown", "pagedown")
        await wait_for(pilot, lambda: "HIDDEN_TAIL'" in unwrapped(app, preview))
        assert not app.screen.query_one("#yes").disabled
        await until_answerable(pilot)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert not (repo / "HIDDEN_TAIL").exists()


async def type_slowly(pilot, text, per_key=0.12):
    for char in text:
        await pilot.press({" ": "space", "\r": "enter"}.get(char, char))
        await pilot.pause(per_key)


@asynctest
async def test_typing_on_while_an_approval_appears_answers_nothing_and_the_letters_reach_the_prompt(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["touch", "typed"]}), final("ok")], delay=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        prompt = app.query_one(PromptInput)
        # A person types a sentence at 120 ms a key; the approval appears part way and they type on.
        await type_slowly(pilot, "yes, and then Also n")
        assert isinstance(app.screen, ApprovalScreen)
        await type_slowly(pilot, "y\rnA yes y\r")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ApprovalScreen) and not (repo / "typed").exists()
        assert "yes, and then Also ny\nnA yes y\n" in prompt.text  # nothing typed was lost
        await until_answerable(pilot)
        await pilot.press("y", "n", "A")  # single letters are not answers even after a pause
        await pilot.pause(0.3)
        assert isinstance(app.screen, ApprovalScreen) and not (repo / "typed").exists()
        await until_answerable(pilot)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert not (repo / "typed").exists()


@asynctest
async def test_always_needs_a_second_confirmation_and_shows_in_the_status_bar(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["touch", "one"]}), call("container.exec", {"cmd": ["touch", "two"]}),
                    final("ok")])
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await until_answerable(pilot)
        await pilot.press("ctrl+a")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ApprovalScreen) and not (repo / "one").exists()
        assert "Ctrl+A again" in str(app.screen.query_one("#approval-more").render())
        await until_answerable(pilot)
        await pilot.press("ctrl+a")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert (repo / "one").exists() and (repo / "two").exists()  # the second call was not asked
        assert "always: container.exec" in str(app.query_one("#status").render())


@asynctest
async def test_enter_on_a_button_reached_with_tab_answers_after_the_guard(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["touch", "tabbed"]}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        appeared = time.monotonic()
        await pilot.press("tab", "enter")  # in the first second: neither moves nor answers
        if time.monotonic() - appeared < 0.8:  # a loaded machine may deliver the keys too late to tell
            await pilot.pause(0.1)
            assert isinstance(app.screen, ApprovalScreen)
        if not isinstance(app.screen, ApprovalScreen):
            pytest.skip("the machine was too slow to press keys within the modal's first second")
        await until_answerable(pilot)
        await pilot.press("tab")
        await until_answerable(pilot)
        assert app.screen.focused.id == "yes"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert (repo / "tabbed").exists()


@asynctest
async def test_ctrl_c_during_an_approval_cancels_the_run_and_takes_the_question_away(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["touch", "cancelled"]}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not isinstance(app.screen, ApprovalScreen) and not app._busy)
        assert not (repo / "cancelled").exists() and app.is_running


@asynctest
async def test_control_sequences_in_a_command_are_shown_not_obeyed(make_app):
    app = make_app([call("container.exec", {"cmd": ["sh", "-c", "touch x\x1b[1A\r$ echo harmless\x1b[8m;rm -rf ~"]}),
                    final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        shown = str(app.screen.query_one("#approval-body").render())
        assert "\\x1b[1A\\r$ echo harmless\\x1b[8m;rm -rf ~" in shown and "\x1b" not in shown
        assert "3 control/invisible" in str(app.screen.query_one("#approval-warning").render())
        await until_answerable(pilot)
        await pilot.press("ctrl+n")


@asynctest
async def test_a_link_in_the_answer_asks_first_and_shows_the_real_address(make_app):
    opened = []
    app = make_app([final("See [the docs](https://evil.example/\x1b]52;c;eA==\x07steal).")])
    app.open_url = lambda url, **kwargs: opened.append(url)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "links")
        await wait_for(pilot, lambda: app.query(AnswerView))
        from textual.widgets import Markdown

        view = app.query_one(AnswerView)
        view.post_message(Markdown.LinkClicked(view, "https://evil.example/\\x1b]52;c;eA==\\x07steal"))
        await wait_for(pilot, lambda: isinstance(app.screen, LinkScreen))
        assert opened == []
        assert "https://evil.example/\\x1b]52;c;eA==\\x07steal" in str(app.screen.query_one("#link-url").render())
        await until_answerable(pilot)
        await pilot.press("o")
        await pilot.pause(0.1)
        assert opened == ["https://evil.example/\\x1b]52;c;eA==\\x07steal"]


@asynctest
async def test_help_has_a_line_for_every_command_and_the_palette_one_quit(make_app):
    from gptoss_agent.agent.frontends.tui.screens import COMMANDS

    app = make_app([final("unused")])
    async with app.run_test(size=(100, 40)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert titles.count("Quit") == 1
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = str(app.screen.query_one("#help-body Static").render())
        for name, description in COMMANDS.items():
            assert f"{name:<12} {description}" in shown


def readme_slash_commands() -> list[str]:
    """The slash commands the README's Usage section names after "`/help` lists the slash commands"."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = text.split("`/help` lists the slash commands (`", 1)[1].split("`", 1)[0]
    return listed.split()


@asynctest
async def test_the_palette_and_the_readme_offer_every_slash_command(make_app):
    """Every command /help lists is in the palette (but /quit: Textual's own Quit) and in the README, which
    lagged behind before (/compact and /resume were in neither), and a palette entry runs its command."""
    from gptoss_agent.agent.frontends.tui.screens import COMMANDS

    assert readme_slash_commands() == [name for name in COMMANDS if name != "/help"]
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        palette = {command.title: command for command in app.get_system_commands(app.screen)}
        for name in COMMANDS:  # each entry is titled after its command ("Reasoning: low" for one with a value)
            label = {"/help": "Commands", "/quit": "Quit"}.get(name, name[1:].capitalize())
            assert label in palette or any(title.startswith(label + ": ") for title in palette), name
        palette["Compact"].callback()
        await wait_for(pilot, lambda: "Nothing to compact yet." in transcript_text(app))


@asynctest
async def test_at_80_columns_the_plan_gives_way_and_the_status_keeps_approval_and_sandbox(make_app):
    app = make_app([final("unused")])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None and app._git)
        await pilot.pause(0.2)
        assert not app.query_one("#plan").display or app.query_one("#plan").size.width == 0
        status = str(app.query_one("#status").render())
        assert "approval ask" in status and "sandbox " in status and len(status) <= 80
        assert app.query_one("#transcript").size.width >= 78


@asynctest
async def test_a_repository_settings_file_asks_for_trust_once_before_it_applies(make_app, repo):
    from gptoss_agent.agent import config
    from gptoss_agent.agent.frontends.tui.app import GptossApp

    (repo / ".gptoss-agent.toml").write_text('approval = "full-auto"\nmax_steps = 7\n')
    base = make_app([final("unused")])
    app = GptossApp(base._connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrustScreen) and app.screen.query("#trust-message"))
        assert "approval" in str(app.screen.query_one("#trust-message").render())
        await until_answerable(pilot)
        await pilot.press("T")
        await wait_for(pilot, lambda: app.runtime is not None)
    assert config.repo_settings_to_confirm(repo) is None  # remembered for this exact content


def user_messages(app) -> list[str]:
    import re

    codec = app.runtime.agent.codec
    return [re.search(r"<\|message\|>(.*?)<\|end\|>", codec.decode(s.tokens), re.DOTALL).group(1)
            for s in app.runtime.agent.conversation.segments if s.kind == "user"]


@asynctest
async def test_file_names_with_control_characters_are_never_offered_for_completion(make_app, repo):
    import subprocess

    (repo / "calc\x1b]0;pwned\x07.py").write_text("x = 1\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"@calc")
        await wait_for(pilot, lambda: prompt.suggestions)
        from gptoss_agent.tools.files import repo_files

        assert any("\x1b" in name for name in repo_files(repo))  # git lists it; the TUI must not offer it
        assert "@calc.py" in prompt.suggestions and not any("\x1b" in s for s in prompt.suggestions)


@asynctest
async def test_a_tool_card_at_80_columns_shows_its_status_and_says_what_of_the_command_it_cut(make_app):
    """A4 #3: `echo harmless<200 spaces>; echo EVIL` read as `echo harmless`, and the ✓ was off screen."""
    hidden = "echo harmless" + " " * 200 + "; echo EVIL > evil.txt"
    app = make_app([call("container.exec", {"cmd": ["bash", "-lc", hidden]}),
                    call("container.exec", {"cmd": ["bash", "-lc", "echo harmless\n\n\necho EVIL2 > evil2.txt"]}),
                    call("repo_browser.open_file", {"path": "[link=http://evil.example/]calc.py[/link]"}),
                    final("Done.")], approval="full-auto")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: app.query(AnswerView))
        await pilot.pause(0.3)
        titles = [str(card.title) for card in app.query(ToolCard)]
        assert titles[0].startswith("✓ $ container.exec  bash -lc 'echo harmless ␠×200 ;")
        assert re.search(r"… \+\d+ chars$", titles[0])
        assert titles[1].startswith("✓ $ container.exec  bash -lc 'echo harmless") and titles[1].endswith("… +3 lines")
        assert titles[2].startswith("✗ failed ≡ repo_browser.open_file  [link=http://evil.example")
        rows = screen_text(app).split("\n")
        for card in app.query(ToolCard):  # the whole title is on screen: nothing past the edge
            assert card.region.right <= 80 and len(str(card.title)) + 6 <= 80
        assert any("+3 lines" in row for row in rows) and any("chars" in row and "harmless" in row for row in rows)
        assert any("[link=http://evil.example" in row for row in rows)  # markup in a path is shown, not obeyed
