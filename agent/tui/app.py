"""The Textual app: pair programming with the agent in the terminal.

The agent never imports Textual; this app consumes its events. One worker
thread owns the loop at a time. Agent events (and streamed tokens) go through a
queue that a 30 Hz timer drains in order, coalescing token floods into one
repaint per tick. The model loads in a background worker while the input is
already usable; messages sent before it is ready are queued.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import ProgressBar, Static

from agent.events import (AgentEvent, Committed, ErrorRaised, MessageEmitted, Notice, PlanUpdated, ReasoningEmitted,
                          RunFinished, StepFinished, TestsReported, TextStreamed, ToolCalled, ToolFinished)
from agent.tui.screens import ApprovalAnswer, ApprovalScreen, HelpScreen, NoModelScreen
from agent.tui.widgets import (AnswerView, PlanPanel, PromptInput, ReasoningBlock, StatusBar, StreamingText, ToolCard,
                               UserEntry)

Connector = Callable[[str | None, Callable[[float], None], Callable[[AgentEvent], None]], Any]
APPROVAL_MODES = ("read-only", "ask", "auto-edit", "full-auto")
_MENTION = re.compile(r"@([\w./-]+)")
COMMANDS = ("/help", "/clear", "/compact", "/undo", "/diff", "/commit", "/test", "/plan", "/reasoning", "/approval",
            "/model", "/sessions", "/resume", "/quit")


class ModelMissing(Exception):
    """Raised by a connector when no model file exists: carries where it looked and the fetch command."""

    def __init__(self, places: str, fetch: str) -> None:
        super().__init__(places)
        self.places, self.fetch = places, fetch


class RuntimeReady(Message):
    def __init__(self, runtime: Any) -> None:
        super().__init__()
        self.runtime = runtime


class RuntimeFailed(Message):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


@dataclass
class _Stats:
    prompt: int = 0
    cached: int = 0
    speed: float = 0.0


class GptossApp(App[None]):
    """`gptoss-agent` with no subcommand."""

    CSS_PATH = "app.tcss"
    TITLE = "gptoss-agent"
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False), Binding("ctrl+c", "interrupt", "Cancel / quit", priority=True),
                Binding("f1", "help", "Help")]

    def __init__(self, connect: Connector, *, approval: str = "ask", timings: bool = True,
                 cursor_blink: bool = True) -> None:
        super().__init__()
        self._connect = connect
        self._cursor_blink = cursor_blink
        self.approval = approval
        self.timings = timings
        self.runtime: Any = None
        self._queue: deque = deque()
        self._pending: list[str] = []
        self._cancel = threading.Event()
        self._busy = False
        self._started = False
        self._always: set[str] = set()
        self._stream: StreamingText | None = None
        self._streams: list[StreamingText] = []
        self._cards: dict[str, ToolCard] = {}
        self._stats = _Stats()
        self._last_interrupt = 0.0
        self._files: list[str] | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield VerticalScroll(id="transcript")
            yield PlanPanel(id="plan")
        yield ProgressBar(total=1.0, show_eta=False, id="loading")
        yield Static("", id="hints")
        prompt = PromptInput(id="prompt", soft_wrap=True, show_line_numbers=False)
        prompt.cursor_blink = self._cursor_blink
        yield prompt
        yield StatusBar(id="status")

    def on_mount(self) -> None:
        if _terminal_is_light():
            self.theme = "textual-light"
        self.query_one(PlanPanel).show([])
        self.query_one("#prompt", PromptInput).focus()
        self.set_interval(1 / 30, self._drain)
        self._refresh_status()
        self._load(None)

    def on_unmount(self) -> None:
        """Leaving the app stops the running step (and any approval it waits for); the session is kept."""
        self._cancel.set()

    # ------------------------------------------------------------------ model loading

    @work(thread=True, exclusive=True, group="load")
    def _load(self, model_path: str | None) -> None:
        try:
            runtime = self._connect(model_path, lambda f: self._queue.append(("progress", f)), self._queue_event)
        except Exception as exc:  # shown on screen, never a traceback
            self.post_message(RuntimeFailed(exc))
            return
        self.post_message(RuntimeReady(runtime))

    def on_runtime_ready(self, message: RuntimeReady) -> None:
        self.runtime = message.runtime
        self.runtime.agent.approver = self._approve
        self.query_one("#loading", ProgressBar).display = False
        self._note(f"Ready: {self.runtime.model_name} ({self.runtime.backend_name}). F1 for help.", style="dim")
        self._refresh_status()
        if self._pending:
            self._run_turn("\n\n".join(self._pending))
            self._pending.clear()

    def on_runtime_failed(self, message: RuntimeFailed) -> None:
        error = message.error
        if isinstance(error, ModelMissing):
            self.push_screen(NoModelScreen(error.places, error.fetch), self._load)
            return
        self.query_one("#loading", ProgressBar).display = False
        self._note(f"Could not start: {error}", style="bold red")

    # ------------------------------------------------------------------ input

    def on_text_area_changed(self, event) -> None:
        """Completion hints for /commands and @file mentions; Tab takes the first."""
        prompt = self.query_one("#prompt", PromptInput)
        prompt.suggestions = self._suggestions(prompt.text)
        hints = self.query_one("#hints", Static)
        hints.update(Text("  ".join(prompt.suggestions[:8]) + ("  (Tab completes)" if prompt.suggestions else ""),
                          style="dim"))
        hints.display = bool(prompt.suggestions)

    def _suggestions(self, text: str) -> list[str]:
        if text.startswith("/") and " " not in text:
            return [c for c in COMMANDS if c.startswith(text)]
        word = text.rsplit(None, 1)[-1] if text.strip() else ""
        if word.startswith("@") and self.runtime is not None:
            from tools.files import repo_files

            if self._files is None:
                self._files = repo_files(self.runtime.ctx.workspace)
            needle = word[1:]
            hits = [f for f in self._files if needle in f]
            hits.sort(key=lambda f: (not f.startswith(needle), not f.rsplit("/", 1)[-1].startswith(needle), len(f)))
            return ["@" + f for f in hits[:20]]
        return []

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if text.startswith("/"):
            self._command(text)
            return
        self._mount(UserEntry(text))
        if self.runtime is None:
            self._pending.append(self._attach_mentions(text))
            self._note("The model is still loading; your message is queued.", style="dim")
            return
        if self._busy:
            self._note("Still working on the last message; press Esc to cancel it first.", style="dim")
            return
        self._run_turn(self._attach_mentions(text))

    def _attach_mentions(self, text: str) -> str:
        """`@path` mentions of repository files attach the file's content to the message."""
        root = self.runtime.ctx.workspace if self.runtime else Path.cwd()
        attachments = []
        for name in dict.fromkeys(_MENTION.findall(text)):
            path = (root / name).resolve()
            if path.is_file() and path.is_relative_to(root.resolve()) and path.stat().st_size < 200_000:
                attachments.append(f"Attached {name}:\n```\n{path.read_text(errors='replace')}\n```")
        return text if not attachments else text + "\n\n" + "\n\n".join(attachments)

    @work(thread=True, exclusive=True, group="agent")
    def _run_turn(self, text: str) -> None:
        from agent.headless import start_agent

        self._busy = True
        self._cancel = threading.Event()
        try:
            agent = self.runtime.agent
            if not self._started:
                start_agent(self.runtime, text)
                self._started = True
            agent.run(text, self._cancel)
        except Exception as exc:  # a bug in a turn must not take the app down
            self._queue_event(ErrorRaised(f"{type(exc).__name__}: {exc}"))
        finally:
            self._busy = False

    # ------------------------------------------------------------------ approvals (called in the worker)

    def _approve(self, call, spec) -> None:
        from agent.loop import Refused

        mode = self.approval
        if mode == "full-auto" or spec.recipient in self._always:
            return
        if mode == "read-only":
            raise Refused(f"{spec.recipient} changes things, and this session is read-only")
        if mode == "auto-edit" and spec.recipient == "repo_browser.apply_patch":
            return
        preview, is_diff = self._preview(call, spec)
        answered = threading.Event()
        box: dict[str, ApprovalAnswer] = {}

        def on_answer(answer: ApprovalAnswer | None) -> None:
            box["answer"] = answer or ApprovalAnswer(False)
            answered.set()

        self.call_from_thread(self.push_screen, ApprovalScreen(spec.recipient, preview, is_diff=is_diff), on_answer)
        while not answered.wait(0.05):
            if self._cancel.is_set():
                raise Refused("the user cancelled")
        answer = box["answer"]
        if answer.always:
            self._always.add(spec.recipient)
        if not answer.allow:
            raise Refused(answer.reason or "no")

    def _preview(self, call, spec) -> tuple[str, bool]:
        from agent.completion import decode_arguments

        arguments, _ = decode_arguments(call)
        if spec.recipient == "repo_browser.apply_patch":
            from tools.patch import PatchError, apply_patch, parse_patch

            patch = arguments.get("patch", arguments.get("input", "")) if isinstance(arguments, dict) else arguments
            root = self.runtime.ctx.workspace

            def read(name: str) -> str | None:
                path = root / name
                return path.read_text(errors="surrogateescape") if path.is_file() else None

            try:
                return apply_patch(parse_patch(patch or ""), read).diff or patch, True
            except (PatchError, OSError) as exc:
                return f"{patch}\n\n(this patch will not apply: {exc})", False
        if isinstance(arguments, dict) and "cmd" in arguments:
            cmd = arguments["cmd"]
            return ("$ " + (" ".join(cmd) if isinstance(cmd, list) else str(cmd))), False
        return str(arguments), False

    # ------------------------------------------------------------------ events → widgets

    def _queue_event(self, event: AgentEvent) -> None:
        self._queue.append(("event", (event, time.monotonic())))

    def _drain(self) -> None:
        """Apply queued events in order; consecutive streamed tokens become one update."""
        if not self._queue:
            return
        batch: list[str] = []
        batch_channel: Any = object()
        while self._queue:
            kind, item = self._queue.popleft()
            if kind == "progress":
                self.query_one("#loading", ProgressBar).update(progress=item)
                continue
            item, stamp = item if kind == "event" else (item, 0.0)
            if isinstance(item, TextStreamed):
                if batch and item.channel != batch_channel:
                    self._stream_text(batch_channel, "".join(batch))
                    batch = []
                batch_channel = item.channel
                batch.append(item.text)
                continue
            if batch:
                self._stream_text(batch_channel, "".join(batch))
                batch = []
            self._apply(item, stamp)
        if batch:
            self._stream_text(batch_channel, "".join(batch))
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)

    def _stream_text(self, channel: str | None, text: str) -> None:
        if self._stream is None or self._stream.channel != channel:
            self._stream = StreamingText(channel)
            self._streams.append(self._stream)
            self._mount(self._stream)
        self._stream.extend(text)

    def _end_stream(self) -> None:
        """The complete messages replace what was streamed of them."""
        for widget in self._streams:
            widget.remove()
        self._streams.clear()
        self._stream = None

    def _apply(self, event: AgentEvent, stamp: float = 0.0) -> None:
        if isinstance(event, ReasoningEmitted):
            self._end_stream()
            self._mount(ReasoningBlock(event.text))
        elif isinstance(event, MessageEmitted):
            self._end_stream()
            self._mount(AnswerView(event.text) if event.channel == "final" else Static(Text(event.text), classes="preamble"))
        elif isinstance(event, ToolCalled):
            self._end_stream()
            card = ToolCard(event, started=stamp)
            self._cards[event.id] = card
            self._mount(card)
        elif isinstance(event, ToolFinished):
            card = self._cards.get(event.id)
            if card is not None:
                card.finish(event, seconds=(stamp - card.started) if self.timings else None)
        elif isinstance(event, TestsReported):
            failing = f": {', '.join(event.failing[:8])}" if event.failing else ""
            style = "green" if not (event.failed or event.errors) else "red"
            self._mount(Static(Text(f"tests: {event.passed} passed, {event.failed} failed, {event.errors} errors{failing}",
                                    style=style), classes="tests"))
        elif isinstance(event, PlanUpdated):
            self.query_one(PlanPanel).show(event.steps)
        elif isinstance(event, Committed):
            self._note(f"● committed {event.sha[:12]} {event.message.splitlines()[0]}", style="yellow")
        elif isinstance(event, StepFinished):
            self._stats = _Stats(event.prompt_tokens, event.cached_tokens, event.tokens_per_second)
            self._refresh_status()
        elif isinstance(event, ErrorRaised):
            self._end_stream()
            self._note(event.message, style="bold red")
        elif isinstance(event, Notice):
            self._note(event.text, style="dim")
        elif isinstance(event, RunFinished):
            self._end_stream()
            if event.status != "completed":
                self._note(f"■ {event.status}" + (f": {event.reason}" if event.reason else ""), style="bold")
            self._refresh_status()

    def _mount(self, widget) -> None:
        self.query_one("#transcript", VerticalScroll).mount(widget)

    def _note(self, text: str, style: str = "") -> None:
        self._mount(Static(Text(text, style=style), classes="note"))

    def _refresh_status(self) -> None:
        fields: dict[str, str] = {}
        warning = None
        runtime = self.runtime
        if runtime is None:
            fields["model"] = "loading…"
        else:
            info = getattr(runtime.backend, "info", None)
            fields["model"] = f"{runtime.model_name}" + (f" {info.quantization}" if info and info.quantization else "")
            fields["backend"] = runtime.backend_name
            fields["reasoning"] = runtime.settings.reasoning
            window = getattr(runtime.backend, "n_ctx", None) or runtime.settings.n_ctx
            used = self._stats.prompt
            filled = min(int(6 * used / window), 6) if window else 0
            fields["ctx"] = f"{used // 1000}k/{window // 1000}k {'█' * filled}{'░' * (6 - filled)}"
            if self._stats.prompt:
                fields["cache"] = f"{100 * self._stats.cached // max(self._stats.prompt, 1)}%"
            if self.timings and self._stats.speed:
                fields["speed"] = f"{self._stats.speed:.0f} tok/s"
            fields["git"] = _git_state(runtime.ctx.workspace)
            sandbox = runtime.ctx.sandbox.mechanism if runtime.ctx.sandbox else "off"
            fields["sandbox"] = sandbox
            if sandbox in ("none", "off"):
                warning = "SANDBOX OFF"
        fields["approval"] = self.approval
        self.query_one(StatusBar).show(fields, warning=warning)

    # ------------------------------------------------------------------ actions and commands

    def action_cancel(self) -> None:
        if self._busy:
            self._cancel.set()
            self._note("cancelling…", style="dim")

    def action_interrupt(self) -> None:
        now = time.monotonic()
        if now - self._last_interrupt < 2.0:
            self.exit()
            return
        self._last_interrupt = now
        if self._busy:
            self.action_cancel()
        else:
            self._note("Press Ctrl+C again to quit.", style="dim")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen):
        """Every action in the command palette (Ctrl+P), beside Textual's own."""
        yield from super().get_system_commands(screen)
        entries = [("Help", "Keys and commands", "/help"), ("Clear", "Start a new conversation", "/clear"),
                   ("Undo", "Revert the agent's last edits or commit", "/undo"), ("Diff", "Show uncommitted changes", "/diff"),
                   ("Test", "Run the test suite", "/test"), ("Commit", "Commit the agent's changes", "/commit"),
                   ("Plan", "Show the current plan", "/plan"), ("Sessions", "List recent sessions", "/sessions"),
                   ("Model", "Show the loaded model", "/model"), ("Quit", "Leave gptoss-agent", "/quit")]
        entries += [(f"Reasoning: {e}", f"Set reasoning effort to {e}", f"/reasoning {e}") for e in ("low", "medium", "high")]
        entries += [(f"Approval: {m}", f"Set the approval mode to {m}", f"/approval {m}") for m in APPROVAL_MODES]
        for title, help_text, line in entries:
            yield SystemCommand(title, help_text, lambda line=line: self._command(line))

    def _command(self, line: str) -> None:
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        handler = getattr(self, f"_cmd_{name.replace('-', '_')}", None)
        if handler is None:
            self._note(f"Unknown command /{name}. /help lists them.", style="red")
            return
        if self.runtime is None and name not in ("help", "quit", "approval"):
            self._note("The model is still loading.", style="dim")
            return
        handler(rest)

    def _cmd_help(self, _: str) -> None:
        self.action_help()

    def _cmd_quit(self, _: str) -> None:
        self.exit()

    def _cmd_clear(self, _: str) -> None:
        from agent.conversation import Conversation

        self.runtime.agent.conversation = Conversation(self.runtime.agent.codec)
        self._started = False
        self.query_one("#transcript", VerticalScroll).remove_children()
        self.query_one(PlanPanel).show([])
        self._note("Conversation cleared.", style="dim")

    def _cmd_undo(self, _: str) -> None:
        from tools import git as git_tools

        try:
            self._note(git_tools.undo(self.runtime.ctx))
        except git_tools.GitError as exc:
            self._note(str(exc), style="red")

    def _cmd_diff(self, _: str) -> None:
        from rich.syntax import Syntax

        from tools.git import diff_text

        diff = diff_text(self.runtime.ctx.workspace)
        self._mount(Static(Syntax(diff, "diff", theme="ansi_dark") if diff else Text("No changes.", style="dim"),
                           classes="diff"))

    def _cmd_commit(self, message: str) -> None:
        from tools import git as git_tools

        try:
            sha, paths, _ = git_tools.commit_changes(self.runtime.ctx, message or "Changes by gptoss-agent")
            self._note(f"● committed {sha[:12]}: {', '.join(paths)}", style="yellow")
        except git_tools.GitError as exc:
            self._note(str(exc), style="red")

    @work(thread=True, group="tests")
    def _cmd_test(self, _: str) -> None:
        from tools.tests import run_test_suite

        report = run_test_suite(self.runtime.ctx)
        self._queue_event(TestsReported(report.passed, report.failed, report.errors, report.failing_ids))

    def _cmd_plan(self, _: str) -> None:
        steps = self.runtime.ctx.plan
        self._note("\n".join(f"[{s['status']}] {s['step']}" for s in steps) or "No plan yet.")

    def _cmd_reasoning(self, effort: str) -> None:
        if effort not in ("low", "medium", "high"):
            self._note("Usage: /reasoning low|medium|high", style="red")
            return
        from dataclasses import replace

        self.runtime.settings = replace(self.runtime.settings, reasoning=effort)
        if self._started:
            self.runtime.agent.set_reasoning(effort)
        self._note(f"Reasoning effort: {effort}.", style="dim")
        self._refresh_status()

    def _cmd_approval(self, mode: str) -> None:
        if mode not in APPROVAL_MODES:
            self._note("Usage: /approval " + "|".join(APPROVAL_MODES), style="red")
            return
        self.approval = mode
        self._note(f"Approval mode: {mode}.", style="dim")
        self._refresh_status()

    @work(thread=True, exclusive=True, group="agent")
    def _cmd_compact(self, _: str) -> None:
        if not self._started:
            self._queue_event(Notice("Nothing to compact yet."))
            return
        self._busy = True
        try:
            self.runtime.agent.compact(self._cancel)
        finally:
            self._busy = False

    def _cmd_model(self, _: str) -> None:
        info = getattr(self.runtime.backend, "info", None)
        self._note(str(info) if info else f"{self.runtime.model_name} ({self.runtime.backend_name})")

    def _cmd_sessions(self, _: str) -> None:
        from agent.session import list_sessions

        rows = [f"{s.id}  {s.status:<11} {s.steps:>3} steps  {s.header.get('task', '')[:50]}"
                for s in list(list_sessions())[:15]]
        self._note("\n".join(rows) or "No sessions yet.")

    def _cmd_resume(self, ident: str) -> None:
        """Continue an earlier session here: its conversation replaces this one."""
        from agent.conversation import Conversation
        from agent.session import SessionError, find_session

        try:
            record = find_session(ident or None)
        except SessionError as exc:
            self._note(str(exc), style="red")
            return
        agent = self.runtime.agent
        agent.conversation = Conversation(agent.codec)
        agent.restore(record)
        self._started = True
        self.query_one(PlanPanel).show(self.runtime.ctx.plan)
        self._note(f"Resumed session {record.id} ({record.steps} steps): {record.header.get('task', '')[:80]}")


def _terminal_is_light(environ=None) -> bool:
    """The terminal's own light/dark choice: GPTOSS_AGENT_THEME, else COLORFGBG's background colour.

    (NO_COLOR is honoured by Textual itself.)"""
    import os

    environ = os.environ if environ is None else environ
    choice = environ.get("GPTOSS_AGENT_THEME", "").lower()
    if choice in ("light", "dark"):
        return choice == "light"
    background = environ.get("COLORFGBG", "").rsplit(";", 1)[-1]
    return background in ("7", "15")


def _git_state(root: Path) -> str:
    try:
        from tools.git import current_branch, dirty_paths

        return f"{current_branch(root) or '(detached)'}{'*' if dirty_paths(root) else ''}"
    except Exception:
        return "?"
