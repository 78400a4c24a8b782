"""A4 #4: keys typed while the approval modal is up reach the hidden prompt in the order typed, none lost."""

from __future__ import annotations

from gptoss_agent.agent.frontends.tui.screens import ApprovalScreen
from gptoss_agent.agent.frontends.tui.widgets import AnswerView, PromptInput
from tests.fixtures.repos import call, final
from tests.tui.conftest import until_answerable, wait_for
from tests.tui.test_app import asynctest, send


@asynctest
async def test_a_burst_typed_at_the_modal_keeps_its_order_in_the_prompt(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["touch", "typed"]}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("a", "b", "c")  # at once, as tmux send-keys and fast typists do
        await until_answerable(pilot)
        await pilot.press("h", "e", "l", "l", "o")  # after the guard: still not answers, still in order
        await pilot.pause(0.6)
        await pilot.press("space", "w", "o", "r", "l", "d", "enter")
        await pilot.pause(0.2)
        prompt = app.query_one(PromptInput)
        assert isinstance(app.screen, ApprovalScreen) and not (repo / "typed").exists()
        assert prompt.text == "abchello world\n"
        await until_answerable(pilot)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert app.query_one(PromptInput).text == "abchello world\n"


def test_a_burst_typed_at_the_modal_in_a_real_terminal_reaches_the_prompt_in_order(repo, tmp_path, codec):
    """In a real pty the first key of a burst went through the modal's own queue and landed last
    (`hello` → `elloh`); the pilot above cannot see that, its keys wait for each other."""
    import json

    from tests.tui.test_pty import launch, user_messages_in_newest_session

    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([call("container.exec", {"cmd": ["touch", "typed"]}), final("Not run."),
                                  final("Second answer.")]))
    session = launch(repo, replay)
    session.wait_for(b"Ready", timeout=90)
    session.send("go\r")
    session.wait_for(b"Allow container.exec", timeout=60)
    session.read_for(1.5)  # past the modal's guard: the first key of the burst is one it would take
    session.send("hello")
    session.read_for(0.8)
    session.send(" world")
    session.read_for(0.8)
    session.send("\x0e")  # Ctrl+N: no
    session.wait_for(b"Not run.", timeout=60)
    session.send("\r")  # the prompt holds what was typed at the modal: send it
    session.wait_for(b"Second answer.", timeout=60)
    session.send("\x03\x03")
    assert session.close() == 0
    assert not (repo / "typed").exists()
    assert user_messages_in_newest_session(codec) == ["go", "hello world"]


@asynctest
async def test_tab_then_enter_answers_with_the_focused_button_as_the_hint_says(make_app, repo):
    app = make_app([call("container.exec", {"cmd": ["touch", "typed"]}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert "or Tab, Enter" in str(app.screen.query_one("#approval-more").render())
        await until_answerable(pilot)
        await pilot.press("tab", "enter")  # at once: a focus move then Enter is deliberate, not typing
        await wait_for(pilot, lambda: app.query(AnswerView))
        assert (repo / "typed").exists() and app.query_one(PromptInput).text == ""


def test_tab_enter_in_one_burst_in_a_real_terminal_answers_with_the_focused_button(repo, tmp_path, codec):
    """In a real pty the Tab's focus move (a binding) came back after the Enter behind it: Enter was
    a new line in the prompt. The modal's Tab now moves the focus at once."""
    import json

    from tests.tui.test_pty import launch, user_messages_in_newest_session

    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([call("container.exec", {"cmd": ["touch", "typed"]}), final("Ran it."),
                                  final("Second answer.")]))
    session = launch(repo, replay)
    session.wait_for(b"Ready", timeout=90)
    session.send("go\r")
    session.wait_for(b"Allow container.exec", timeout=60)
    session.read_for(1.5)
    session.send("abc")
    session.read_for(0.8)
    session.send("\t\r")  # Tab to Yes, Enter: as tmux send-keys Tab Enter writes them
    session.wait_for(b"Ran it.", timeout=60)
    assert (repo / "typed").exists()
    session.send("\r")
    session.wait_for(b"Second answer.", timeout=60)
    session.send("\x03\x03")
    assert session.close() == 0
    assert user_messages_in_newest_session(codec) == ["go", "abc"]  # no stray new line from the Enter
