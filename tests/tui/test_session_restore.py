"""Through the real TUI: a session with /reasoning, /clear, an Esc mid-stream, /compact and /resume
restores from its log to exactly the conversation on screen (the property test drives the same agent
calls at random: tests/agent/test_session_roundtrip.py)."""

from __future__ import annotations

import asyncio

from gptoss_agent.agent.session import SessionLog, read_session
from gptoss_agent.agent.frontends.tui.widgets import AnswerView
from tests.fixtures.repos import FIX_PATCH, call, final
from tests.tui.conftest import wait_for
from tests.tui.test_app import send, transcript_text


def earlier_session(codec, repo) -> str:
    """A session of this repository recorded before the app started (the one /resume picks up)."""
    from gptoss_agent.agent.model.backends.replay import ReplayBackend
    from gptoss_agent.agent.loop import Agent
    from gptoss_agent.tools.catalog import default_registry
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.sandbox import Sandbox

    log = SessionLog.create(repo=str(repo), task="earlier task", config={})
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    backend = ReplayBackend([call("functions.update_plan", {"plan": [{"step": "read calc", "status": "completed"}]}),
                             final("calc.py has add and mul.", analysis="read it")], codec)
    agent = Agent(backend, codec, default_registry(), ctx, sink=lambda e: None, session=log)
    agent.start(instructions="Earlier instructions.", reasoning="medium")
    agent.run("what is in calc.py?")
    log.close()
    return log.id


def test_what_the_tui_showed_is_what_its_log_restores(make_app, repo, codec):
    earlier = earlier_session(codec, repo)
    app = make_app([call("repo_browser.open_file", {"path": "calc.py"}, analysis="Let me look."),
                    final("It subtracts.", analysis="Found it."),
                    call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="Patch it."),
                    final("Fixed.", analysis="Done."),
                    final("word " * 3000, analysis="Long answer."),  # cancelled with Esc mid-stream
                    final("Short.", analysis="Brief."),
                    final("Summary: the user asked twice; the long answer was cut off."),  # /compact
                    final("Back in the earlier session.", analysis="Resumed.")],
                   approval="full-auto", delay=0.002)

    async def idle(pilot, answers):
        await wait_for(pilot, lambda: len(app.query(AnswerView)) >= answers and not app._busy and not app.outbox,
                       timeout=60)

    async def body():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.runtime is not None)
            await send(pilot, "What does add do?")
            await idle(pilot, 1)
            await send(pilot, "/reasoning high")
            await send(pilot, "Fix it.")
            await idle(pilot, 2)
            await send(pilot, "/clear")
            await send(pilot, "Talk a lot.")
            await wait_for(pilot, lambda: app._stream is not None and "word word" in app._stream.text)
            await pilot.press("escape")
            await wait_for(pilot, lambda: "■ cancelled" in transcript_text(app) and not app._busy)
            await send(pilot, "Now briefly.")
            await idle(pilot, 1)
            live = app.runtime.agent
            prompt_before_compact = live.conversation.prompt()
            await send(pilot, "/compact")
            await wait_for(pilot, lambda: live.conversation.prompt() != prompt_before_compact and not app._busy)
            checkpoints.append(("after /compact", list(live.conversation.prompt())))
            await send(pilot, f"/resume {earlier}")
            await wait_for(pilot, lambda: "Resumed session" in transcript_text(app))
            assert app.runtime.ctx.plan == [{"step": "read calc", "status": "completed"}]
            shown = transcript_text(app)  # the screen shows the conversation the model now has
            assert "what is in calc.py?" in shown and "Now briefly." not in shown
            assert [a.original for a in app.query(AnswerView)] == ["calc.py has add and mul."]
            await send(pilot, "And now?")
            await idle(pilot, 2)
            checkpoints.append(("end", list(live.conversation.prompt())))
            state.update(path=app.runtime.session.path, agent=live)

    checkpoints: list = []
    state: dict = {}
    asyncio.run(body())

    from gptoss_agent.agent.model.backends.replay import ReplayBackend
    from gptoss_agent.agent.loop import Agent
    from gptoss_agent.tools.catalog import default_registry
    from gptoss_agent.tools.context import ToolContext

    live = state["agent"]
    record = read_session(state["path"])
    assert not record.damaged, record.warnings
    restored = Agent(ReplayBackend([], codec), codec, default_registry(), ToolContext(workspace=repo),
                     sink=lambda e: None)
    restored.restore(record)
    assert restored.conversation.prompt() == checkpoints[-1][1] == live.conversation.prompt()
    assert restored.conversation.finished_turns == live.conversation.finished_turns
    assert restored.ctx.plan == live.ctx.plan
    text = codec.decode(restored.conversation.prompt())
    assert "what is in calc.py?" in text and "And now?" in text  # the earlier session, then what followed
    assert "What does add do?" not in text  # cleared, and /resume replaced the rest


def test_resume_in_the_tui_says_a_log_is_damaged_and_never_picks_its_own_session(make_app, repo):
    from tests.fixtures.repos import final as final_answer

    damaged = SessionLog.create(repo=str(repo), task="damaged one", config={})
    damaged.write("segment", segment="user", tokens=["not", "ids"], turn=1)
    damaged.close()
    app = make_app([final_answer("unused")])

    async def body():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.runtime is not None)
            await send(pilot, f"/resume {damaged.id}")
            await wait_for(pilot, lambda: "damaged" in transcript_text(app))
            assert f"{damaged.path} line 2" in transcript_text(app).replace("\n", "")
            damaged.path.unlink()
            await send(pilot, "/resume")  # the only session left is this one: nothing to resume
            await wait_for(pilot, lambda: "no sessions yet" in transcript_text(app))
            assert not app.runtime.agent.conversation.segments

    asyncio.run(body())
