"""Property: whatever a user does in a session, its log restores exactly the conversation they saw.

Random sequences (seeded, so a failure names its seed and replays) of turns,
/clear, /compact, /resume of another session (or of this one), /reasoning and
a step cancelled mid-generation (Esc) are driven through the agent API the
TUI's handlers call, with the replay backend, the real Harmony renderer, the
real tools on a real repository and a real session log. Then the log is read
back and restored into a fresh agent: the prompt the next step would send must
be the live one token for token, with the same turn structure (which reasoning
later prompts drop), plan and latest test results. Restoring into the same log
(`gptoss-agent resume`) and reading it back again must change nothing.
"""

from __future__ import annotations

import random
import threading

import pytest

from gptoss_agent.agent.model.backends.replay import ReplayBackend
from gptoss_agent.agent.loop import Agent, Budgets
from gptoss_agent.agent.session import SessionLog, find_session, read_session
from tests.fixtures.repos import FIX_PATCH, call, final, make_calc_repo
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox

SEEDS = range(40)
COMPACTION_MARKER = "Summarise it for yourself so you can continue the task"  # prompts/compact.md


class Model:
    """The replay backend, answering a compaction request with a summary wherever the loop makes one.

    The loop compacts by itself when the window runs low, so where a summary is
    asked for depends on sizes, not on the script: this routes by what the
    prompt asks, as a model would. `press_esc_at` is the user pressing Esc as
    the n-th token of the operation arrives (reasoning, answer, a tool call's
    arguments or a summary alike).
    """

    def __init__(self, codec) -> None:
        self.codec = codec
        self.script = ReplayBackend([], codec)
        self.summaries = 0
        self.press_esc_at: int | None = None
        self.tokens = 0

    def load(self, completions: list[str], press_esc_at: int | None = None) -> None:
        self.script = ReplayBackend(completions, self.codec)
        self.press_esc_at, self.tokens = press_esc_at, 0

    def generate(self, prompt, *, stop, on_token, cancel, max_tokens):
        def arriving(token: int) -> bool:
            self.tokens += 1
            if self.tokens == self.press_esc_at:
                cancel.set()
            return on_token(token)

        source = self.script
        if COMPACTION_MARKER in self.codec.decode(list(prompt[-600:])):
            self.summaries += 1
            source = ReplayBackend([final(f"Summary {self.summaries}: looked at calc.py, add is wrong.")], self.codec)
        return source.generate(prompt, stop=stop, on_token=arriving, cancel=cancel, max_tokens=max_tokens)


class Front:
    """What the TUI's handlers do, call for call (agent/tui/app.py: _run_turn, _cmd_clear, _cmd_compact,
    _cmd_resume, _cmd_reasoning), so the property covers the code a user drives."""

    def __init__(self, agent: Agent, model: Model, log: SessionLog) -> None:
        self.agent, self.model, self.log = agent, model, log
        self.started = False
        self.reasoning = "low"

    def turn(self, text: str, completions: list[str], press_esc_at: int | None = None) -> str:
        self.model.load(completions, press_esc_at)
        if not self.started:
            self.agent.start(instructions="Fix things in this repository.", reasoning=self.reasoning)
            self.started = True
        return self.agent.run(text, threading.Event()).status

    def clear(self) -> None:
        self.agent.reset()
        self.started = False

    def compact(self, press_esc_at: int | None = None) -> None:
        if not self.started:
            return
        self.model.load([], press_esc_at)
        self.agent.compact(threading.Event())

    def resume(self, ident: str) -> None:
        record = find_session(ident, self.log.path.parent, repo=str(self.agent.ctx.workspace))
        self.agent.resume(record)
        self.started = bool(self.agent.conversation.segments)

    def set_reasoning(self, effort: str) -> None:
        self.reasoning = effort
        if self.started:
            self.agent.set_reasoning(effort)


@pytest.fixture
def repo(tmp_path):
    return make_calc_repo(tmp_path / "project")


def make_agent(codec, repo, backend, log=None, budgets=Budgets()):
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    return Agent(backend, codec, default_registry(), ctx, sink=lambda e: None, budgets=budgets, session=log)


def random_turn(rng: random.Random, n: int) -> tuple[list[str], int | None]:
    """The completions of one turn, and when (if ever) the user presses Esc during it.

    (run_tests, whose output a compaction keeps, takes seconds in the sandbox: test_session_log.py
    covers it once instead of here many times.)
    """
    think = lambda: "thinking " * rng.randint(0, 30)  # noqa: E731
    steps: list[str] = []
    for _ in range(rng.choice([0, 0, 1, 2])):
        steps.append(rng.choice([
            call("repo_browser.open_file", {"path": "calc.py"}, analysis=think()),
            call("repo_browser.search", {"query": f"def {rng.choice(['add', 'mul', 'nothing'])}"}, analysis=think()),
            call("functions.update_plan", {"plan": [{"step": f"step {n}", "status": "in_progress"}]}),
            call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis=think()),
            call("container.exec", {"cmd": "echo hi"}, analysis=think()),
            "this is not Harmony at all",  # a format error: the agent answers with a notice
            f"<|channel|>commentary<|message|>Looking at step {n}.<|end|><|start|>assistant"
            + call("repo_browser.list_dir", {"path": "."}),
        ]))
    steps.append(final(f"Answer {n}: " + "word " * rng.randint(1, 60), analysis=think()))
    press_esc_at = None
    if rng.random() < 0.3:  # Esc, as some token of the turn arrives: in reasoning, an answer, a call, a summary
        press_esc_at = rng.randint(1, sum(len(step) for step in steps) // 3)
    return steps, press_esc_at


def previous_session(codec, repo, directory, turns: list[tuple[str, list[str]]], *, crash_in_call=False) -> str:
    """A session recorded earlier in this repository (optionally ending mid tool call, as a crash leaves it)."""
    log = SessionLog.create(repo=str(repo), task="earlier", config={}, directory=directory)
    model = Model(codec)
    front = Front(make_agent(codec, repo, model, log), model, log)
    for text, completions in turns:
        front.turn(text, completions)
    if crash_in_call:
        log.write("tool_started", durable=True, id="call_9", name="container.exec", arguments={"cmd": "sleep 100"})
    log.close()
    return log.id


def assert_same_conversation(restored: Agent, live: Agent) -> None:
    assert restored.conversation.prompt() == live.conversation.prompt()  # the next step's tokens
    shape = lambda a: [(s.kind, s.tokens, s.turn, s.spans) for s in a.conversation.segments]  # noqa: E731
    assert shape(restored) == shape(live)
    assert restored.conversation.turn == live.conversation.turn
    assert restored.conversation.finished_turns == live.conversation.finished_turns
    assert restored.ctx.plan == live.ctx.plan
    assert restored._last_tests == live._last_tests


@pytest.mark.parametrize("seed", SEEDS)
def test_any_sequence_of_turns_and_commands_restores_token_for_token(codec, repo, tmp_path, seed):
    rng = random.Random(seed)
    directory = tmp_path / "sessions"
    others = [previous_session(codec, repo, directory, [("look at calc", [
                  call("functions.update_plan", {"plan": [{"step": "read", "status": "completed"}]}),
                  final("calc.py has add and mul.", analysis="ok")]), ("and now?", [final("Nothing else.")])]),
              previous_session(codec, repo, directory, [("run something", [final("Sure.", analysis="hm")])],
                               crash_in_call=True)]
    log = SessionLog.create(repo=str(repo), task="tui", config={}, directory=directory)
    model = Model(codec)
    # A small window: the loop also compacts by itself now and then. A small step limit: answers are cut off
    # (the model is asked again, and the script may run out: an error ends that turn).
    live = make_agent(codec, repo, model, log, Budgets(context_window=rng.choice([4000, 6000, 32768]),
                                                       compact_below=700,
                                                       max_tokens_per_step=rng.choice([8192, 8192, 60])))
    front = Front(live, model, log)
    done = []
    for n in range(rng.randint(3, 9)):
        op = rng.choices(["turn", "clear", "compact", "resume", "reasoning"], [6, 1, 1, 1, 1.5])[0]
        if op == "turn":
            steps, esc = random_turn(rng, n)
            done.append(f"turn {front.turn(f'request {n}: ' + 'please ' * rng.randint(0, 20), steps, esc)}")
        elif op == "clear":
            front.clear()
        elif op == "compact":
            front.compact(press_esc_at=rng.choice([None, None, 3]))
        elif op == "resume":
            front.resume(rng.choice(others + [log.id]))
        else:
            front.set_reasoning(rng.choice(["low", "medium", "high"]))
        done.append(op) if op != "turn" else None
    log.close()

    record = read_session(log.path)
    assert not record.damaged, record.warnings
    restored = make_agent(codec, repo, Model(codec))
    restored.restore(record)
    assert_same_conversation(restored, live), f"seed {seed}: {done}"

    # `gptoss-agent resume` restores into the same log: that adds nothing a later restore would see differently.
    again_log = SessionLog(log.path)
    again = make_agent(codec, repo, Model(codec), again_log)
    again.restore(read_session(log.path))
    again_log.close()
    third = make_agent(codec, repo, Model(codec))
    third.restore(read_session(log.path))
    assert_same_conversation(third, live)
