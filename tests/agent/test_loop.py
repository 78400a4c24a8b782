"""The loop driven in process by the replay backend (no model), with real tools on a real repo."""

from __future__ import annotations

import threading

import pytest

from gptoss_agent.agent.model.backends.replay import ReplayBackend
from gptoss_agent.agent.events import Notice, RunFinished, TextStreamed, ToolFinished
from gptoss_agent.agent.approvals import deny_all
from gptoss_agent.agent.loop import Agent, Budgets
from tests.fixtures.repos import FIX_PATCH, CompactionAwareReplay, call, final, make_calc_repo
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox


@pytest.fixture
def repo(tmp_path):
    return make_calc_repo(tmp_path / "project")


def make_agent(codec, repo, completions, *, budgets=Budgets(), approver=None, delay=0.0, backend=None):
    events = []
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    backend = backend or ReplayBackend(completions, codec, token_delay_s=delay)
    kwargs = {"approver": approver} if approver else {}
    agent = Agent(backend, codec, default_registry(), ctx, sink=events.append, budgets=budgets, **kwargs)
    agent.start(instructions="Fix things.", reasoning="low")
    return agent, events, backend


def test_each_step_prompt_extends_the_previous_one(codec, repo):
    agent, events, _ = make_agent(codec, repo, [
        call("repo_browser.open_file", {"path": "calc.py"}, analysis="look"),
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="fix"),
        final("done", analysis="all good")])
    prompts = []
    original = agent.conversation.prompt

    def recording_prompt():
        prompts.append(original())
        return prompts[-1]

    agent.conversation.prompt = recording_prompt
    result = agent.run("fix add")
    assert result.status == "completed" and result.final == "done"
    for earlier, later in zip(prompts, prompts[1:]):
        assert later[:len(earlier) - len(codec.assistant_start)] == earlier[:-len(codec.assistant_start)]
    steps = [e for e in events if e.type == "step"]
    assert all(s.cached_tokens > 0 for s in steps[1:])


def test_a_refused_call_is_told_to_the_model_and_nothing_changes(codec, repo):
    before = (repo / "calc.py").read_text()
    agent, events, _ = make_agent(codec, repo, [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                final("ok, I will not.")], approver=deny_all)
    assert agent.run("fix").status == "completed"
    result = next(e for e in events if isinstance(e, ToolFinished))
    assert not result.ok and "The user declined this call" in result.output
    assert (repo / "calc.py").read_text() == before
    assert "The user declined this call" in codec.decode(agent.conversation.prompt())


def test_cancel_mid_generation_stops_within_a_token_and_keeps_the_history(codec, repo):
    cancel = threading.Event()
    agent, events, _ = make_agent(codec, repo, [final("word " * 400)], delay=0.002)
    streamed = []

    def sink(event):
        events.append(event)
        if isinstance(event, TextStreamed):
            streamed.append(event.text)
            if len(streamed) == 20:
                cancel.set()

    agent._sink = sink
    result = agent.run("talk", cancel)
    assert result.status == "cancelled"
    assert len(streamed) <= 21
    assert "word word" in codec.decode(agent.conversation.prompt())
    assert isinstance(events[-1], RunFinished) and events[-1].status == "cancelled"


def test_tool_results_are_capped_to_their_token_budget_and_say_so(codec, repo):
    (repo / "big.txt").write_text("".join(f"line {i} with some text\n" for i in range(3000)))
    agent, events, _ = make_agent(codec, repo, [call("container.exec", {"cmd": "cat big.txt"}), final("ok")],
                                  budgets=Budgets(tool_result_tokens=500))
    agent.run("show")
    result = next(e for e in events if isinstance(e, ToolFinished))
    assert result.truncated and "omitted to fit the context budget" in result.output
    assert codec.count(result.output) <= 560
    assert "line 2999 with some text" in result.output  # the tail survives


def test_compaction_summarises_and_keeps_the_task(codec, repo):
    many = [call("repo_browser.search", {"query": f"needle{i}"}, analysis="x " * 150) for i in range(6)]
    summary = final("Searched for needles 0-5; nothing found. Next: fix add in calc.py.")
    agent, events, backend = make_agent(codec, repo, [], budgets=Budgets(context_window=2600, compact_below=700),
                                        backend=CompactionAwareReplay(many + [final("finished")], summary, codec))
    result = agent.run("find the needles, then fix add")
    assert result.status == "completed" and result.final == "finished"
    notices = [e.text for e in events if isinstance(e, Notice) and "compacted" in e.text]
    assert notices, "the compaction must be announced"
    text = codec.decode(agent.conversation.prompt())
    assert "find the needles, then fix add" in text and "Searched for needles 0-5" in text
    assert "needle0" not in text.split("Searched for needles")[0].split("find the needles")[1]


def test_a_compacted_session_restores_to_the_same_prompt(codec, repo, tmp_path):
    from gptoss_agent.agent.session import SessionLog, read_session

    many = [call("repo_browser.search", {"query": f"needle{i}"}, analysis="x " * 150) for i in range(6)]
    log = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    events = []
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    backend = CompactionAwareReplay(many + [final("finished")], final("Summary of the needles."), codec)
    agent = Agent(backend, codec, default_registry(), ctx, sink=events.append, session=log,
                  budgets=Budgets(context_window=2600, compact_below=700))
    agent.start(instructions="Fix things.", reasoning="low")
    assert agent.run("find the needles").final == "finished"
    log.close()
    assert any(s.kind == "notice" for s in agent.conversation.segments)
    fresh, _, _ = make_agent(codec, repo, [])
    fresh.conversation.segments.clear()
    fresh.restore(read_session(log.path))
    assert fresh.conversation.prompt() == agent.conversation.prompt()
