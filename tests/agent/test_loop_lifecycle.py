"""How a run ends (Stop), how tools report (ToolError, their own events) and who answers approvals, through the real
loop: the replay backend, real tools on a real repository."""

from __future__ import annotations

import pytest

from gptoss_agent.agent.events import RunFinished
from gptoss_agent.agent.approvals import approve_all, deny_all
from gptoss_agent.agent.loop import Agent, Budgets
from gptoss_agent.agent.model.backends.replay import ReplayBackend
from gptoss_agent.agent.session import SessionLog, read_session
from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.registry import Registry, ToolError, tool
from gptoss_agent.tools.sandbox import Sandbox
from tests.fixtures.repos import FIX_PATCH, CompactionAwareReplay, call, final, make_calc_repo


@pytest.fixture
def repo(tmp_path):
    return make_calc_repo(tmp_path / "project")


def agent_on(codec, repo, backend, *, registry=None, approver=approve_all, budgets=Budgets(), session=None):
    events = []
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    agent = Agent(backend, codec, registry or default_registry(), ctx, sink=events.append, approver=approver,
                  budgets=budgets, session=session)
    agent.start(instructions="Fix things.", reasoning="low")
    return agent, events


@tool("functions.check_ticket")
def check_ticket(ctx: ToolContext, ticket: str) -> ToolResult:
    """Look up a ticket.

    Args:
        ticket: its id, like ABC-1
    """
    if "-" not in ticket:
        raise ToolError(f"{ticket!r} is not a ticket id; ids look like ABC-1")
    return ToolResult(True, f"{ticket}: open")


def test_a_tool_error_reaches_the_model_as_a_failed_result_and_the_run_goes_on(codec, repo):
    backend = ReplayBackend([call("functions.check_ticket", {"ticket": "42"}),
                             call("functions.check_ticket", {"ticket": "ABC-42"}), final("ABC-42 is open")], codec)
    agent, events = agent_on(codec, repo, backend, registry=Registry().add(check_ticket))
    result = agent.run("is ticket 42 open?")
    assert result.status == "completed" and result.final == "ABC-42 is open"
    first, second = [e for e in events if e.type == "tool_result"]
    assert not first.ok and first.output == "'42' is not a ticket id; ids look like ABC-1"
    assert second.ok and second.output == "ABC-42: open"
    assert "'42' is not a ticket id; ids look like ABC-1" in codec.decode(agent.conversation.prompt())


def test_what_a_tool_reports_follows_its_own_result_in_the_events_and_the_log(codec, repo, tmp_path):
    log = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    backend = ReplayBackend([call("functions.update_plan", {"plan": [{"step": "fix add", "status": "in_progress"}]}),
                             call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                             call("functions.run_tests", {}),
                             call("functions.git_commit", {"message": "Fix add"}),
                             final("done")], codec)
    agent, events = agent_on(codec, repo, backend, session=log)
    assert agent.run("fix add").status == "completed"
    log.close()
    kinds = [e.type for e in events if e.type not in ("step", "delta", "reasoning", "message")]
    assert kinds == ["tool_call", "tool_result", "plan", "tool_call", "tool_result",
                     "tool_call", "tool_result", "tests", "tool_call", "tool_result", "commit", "run_finished"]
    logged = [r["event"]["type"] for r in read_session(log.path).records
              if r.get("kind") == "event" and r["event"]["type"] in ("tool_result", "plan", "tests", "commit")]
    assert logged == ["tool_result", "plan", "tool_result", "tool_result", "tests", "tool_result", "commit"]
    assert "The agent counted that test run" in codec.decode(agent.conversation.prompt())


def test_a_stop_decided_mid_step_ends_the_run_with_its_status_and_reason(codec, repo, tmp_path):
    """The window cannot hold even the compacted conversation: the run ends there, said in run_finished."""
    log = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    many = [call("repo_browser.search", {"query": f"needle{i}"}, analysis="x " * 150) for i in range(6)]
    backend = CompactionAwareReplay(many + [final("finished")], final("Summary."), codec)
    agent, events = agent_on(codec, repo, backend, session=log,
                             budgets=Budgets(context_window=2600, compact_below=2000))
    result = agent.run("find the needles")
    log.close()
    assert (result.status, result.reason) == ("error", "context full after compaction")
    assert isinstance(events[-1], RunFinished)
    assert (events[-1].to_json()["status"], events[-1].to_json()["reason"]) == ("error", "context full after compaction")
    last = [r["event"] for r in read_session(log.path).records if r.get("kind") == "event"][-1]
    assert (last["type"], last["status"], last["reason"]) == ("run_finished", "error", "context full after compaction")


def test_set_approver_changes_who_answers_the_next_call(codec, repo):
    before = (repo / "calc.py").read_text()
    backend = ReplayBackend([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("not allowed"),
                             call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("fixed")], codec)
    agent, events = agent_on(codec, repo, backend, approver=deny_all)
    agent.run("fix add")
    assert (repo / "calc.py").read_text() == before
    agent.set_approver(approve_all)
    assert agent.run("now fix it").final == "fixed"
    assert "return a + b" in (repo / "calc.py").read_text()
