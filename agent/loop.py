"""The plan-act loop: render, generate, parse; run the tool; repeat until a final answer.

It knows a backend, a codec, a tool registry, an approver and an event sink,
nothing else. History is the model's own tokens (see conversation.py), so each
step's prompt extends the last one and the KV cache is reused. Every way a step
can go wrong ends as a message to the model or a run status, never a crash: each
rule that ends the run raises `Stop(status, reason)` where it decides, and `run`
turns it into the result.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, Sequence

from gptoss_agent.agent import prompts
from gptoss_agent.agent.approvals import Approver, Refused, approve_all
from gptoss_agent.agent.compaction import transcript as compaction_transcript
from gptoss_agent.agent.fences import Fence
from gptoss_agent.agent.model.completion import StepOutcome, ToolCallRequest, interpret
from gptoss_agent.agent.conversation import Conversation, Segment
from gptoss_agent.agent.events import (AgentEvent, ErrorRaised, EventSink, MessageEmitted, Notice, ReasoningEmitted,
                                       RunFinished, RunStatus, StepFinished, TestsReported, TextStreamed, ToolCalled,
                                       ToolFinished)
from gptoss_agent.agent.model.harmony import HarmonyCodec
from gptoss_agent.agent.model.harmony_stream import STOP_TOKENS
from gptoss_agent.agent.protocols import Backend
from gptoss_agent.agent.session import RestoredState, SessionLog, SessionRecord, rebuild
from gptoss_agent.agent.types import ToolDeclaration, ToolResult
from gptoss_agent.tools.context import ToolContext, ToolEmitter
from gptoss_agent.tools.registry import Registry


class Stop(Exception):
    """Raised where the loop decides the run ends; `run` turns it into the RunResult and the RunFinished event.

    It lives here, not in a module of its own: only the loop raises and catches
    it, and front-ends see its status and reason in RunResult / RunFinished.
    """

    def __init__(self, status: RunStatus, reason: str = "", final: str | None = None) -> None:
        super().__init__(reason or status)
        self.status, self.reason, self.final = status, reason, final


@dataclass(frozen=True)
class Budgets:
    """The stop rules' limits."""

    max_steps: int = 50
    max_seconds: float = 3600.0
    max_completion_tokens: int = 200_000
    max_tokens_per_step: int = 8_192
    context_window: int = 32_768
    tool_result_tokens: int = 8_000
    max_format_errors: int = 3
    repeat_warning: int = 3
    compact_below: int = 1024  # compact when fewer tokens than this are left in the window


@dataclass
class RunResult:
    status: RunStatus
    steps: int
    final: str | None = None
    reason: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass
class _Tally:
    steps: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    format_errors: int = 0
    last_call: str | None = None
    repeats: int = 0
    started: float = field(default_factory=time.monotonic)


class Agent:
    """One session's loop over one conversation."""

    def __init__(self, backend: Backend, codec: HarmonyCodec, registry: Registry, ctx: ToolContext, *,
                 sink: EventSink, approver: Approver = approve_all,
                 budgets: Budgets = Budgets(), session: SessionLog | None = None) -> None:
        self.backend, self.codec, self.registry, self.ctx = backend, codec, registry, ctx
        self._approver, self.budgets, self.session = approver, budgets, session
        self._sink = sink
        self.conversation = Conversation(codec)
        self._logged_segments = 0  # how many of the conversation's segments the log holds
        self._logged_finished: set[int] = set()  # which finished turns the log holds
        self._call_counter = 0
        self._last_tests = ""
        # after a tool call: a re-ranked repo map as a notice, or None (tools/repomap_refresh.py)
        self.map_refresher: Callable[[str, bool, dict], str | None] | None = None

    # ------------------------------------------------------------------ set-up

    def start(self, *, instructions: str, reasoning: str, date=None) -> None:
        """System and developer messages: effort, date, the trained tool namespaces, our instructions."""
        declarations: list[ToolDeclaration] = self.registry.declarations()
        self.conversation.add_system(self.codec.render_system(reasoning=reasoning, date=date, tools=declarations))
        self.conversation.add_developer(self.codec.render_developer(instructions, declarations))

    def restore(self, record: SessionRecord) -> None:
        """Rebuild the conversation and tool state from this session's own log; report interrupted calls."""
        self._apply(rebuild(record.records, self.codec))
        self._logged_segments = len(self.conversation.segments)
        self._logged_finished = set(self.conversation.finished_turns)
        self._close_interrupted(record)

    def set_approver(self, approver: Approver) -> None:
        """Who answers approvals from now on (the TUI's modal once it is up); the approval mode itself is the
        approver's business, so switching modes needs no call here."""
        self._approver = approver

    def reset(self) -> None:
        """Start a new conversation (the TUI's /clear); the log says so, so a restore starts afresh there too."""
        self._apply(RestoredState(Conversation(self.codec)))
        self._log("cleared")

    def resume(self, record: SessionRecord) -> None:
        """Continue another session here (the TUI's /resume): its state replaces ours, copied into our log.

        Copied whole, not referenced: this log must restore the same conversation
        even if the other one is appended to or deleted later.
        """
        self.reset()
        state = rebuild(record.records, self.codec)
        self._apply(state)
        self._log("resumed", session=record.id, plan=state.plan, commits=state.commits)
        if state.last_tests:
            self._log("last_tests", text=state.last_tests)
        self._close_interrupted(record)

    def _apply(self, state: RestoredState) -> None:
        self.conversation = state.conversation
        self.ctx.plan = state.plan
        self.ctx.agent_commits.extend(c for c in state.commits if c not in self.ctx.agent_commits)
        self._last_tests = state.last_tests
        self._logged_segments = 0
        self._logged_finished = set()

    def _close_interrupted(self, record: SessionRecord) -> None:
        """Calls the log shows started but never finished get a result saying so (never re-run); all logged."""
        self._call_counter = max(self._call_counter, record.last_call_number())
        for call in record.interrupted_calls():
            text = prompts.load("interrupted_result")
            self.conversation.add_tool_result(call["name"], text)
            self.conversation.add_notice(prompts.render("interrupted_call", name=call["name"]))
            self._emit(Notice(f"tool call {call['name']} ({call['id']}) was interrupted and not re-run"))
            self._log("tool_result", id=call["id"], name=call["name"], ok=False, output=text)
        self._persist_segments()

    # ------------------------------------------------------------------ running

    def run(self, task: str | None, cancel: threading.Event | None = None) -> RunResult:
        """Add the task as a user message (None: continue as is) and loop until done or stopped."""
        cancel = cancel or threading.Event()
        self.ctx.cancel = cancel
        if task is not None:
            self.conversation.add_user(task)
            self._persist_segments()
        tally = _Tally()
        try:
            self._loop(tally, cancel)
        except Stop as stop:
            result = RunResult(stop.status, tally.steps, stop.final, stop.reason, tally.prompt_tokens,
                               tally.cached_tokens, tally.completion_tokens)
        result.seconds = time.monotonic() - tally.started
        self._emit(RunFinished(result.status, tally.steps, tally.prompt_tokens, tally.cached_tokens,
                               tally.completion_tokens, round(result.seconds, 3), result.reason))
        return result

    def _loop(self, tally: _Tally, cancel: threading.Event) -> NoReturn:
        """Step until a Stop, which each rule raises where it decides (a final answer is one too)."""
        while True:
            self._check_limits(tally, cancel)
            outcome = self._step(tally, cancel)
            if outcome.kind == "final":
                self._answer(outcome, tally)
            elif outcome.kind == "tool_call":
                tally.format_errors = 0
                self._act(outcome.call, tally)
            else:
                self._unusable(outcome, tally)

    def _check_limits(self, tally: _Tally, cancel: threading.Event) -> None:
        b = self.budgets
        if cancel.is_set():
            raise Stop("cancelled", "cancelled by the user")
        if tally.steps >= b.max_steps:
            raise Stop("max_steps", f"reached the limit of {b.max_steps} steps")
        if time.monotonic() - tally.started > b.max_seconds:
            raise Stop("failed", f"reached the time limit of {b.max_seconds:g}s")
        if tally.completion_tokens >= b.max_completion_tokens:
            raise Stop("failed", f"reached the limit of {b.max_completion_tokens} generated tokens")

    def _answer(self, outcome: StepOutcome, tally: _Tally) -> None:
        """A complete final answer ends the run; one cut off by the token limit is never reported as the answer."""
        if outcome.complete:
            raise Stop("completed", "", outcome.final)
        tally.format_errors += 1
        self._emit(ErrorRaised("the final answer was cut off by the token limit"))
        if tally.format_errors > self.budgets.max_format_errors:
            raise Stop("failed", "truncated answer", outcome.final)
        self._tell_model(prompts.render("final_cut_off"))

    def _unusable(self, outcome: StepOutcome, tally: _Tally) -> None:
        """Output the loop cannot act on goes back to the model as a notice, until too many come in a row."""
        tally.format_errors += 1
        self._emit(ErrorRaised(f"model output unusable: {outcome.error}"))
        if tally.format_errors > self.budgets.max_format_errors:
            raise Stop("error", f"{tally.format_errors} unusable replies in a row")
        self._tell_model(prompts.render("format_error", error=outcome.error))

    def _generate(self, prompt: list[int], cancel: threading.Event, max_tokens: int, on_text=None):
        """Sample one completion, parsing as it streams: (generated tokens, parser, stats)."""
        generated: list[int] = []
        parser = self.codec.parser(on_text=on_text)

        def on_token(token: int) -> bool:
            generated.append(token)
            return parser.feed(token)

        stats = self.backend.generate(prompt, stop=STOP_TOKENS, on_token=on_token, cancel=cancel,
                                      max_tokens=max_tokens)
        return generated, parser, stats

    def set_reasoning(self, effort: str) -> None:
        """Change the reasoning effort: the system message is re-rendered (the KV cache restarts there)."""
        declarations = self.registry.declarations()
        tokens = self.codec.render_system(reasoning=effort, tools=declarations)
        self.conversation.segments[0] = Segment("system", tokens, self.conversation.segments[0].turn)
        self._log("reasoning", effort=effort, tokens=tokens)  # the tokens: a restore on another day keeps the date

    def _step(self, tally: _Tally, cancel: threading.Event) -> StepOutcome:
        """One completion (compacting first when the window runs low), added to the conversation and interpreted."""
        prompt = self.conversation.prompt()
        room = self.budgets.context_window - len(prompt)
        if room < self.budgets.compact_below:
            before = len(prompt)
            if not self._compact(cancel):
                if cancel.is_set():
                    raise Stop("cancelled", "cancelled by the user")
                raise Stop("error", "context full: compaction failed")
            prompt = self.conversation.prompt()
            room = self.budgets.context_window - len(prompt)
            self._emit(Notice(f"context compacted: {before} → {len(prompt)} tokens (older steps summarised)"))
            if room < self.budgets.compact_below:
                message = f"the conversation ({len(prompt)} tokens) does not fit the context window even after compaction"
                self._emit(ErrorRaised(message))
                raise Stop("error", "context full after compaction")
        def on_text(header, text: str) -> None:
            if not header.recipient:  # a tool call's arguments show on its card, not as prose
                self._emit(TextStreamed(header.channel, text))

        try:
            generated, parser, stats = self._generate(prompt, cancel, min(self.budgets.max_tokens_per_step, room),
                                                      on_text)
        except Exception as exc:  # the backend's message is the user's explanation
            self._emit(ErrorRaised(f"{type(exc).__name__}: {exc}"))
            raise Stop("error", str(exc)) from None
        tally.steps += 1
        tally.prompt_tokens += stats.prompt_tokens
        tally.cached_tokens += stats.cached_tokens
        tally.completion_tokens += stats.generated_tokens
        self._log("step", step=tally.steps, tokens=generated, stop_reason=stats.stop_reason,
                  prompt_tokens=stats.prompt_tokens, cached_tokens=stats.cached_tokens)
        self._emit(StepFinished(tally.steps, stats.prompt_tokens, stats.cached_tokens, stats.evaluated_tokens,
                                stats.generated_tokens, round(stats.generation_tokens_per_second, 1)))
        messages = parser.finish()
        if stats.stop_reason == "cancelled":
            self.conversation.add_completion(generated, messages)  # what was shown stays in history, closed
            self._persist_segments()
            raise Stop("cancelled", "cancelled by the user")
        clean = parser.clean_length if stats.stop_reason == "requested" else None
        self.conversation.add_completion(generated, messages, clean_length=clean)
        self._persist_segments()
        outcome = interpret(messages, stream_repairs=parser.stream_repairs)
        for text in outcome.reasoning:
            self._emit(ReasoningEmitted(text))
        for text in outcome.preambles:
            self._emit(MessageEmitted("commentary", text))
        for repair in outcome.repairs:
            self._emit(Notice(f"repaired model output: {repair}"))
        if outcome.kind == "final":
            self._emit(MessageEmitted("final", outcome.final or ""))
        return outcome

    def compact(self, cancel: threading.Event | None = None) -> bool:
        """Compact now (the TUI's /compact), as the loop does by itself near the window's end."""
        before = len(self.conversation.prompt())
        done = self._compact(cancel or threading.Event())
        if done:
            self._emit(Notice(f"context compacted: {before} → {len(self.conversation.prompt())} tokens"))
        return done

    def _compact(self, cancel: threading.Event) -> bool:
        """Summarise the middle of the conversation with a model call; keep its structure and the task.

        Kept as they were, roles included: system, developer, the task (the first
        user message, verbatim) and the current request. The summariser sees the
        rest as labelled messages with every body fenced as data (agent/compaction.py),
        never as decoded text, so a file's forged turns stay inside their fence.
        The summary comes back as the model's own words (an assistant message),
        and what the agent kept (plan, latest tests, files) comes as a notice.
        """
        segments = self.conversation.segments
        head = [s for s in segments if s.kind in ("system", "developer")]
        users = [s for s in segments if s.kind == "user"]
        task = users[0] if users else None
        current = users[-1] if len(users) > 1 else None
        keep = [s for s in segments if s in head or s is task or s is current]
        fence = Fence.new()
        entries = compaction_transcript([s for s in segments if all(s is not k for k in keep)], self.codec, fence)
        limit = max(self.budgets.context_window // 2, 1024)
        sizes = [self.codec.count(e) for e in entries]
        omitted, total = 0, sum(sizes)
        while omitted < len(entries) and total > limit:  # the oldest messages go first
            total -= sizes[omitted]
            omitted += 1
        entries = entries[omitted:]
        if omitted:
            entries.insert(0, prompts.render("compaction_omitted", count=omitted))
        task_text = fence.wrap(self._user_text(task)) if task else "(none)"
        request = ([t for s in head for t in s.tokens]
                   + self.codec.render_user(prompts.render("compact", fence_open=fence.open, fence_close=fence.close,
                                                           task=task_text, transcript="\n\n".join(entries)))
                   + list(self.codec.assistant_start))
        try:
            _, parser, stats = self._generate(request, cancel, min(2048, self.budgets.max_tokens_per_step))
        except Exception as exc:
            self._emit(ErrorRaised(f"compaction failed: {exc}"))
            return False
        if stats.stop_reason == "cancelled":  # half a summary must not replace the history
            self._emit(Notice("compaction cancelled: the conversation is unchanged"))
            return False
        outcome = interpret(parser.finish())
        summary = outcome.final or "\n".join(outcome.preambles) or "(no summary)"
        kept_fence = Fence.new()
        kept = []
        if self.ctx.plan:
            plan = "\n".join(f"- [{p['status']}] {p['step']}" for p in self.ctx.plan)
            kept.append(prompts.render("compacted_plan", plan=kept_fence.wrap(plan)))
        if self._last_tests:
            kept.append(prompts.render("compacted_tests", tests=kept_fence.wrap(self._last_tests)))
        touched = sorted(self.ctx.changes)
        if touched:
            kept.append(prompts.render("compacted_files", files=kept_fence.wrap("\n".join(touched))))
        self.conversation.segments = keep
        self.conversation.add_notice(prompts.render("compacted", kept="\n\n".join(kept) or "(nothing else)",
                                                    fence_open=kept_fence.open, fence_close=kept_fence.close))
        self.conversation.add_own_words(summary)
        self._log("compacted", summary=summary)
        self._logged_segments = 0
        if self.session is not None:
            self.session.write("reset_segments")
        self._persist_segments()
        return True

    def _user_text(self, segment: Segment) -> str:
        from gptoss_agent.agent.compaction import split_messages

        views = split_messages(segment.tokens, self.codec.decode)
        return "\n".join(self.codec.decode(v.content) for v in views)

    def _act(self, request: ToolCallRequest, tally: _Tally) -> None:
        """Check, approve and run one tool call; its result joins the conversation."""
        self._call_counter += 1
        call_id = f"call_{self._call_counter}"
        tool, arguments, error = self.registry.prepare(request)
        name = tool.spec.recipient if tool else request.recipient
        self._emit(ToolCalled(call_id, name, arguments if arguments is not None else request.raw_arguments))
        if error is not None:
            return self._finish_call(call_id, request.recipient, name, ToolResult.error(error))
        key = f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"
        tally.repeats = tally.repeats + 1 if key == tally.last_call else 1
        tally.last_call = key
        if tally.repeats > self.budgets.repeat_warning:
            raise Stop("failed", f"the model repeated the same {name} call {tally.repeats} times")
        if tool.spec.mutating:
            try:
                self._approver(request, tool.spec)
            except Refused as refusal:
                return self._finish_call(call_id, request.recipient, name,
                                         ToolResult.error(prompts.render("declined_call", reason=refusal)))
        self._log("tool_started", durable=True, id=call_id, name=request.recipient, arguments=arguments)
        self.ctx.emitter = emitter = ToolEmitter()  # this call's own: what it reports follows its result
        try:
            result = tool(self.ctx, **arguments)
            reported = emitter.take()
        except Exception as exc:  # a tool bug must not end the run (and what it reported before is void)
            result = ToolResult.error(prompts.render("tool_crashed", name=name, error=f"{type(exc).__name__}: {exc}"))
            reported = []
        self._finish_call(call_id, request.recipient, name, result, reported)
        self._refresh_map(name, result)
        if tally.repeats == self.budgets.repeat_warning:
            self.conversation.add_notice(prompts.render("repeated_call", name=name, count=tally.repeats))
            self._persist_segments()

    def _finish_call(self, call_id: str, recipient: str, name: str, result: ToolResult,
                     reported: Sequence[AgentEvent] = ()) -> None:
        """The result for people and the log, then what the tool reported (in that order), then for the model.

        A test count the tool reported is also remembered for compaction and
        told to the model as the agent's own notice (test output can imitate it).
        """
        output, truncated = self._cap(result.output)
        self._emit(ToolFinished(call_id, name, result.ok, output, truncated or result.truncated, result.display))
        self._log("tool_result", id=call_id, name=recipient, ok=result.ok, output=output)
        tests_notice = None
        for event in reported:
            if isinstance(event, TestsReported):
                self._last_tests = output[:2000]
                self._log("last_tests", text=self._last_tests)  # a compaction after a resume keeps it too
                tests_notice = _tests_notice(result.data)
            self._emit(event)
        self.conversation.add_tool_result(recipient, output)
        if tests_notice:
            self.conversation.add_notice(tests_notice)
        self._persist_segments()

    def _refresh_map(self, name: str, result: ToolResult) -> None:
        """After an edit or a failing test run, the repo map re-ranked around those files."""
        if self.map_refresher is None:
            return
        try:
            text = self.map_refresher(name, result.ok, result.data or {})
        except Exception as exc:  # the map is a help, never a reason to stop the run
            self._log("map_refresh_failed", error=f"{type(exc).__name__}: {exc}"[:200])
            return
        if text:
            self.conversation.add_notice(text)
            self._persist_segments()

    def _cap(self, text: str) -> tuple[str, bool]:
        """Fit a tool result into its token budget: head and tail kept, the cut said out loud."""
        budget = self.budgets.tool_result_tokens
        tokens = self.codec.count(text)
        if tokens <= budget:
            return text, False
        lines = text.split("\n")
        head: list[str] = []
        tail: list[str] = []
        used = 0
        for line in lines:
            cost = self.codec.count(line) + 1
            if used + cost > budget // 2:
                break
            head.append(line)
            used += cost
        for line in reversed(lines[len(head):]):
            cost = self.codec.count(line) + 1
            if used + cost > budget:
                break
            tail.insert(0, line)
            used += cost
        omitted = len(lines) - len(head) - len(tail)
        marker = prompts.render("result_cut", lines=omitted, tokens=tokens - used)
        return "\n".join(head + [marker] + tail), True

    def _tell_model(self, text: str) -> None:
        """A notice from the agent, in a role no file content can take (see Conversation.add_notice)."""
        self.conversation.add_notice(text)
        self._persist_segments()

    # ------------------------------------------------------------------ plumbing

    def _emit(self, event: AgentEvent) -> None:
        if self.session is not None and not isinstance(event, TextStreamed):
            self.session.write("event", event=event.to_json())
        self._sink(event)

    def _log(self, kind: str, *, durable: bool = False, **fields: Any) -> None:
        if self.session is not None:
            self.session.write(kind, durable=durable, **fields)

    def _persist_segments(self) -> None:
        if self.session is None:
            return
        for segment in self.conversation.segments[self._logged_segments:]:
            self.session.write("segment", segment=segment.kind, tokens=segment.tokens, turn=segment.turn,
                               spans=[[s.start, s.end, s.channel, s.is_tool_call] for s in segment.spans])
        self._logged_segments = len(self.conversation.segments)
        # Whatever ended a turn (a final answer, complete, cut off or cancelled mid-way), the log follows the
        # conversation's own record of it: that decides which reasoning later prompts leave out.
        for turn in sorted(self.conversation.finished_turns - self._logged_finished):
            self.session.write("turn_finished", turn=turn)
        self._logged_finished = set(self.conversation.finished_turns)


def _tests_notice(data: dict[str, Any]) -> str:
    """The agent's own count of a test run, in a notice: test output can imitate it, a notice it cannot."""
    if data.get("timed_out"):
        outcome = "timed out" + (" (a test was still running)" if data.get("running") else "")
    elif data.get("results") == "unknown":
        outcome = f"results unknown (exit code {data.get('exit_code')})"
    else:
        outcome = (f"{data['passed']} passed, {data['failed']} failed, {data['errors']} errors"
                   f" (exit code {data.get('exit_code')})")
    return prompts.render("tests_counted", outcome=outcome)
