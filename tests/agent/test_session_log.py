"""The session log's own rules: what restore trusts, how interrupted calls are found, which session /resume picks."""

from __future__ import annotations

import json

import pytest

from gptoss_agent.agent.model.backends.replay import ReplayBackend
from gptoss_agent.agent.events import ToolCalled
from gptoss_agent.agent.loop import Agent
from gptoss_agent.agent.session import SessionError, SessionLog, find_session, read_session
from tests.fixtures.repos import call, final, make_calc_repo
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox


@pytest.fixture
def repo(tmp_path):
    return make_calc_repo(tmp_path / "project")


def agent_on(codec, repo, completions, log=None, events=None):
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    sink = events.append if events is not None else (lambda e: None)
    return Agent(ReplayBackend(completions, codec), codec, default_registry(), ctx, sink=sink, session=log)


def log_with(tmp_path, repo, *records) -> SessionLog:
    log = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path / "sessions")
    for record in records:
        log.write(record.pop("kind"), **record)
    log.close()
    return log


def test_a_call_id_used_again_after_a_resume_is_still_found_interrupted(tmp_path, repo):
    log = log_with(tmp_path, repo, {"kind": "tool_started", "id": "call_1", "name": "container.exec"},
                   {"kind": "tool_result", "id": "call_1", "name": "container.exec"},
                   {"kind": "tool_started", "id": "call_1", "name": "container.exec"})
    interrupted = read_session(log.path).interrupted_calls()
    assert [c["id"] for c in interrupted] == ["call_1"]


def test_a_resumed_run_numbers_its_calls_after_the_logs_own(codec, repo, tmp_path):
    log = log_with(tmp_path, repo, {"kind": "tool_started", "id": "call_7", "name": "container.exec"})
    events = []
    log = SessionLog(log.path)
    agent = agent_on(codec, repo, [call("repo_browser.open_file", {"path": "calc.py"}), final("ok")], log, events)
    agent.start(instructions="i", reasoning="low")
    agent.restore(read_session(log.path))
    agent.run("go on")
    log.close()
    assert [e.id for e in events if isinstance(e, ToolCalled)] == ["call_8"]
    assert read_session(log.path).interrupted_calls() == []  # call_7 was answered as interrupted, once


@pytest.mark.parametrize("line", [
    {"kind": "segment", "segment": "assistant", "tokens": [1], "turn": 1, "spans": [["a", "b", None, False]]},
    {"kind": "segment", "segment": "assistant", "tokens": [1], "turn": 1, "spans": [[0, 1, 5, False]]},
    {"kind": "reasoning", "effort": "high", "tokens": ["x"]},
    {"kind": "resumed", "session": "s", "plan": [{"step": 1}], "commits": []},
    {"kind": "resumed", "session": "s", "plan": [], "commits": [None]},
    {"kind": "event", "event": {"type": "plan", "steps": ["not a step"]}},
    {"kind": "last_tests", "text": 5},
])
def test_records_restore_would_trip_on_later_are_skipped_with_file_and_line(tmp_path, repo, codec, line):
    log = log_with(tmp_path, repo)
    with open(log.path, "a") as handle:
        handle.write(json.dumps(line) + "\n")
    record = read_session(log.path)
    assert record.warnings and f"{log.path} line 2: skipped" in record.warnings[0]
    with pytest.raises(SessionError, match="damaged"):
        find_session(log.id, log.path.parent)
    agent = agent_on(codec, repo, [])
    agent.restore(record)  # what is left restores, and a prompt renders
    agent.conversation.prompt()


def test_a_reasoning_change_restores_the_system_message_it_rendered(codec, repo, tmp_path):
    log = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    agent = agent_on(codec, repo, [final("a"), final("b")], log)
    agent.start(instructions="i", reasoning="low")
    agent.run("one")
    agent.set_reasoning("high")
    agent.run("two")
    log.close()
    restored = agent_on(codec, repo, [])
    restored.restore(read_session(log.path))
    assert "Reasoning: high" in codec.decode(restored.conversation.prompt())
    assert restored.conversation.prompt() == agent.conversation.prompt()


def test_bare_resume_skips_the_session_asking_for_it(tmp_path, repo):
    earlier = log_with(tmp_path, repo)
    current = log_with(tmp_path, repo)
    directory = current.path.parent
    assert find_session(None, directory, repo=str(repo)).id in (earlier.id, current.id)
    assert find_session(None, directory, repo=str(repo), exclude=current.id).id == earlier.id
    earlier.path.unlink()
    with pytest.raises(SessionError, match="no sessions yet"):
        find_session(None, directory, repo=str(repo), exclude=current.id)


def test_a_cancelled_compaction_leaves_the_conversation_as_it_was(codec, repo, tmp_path):
    import threading

    log = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    agent = agent_on(codec, repo, [final("first answer " * 20), final("Half a summ" + "ary " * 200)], log)
    agent.start(instructions="i", reasoning="low")
    agent.run("one")
    before = agent.conversation.prompt()
    cancel = threading.Event()
    replay = agent.backend

    def generate(prompt, *, on_token, **kwargs):  # Esc pressed as the summary's fifth token arrives
        def counting(token, seen=[]):
            seen.append(token)
            if len(seen) == 5:
                cancel.set()
            return on_token(token)
        return replay.generate(prompt, on_token=counting, **kwargs)

    agent.backend = type("Pressed", (), {"generate": staticmethod(generate)})()
    assert agent.compact(cancel) is False
    assert agent.conversation.prompt() == before
    log.close()
    restored = agent_on(codec, repo, [])
    restored.restore(read_session(log.path))
    assert restored.conversation.prompt() == before


def test_the_test_results_a_compaction_keeps_survive_a_restore_and_a_resume_elsewhere(codec, repo, tmp_path):
    earlier = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    agent = agent_on(codec, repo, [call("functions.run_tests", {}), final("one test fails")], earlier)
    agent.start(instructions="i", reasoning="low")
    agent.run("run the tests")
    earlier.close()
    assert "1 failed" in agent._last_tests
    current = SessionLog.create(repo=str(repo), task="t", config={}, directory=tmp_path)
    other = agent_on(codec, repo, [], current)
    other.resume(read_session(earlier.path))  # the TUI's /resume
    current.close()
    for path in (earlier.path, current.path):
        restored = agent_on(codec, repo, [])
        restored.restore(read_session(path))
        assert restored._last_tests == agent._last_tests
        assert restored.conversation.prompt() == agent.conversation.prompt()


def test_resuming_a_session_left_cleared_starts_a_whole_conversation_or_says_why_not(tmp_path, repo, vocab_dir):
    """/clear, then quit: `resume` must not send the model a user message without its system message."""
    import os
    import subprocess
    import sys

    from tests.fixtures.repos import write_replay

    state = tmp_path / "state"
    log = SessionLog.create(repo=str(repo), task="tui", config={}, directory=state / "sessions")
    log.write("cleared")
    log.close()
    env = {**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state)}
    replay = write_replay(tmp_path / "replay.json", [final("Hello again.")])

    def resume(*extra):
        return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "resume", log.id, "--backend", f"replay:{replay}",
                               *extra], cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    refused = resume()
    assert refused.returncode == 2 and "no conversation to continue" in refused.stderr
    done = resume("--message", "start over")
    assert done.returncode == 0, done.stderr
    kinds = [r["segment"] for r in read_session(log.path).records if r["kind"] == "segment"]
    assert kinds[:3] == ["system", "developer", "user"]
