"""A4 #9: the plan after a cancel, bare launches in /sessions, a resumed session's name."""

from __future__ import annotations

from gptoss_agent.agent.session import list_sessions
from gptoss_agent.agent.frontends.tui.widgets import PlanPanel
from tests.fixtures.repos import call, final
from tests.tui.conftest import wait_for
from tests.tui.test_app import asynctest, send, transcript_text
from tests.tui.test_session_restore import earlier_session


@asynctest
async def test_a_cancelled_run_shows_its_step_in_progress_as_stopped(make_app):
    app = make_app([call("functions.update_plan", {"plan": [{"step": "inspect", "status": "in_progress"},
                                                            {"step": "fix", "status": "pending"}]}),
                    final("word " * 3000)], delay=0.003)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "go")
        await wait_for(pilot, lambda: "◐ inspect" in str(app.query_one(PlanPanel).render()) and app._stream is not None)
        await pilot.press("escape")
        await wait_for(pilot, lambda: "■ cancelled" in transcript_text(app) and not app._busy)
        plan = str(app.query_one(PlanPanel).render())
        assert "■ inspect" in plan and "◐" not in plan and "○ fix" in plan


@asynctest
async def test_a_launch_that_sent_nothing_leaves_no_session_and_a_resumed_one_is_named_by_its_task(make_app, repo,
                                                                                                      codec):
    before = {s.id for s in list_sessions(repo=str(repo))}
    app = make_app([final("unused")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "/plan")  # a command is not a message
        await pilot.pause(0.2)
    assert {s.id for s in list_sessions(repo=str(repo))} == before

    earlier = earlier_session(codec, repo)
    app = make_app([final("Continued.")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, f"/resume {earlier}")
        await wait_for(pilot, lambda: "Resumed session" in transcript_text(app))
        this = app.runtime.session.id
    from gptoss_agent.agent.frontends.headless import session_task

    named = {s.id: session_task(s) for s in list_sessions(repo=str(repo))}
    assert named[this] == "earlier task"  # not "(interactive session)"
