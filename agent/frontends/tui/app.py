"""The Textual app: pair programming with the agent in the terminal.

The agent never imports Textual; this app consumes its events. One worker
thread owns the loop at a time. Agent events (and streamed tokens) go through a
queue that a 30 Hz timer drains in order, coalescing token floods into one
repaint per tick. The model loads in a background worker, started once the
first frame is drawn, while the input is already usable.

Input is never lost: keys that arrive before the prompt has the focus are kept
and replayed to it in order, read as Textual reads keys (see `keys_for`); Enter
is handled in key order (see `PromptInput`); messages sent while the model
loads or the agent works wait, visibly, in an outbox and are sent one by one
when it is free (Esc takes the last one back to edit or drop). Slash commands
that need the model, or would race a running turn, wait in the same outbox in
their place; the others run at once. If the model cannot start, the status bar
and the transcript say so and the outbox stays as it is. Modal questions (approvals, links, trust) only take keys pressed
after they appeared. Every string from the model or the repository is shown
through `agent.safe_text`. Git scans run in workers, never on the UI thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import ProgressBar, Static

from gptoss_agent.agent.approvals import APPROVAL_MODES
from gptoss_agent.agent.safe_text import line as safe_text_line
from gptoss_agent.agent.attachments import attach_mentions
from gptoss_agent.agent.events import (AgentEvent, Committed, ErrorRaised, MessageEmitted, Notice, PlanUpdated,
                                       ReasoningEmitted, RunFinished, StepFinished, TestsReported, TextStreamed,
                                       ToolCalled, ToolFinished)
from gptoss_agent.agent.frontends.tui.screens import (COMMANDS, NEEDS_MODEL, WAITS_FOR_TURN, WORKS_WITHOUT_MODEL,
                                                      ApprovalScreen, GuardedModal, HelpScreen, LinkScreen,
                                                      NoModelScreen, TrustScreen, arguments_preview, command_preview,
                                                      palette_entries)
from gptoss_agent.agent.frontends.tui import widgets
from gptoss_agent.agent.frontends.tui.widgets import (PlanPanel, PromptInput, ReasoningBlock, StatusBar, StreamingText,
                                                      ToolCard, Transcript, UserEntry, WorkingIndicator, safe,
                                                      safe_diff)
from gptoss_agent.agent.choices import REASONING_EFFORTS

# (model path or None, load progress, event sink, cancel: set by Esc while the model loads) -> a runtime
Connector = Callable[[str | None, Callable[[float], None], Callable[[AgentEvent], None], threading.Event], Any]
NARROW_WIDTH = 100  # below this many columns the plan panel gives its room to the transcript


QUIT_WINDOW_SECONDS = 2.0  # a second Ctrl+C within this quits
FOCUS_KEYS = frozenset({"tab", "shift+tab"})


def event_key(event: events.Event) -> str:
    return event.key if isinstance(event, events.Key) else ""


def _first_task(record) -> str:
    """What a logged session was about: its first user message (a TUI session's header only says
    "(interactive session)"), else its header's task."""
    for entry in record.records:
        event = entry.get("event") if entry.get("kind") == "event" else None
        if isinstance(event, dict) and event.get("type") == "run_started" and isinstance(event.get("task"), str) \
                and event["task"].strip():
            return event["task"]
    return str(record.header.get("task", ""))


def _forget_if_empty(path: Path) -> None:
    """Remove a session log that holds only its header: a launch that never sent anything is no session."""
    import json

    try:
        kinds = {json.loads(line).get("kind") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    except (OSError, ValueError, AttributeError):
        return
    if kinds <= {"header"}:
        path.unlink(missing_ok=True)


class ModelMissing(Exception):
    """Raised by a connector when no model file exists: carries where it looked and the fetch command."""

    def __init__(self, places: str, fetch: str, refused: str | None = None) -> None:
        super().__init__(places)
        self.places, self.fetch = places, fetch
        self.refused = refused  # "<file>: <why>" when the user named a model file that was refused


class RuntimeReady(Message):
    def __init__(self, runtime: Any) -> None:
        super().__init__()
        self.runtime = runtime


class RuntimeFailed(Message):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


class TurnEnded(Message):
    """The agent's worker finished a turn (or a compaction): the next queued message may go."""


class GitScanned(Message):
    """The branch and dirty mark, from a git scan in a worker."""

    def __init__(self, state: str) -> None:
        super().__init__()
        self.state = state


@dataclass
class _Stats:
    prompt: int = 0
    cached: int = 0
    speed: float = 0.0


class GptossApp(App[None]):
    """`gptoss-agent` with no subcommand."""

    CSS_PATH = "app.tcss"
    TITLE = "gptoss-agent"
    AUTO_FOCUS = "#prompt"
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False), Binding("ctrl+c", "interrupt", "Cancel / quit", priority=True),
                Binding("f1", "help", "Help"),
                # The prompt has the focus and would take PgUp/PgDn for its few lines: they scroll the transcript.
                Binding("pageup", "scroll_transcript(-1)", show=False, priority=True),
                Binding("pagedown", "scroll_transcript(1)", show=False, priority=True)]

    def __init__(self, connect: Connector, *, approval: str = "ask", timings: bool = True,
                 animate: bool = True, repo: Path | None = None, type_ahead: str = "") -> None:
        super().__init__()
        self._connect = connect
        self._animate = animate  # cursor blink, spinner, clock and bar animations: off for snapshots
        if not animate:
            self.animation_level = "none"
        self._repo = repo
        self.approval = approval
        self.timings = timings
        self.runtime: Any = None
        self._titled = False  # the first message was logged as this session's task
        self.start_error: str | None = None  # why the model could not start (the queue then stays, visibly)
        self._queue: deque = deque()
        self.outbox: list[str] = []  # messages waiting for the model or for the current turn
        self._early_keys: list[events.Key] = keys_for(type_ahead)
        self._input_ready = False
        self._git = ""
        self._weak: list[str] = []  # sandbox guarantees that do not hold on this machine
        self._cancel = threading.Event()
        self._load_cancel = threading.Event()  # Esc while the model loads sets it; each load gets a fresh one
        self._loading = False
        self.load_cancelled = False  # the last load was cancelled (the status bar says so)
        self._busy = False
        self._started = False
        self._always: set[str] = set()
        self._stream: StreamingText | None = None
        self._streams: list[StreamingText] = []
        self._cards: dict[str, ToolCard] = {}
        self._stats = _Stats()
        self._last_interrupt = float("-inf")
        self._last_key_at = float("-inf")  # when the previous key came: a modal ignores answers mid-typing
        self._recalled = False  # the input holds a message Esc took back from the queue (Esc again drops it)
        self._previous_key = ""  # and which it was (Tab then Enter on a button is an answer, not typing)
        self._files: list[str] | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield Transcript(id="transcript")
            yield PlanPanel(id="plan")
        yield ProgressBar(total=1.0, show_eta=False, id="loading")
        yield Static("", id="new-output")
        yield WorkingIndicator(id="working", animate=self._animate)
        yield Static("", id="outbox")
        yield Static("", id="hints")
        prompt = PromptInput(id="prompt", soft_wrap=True, show_line_numbers=False)
        prompt.cursor_blink = self._animate
        yield prompt
        yield StatusBar(id="status")

    async def on_mount(self) -> None:
        if _terminal_is_light():
            self.theme = "textual-light"
        self.query_one(PlanPanel).show([])
        prompt = self.query_one("#prompt", PromptInput)
        self.screen.set_focus(prompt)  # now, not after this handler: the replayed keys go to the prompt
        await self._replay_early_keys(prompt)
        self._input_ready = True
        self.query_one("#new-output").display = False
        self.query_one(WorkingIndicator).stop()
        self._show_outbox()
        self.set_interval(1 / 30, self._drain)
        self.set_interval(0.1, self.query_one(WorkingIndicator).tick)
        self._on_width(self.size.width)
        self._refresh_status()
        self._welcome()
        # The model loads once the first frame is on screen: its worker (imports, the sandbox probe, git)
        # would otherwise compete with the first frame for the interpreter and delay it.
        self.call_after_refresh(self._start_load, None)

    def _start_load(self, model_path: str | None) -> None:
        """Load the model in the worker, with a fresh cancel event for Esc."""
        self._load_cancel = threading.Event()
        self._loading = True
        self.load_cancelled = False
        self._load(model_path)

    async def _replay_early_keys(self, prompt: PromptInput) -> None:
        """Keys typed before the prompt existed, handled now, each one fully before the next.

        As Textual handles a key: priority bindings, then the prompt itself (text,
        Enter, Ctrl+J), then the bindings of the focused widgets (arrows, Backspace,
        Esc). In place rather than posted: a posted key that the prompt leaves to a
        binding goes up through the message queues and would act after the letters
        typed after it (`ab⌫c` would end as `ab`). Keys still arriving wait in the
        app's queue until this handler is done, so the order holds.
        """
        while self._early_keys:
            key = self._early_keys.pop(0)
            if await self._check_bindings(key.key, priority=True):
                continue
            await prompt._on_key(key)
            if not key._no_default_action:
                await self._check_bindings(key.key)

    async def on_event(self, event: events.Event) -> None:
        """Input before the prompt exists is kept for it; a modal question only takes input from after it appeared."""
        if isinstance(event, events.Key) and not event.is_forwarded and not self._input_ready:
            self._early_keys.append(event)
            return
        since_previous_key = float("inf")
        previous_key = self._previous_key
        if isinstance(event, events.Key) and not event.is_forwarded:
            since_previous_key = event.time - self._last_key_at
            self._last_key_at = event.time
            self._previous_key = event.key
        if (isinstance(event, (events.Key, events.MouseDown, events.MouseUp, events.Click)) and not event.is_forwarded
                and isinstance(self.screen, GuardedModal) and event_key(event) != "ctrl+c"):
            # Decided here, in the order keys arrive, for every key: one handed to the modal's own queue
            # and given back from there would land after the keys typed behind it (`abc` became `bca`).
            # Tab, Enter: deliberate. The Enter goes to the modal after the Tab, in its queue, and is decided
            # there once the focus has moved (here, the Tab may not have been handled yet).
            focus_moved = previous_key in FOCUS_KEYS and event_key(event) == "enter"
            if isinstance(event, events.Key) and not focus_moved and self.screen.belongs_to_prompt(event):
                self.return_key_to_prompt(event)
                return
            if not self.screen.accepts(event, float("inf") if focus_moved else since_previous_key):
                if isinstance(event, events.Key):
                    self.return_key_to_prompt(event)
                return
            if event_key(event) in FOCUS_KEYS:  # moved now: as a binding it would act once the key came back
                self.screen.focus_next() if event_key(event) == "tab" else self.screen.focus_previous()  # from the
                return  # modal, after an Enter typed right behind it had already been handled
        await super().on_event(event)

    def return_key_to_prompt(self, event: events.Key) -> None:
        """A key a modal did not take as an answer was typed for the prompt: nothing typed is lost.

        Letters go in at the cursor, Enter as a new line (it must not send behind the modal).
        """
        prompt = self.query_one("#prompt", PromptInput)
        text = event.character if event.is_printable and event.character else (
            "\n" if event.key in ("enter", "shift+enter", "ctrl+j") else "")
        if text:  # at the cursor, which then moves past it: the next key goes after this one
            prompt.move_cursor(prompt.insert(text).end_location)

    def on_resize(self, event: events.Resize) -> None:
        self._on_width(event.size.width)

    def _on_width(self, width: int) -> None:
        """Narrow terminals (80 columns) give the plan panel's room to the transcript."""
        self.screen_stack[0].set_class(width < NARROW_WIDTH, "-narrow")  # the main screen, even under a modal

    def _welcome(self) -> None:
        repo = self._repo or Path.cwd()
        text = Text("gptoss-agent", style="bold")
        text.append(" — a coding agent that runs on this machine, offline.\nRepository: ")
        text.append_text(safe(repo.name or str(repo), multiline=False))
        text.append("\nType a task and press Enter · /help for commands · Ctrl+C twice to quit", style="dim")
        self._mount(Static(text, classes="welcome"))

    def on_unmount(self) -> None:
        """Leaving the app stops the running step (and any approval it waits for); the session is kept,
        unless nothing was ever sent (A4 #9: every bare launch was listed as an interrupted session)."""
        self._cancel.set()
        session = getattr(self.runtime, "session", None)
        if session is not None and not self._titled and isinstance(getattr(session, "path", None), Path):
            _forget_if_empty(session.path)

    # ------------------------------------------------------------------ model loading

    @work(thread=True, exclusive=True, group="load")
    def _load(self, model_path: str | None) -> None:
        try:
            self._ask_trust_for_repo_settings()
            runtime = self._connect(model_path, lambda f: self._queue.append(("progress", f)), self._queue_event,
                                    self._load_cancel)
        except Exception as exc:  # shown on screen, never a traceback
            self.post_message(RuntimeFailed(exc))
            return
        self.post_message(RuntimeReady(runtime))

    def _ask_trust_for_repo_settings(self) -> None:
        """(worker) The repository's settings file sets user-only keys: ask once, remembered for this content."""
        if self._repo is None:
            return
        from gptoss_agent.agent import config

        asking = getattr(config, "repo_settings_to_confirm", None)
        found = asking(self._repo) if asking else None
        if found is None:
            return
        text, digest, report = found
        if self._ask(TrustScreen(str(report.path), text, report.message())):
            config.trust_repo_settings(self._repo, digest)
            self._queue_event(Notice(f"trusted the settings in {report.path} (this exact content)"))

    def _ask(self, screen) -> Any:
        """(worker) Push a modal screen and wait for its answer; a cancelled step answers None."""
        answered = threading.Event()
        box: dict[str, Any] = {}

        def on_answer(answer: Any) -> None:
            box["answer"] = answer
            answered.set()

        self.call_from_thread(self.push_screen, screen, on_answer)
        while not answered.wait(0.05):
            if self._cancel.is_set() or not self.is_running:
                return None
        return box.get("answer")

    def on_runtime_ready(self, message: RuntimeReady) -> None:
        self._loading = False
        self.runtime = message.runtime
        self.runtime.agent.set_approver(self._approve)
        self.query_one("#loading", ProgressBar).display = False
        sandbox = self.runtime.ctx.sandbox
        text = Text("Ready: ", style="dim")
        text.append_text(safe(f"{self.runtime.model_name} ({self.runtime.backend_name})", multiline=False))
        text.append(" · sandbox ", style="dim")
        text.append(safe(sandbox.mechanism if sandbox else "off", multiline=False))
        self._mount(Static(text, classes="note"))
        self._weak = _weak_sandbox_properties(sandbox)
        for weak in self._weak:  # said before the first command can run
            self._note(f"⚠ the sandbox does not give this here: {weak}", style="bold yellow")
        self._refresh_status()
        self._scan_git()
        self._send_next()

    def on_runtime_failed(self, message: RuntimeFailed) -> None:
        error = message.error
        self._loading = False
        if isinstance(error, ModelMissing):
            self.push_screen(NoModelScreen(error.places, error.fetch, refused=error.refused,
                                           queued=list(self.outbox)), self._start_load)
            return
        self.query_one("#loading", ProgressBar).display = False
        self.start_error = safe_text_line(error) or type(error).__name__
        from gptoss_agent.agent.runtime import LoadCancelled

        self.load_cancelled = isinstance(error, LoadCancelled)
        if self.load_cancelled:
            self._note("Model loading cancelled.", style="bold yellow")
        else:
            self._note(f"Could not start: {self.start_error}", style="bold red")
        self._note("/model PATH loads another GGUF without restarting; /diff, /undo and /clear work without "
                   "a model.", style="dim")
        if self.outbox:
            self._note("Nothing queued was sent, and nothing is lost: the queue stays below (Esc takes the last "
                       "one back into the input to edit, copy or drop). Ctrl+C twice quits.", style="dim")
        self._show_outbox()
        self._refresh_status()

    # ------------------------------------------------------------------ input

    def on_text_area_changed(self, event=None) -> None:
        """Completion hints for /commands and @file mentions; Tab takes the first."""
        prompt = self.query_one("#prompt", PromptInput)
        if not prompt.text:
            self._recalled = False
        prompt.suggestions = self._suggestions(prompt.text)
        hints = self.query_one("#hints", Static)
        hints.update(Text("  ".join(prompt.suggestions[:8]) + ("  (Tab completes)" if prompt.suggestions else ""),
                          style="dim"))
        hints.display = bool(prompt.suggestions)

    @work(thread=True, exclusive=True, group="files")
    def _list_files(self) -> None:
        """(worker) The repository's files for @ completion: git ls-files never runs on the UI thread.

        Names that would need escaping to be shown (control, bidi, zero-width characters) are left
        out: a completion puts the name into the prompt as it is."""
        files = [name for name in self.runtime.operations.repo_files() if safe_text_line(name) == name]
        self.call_from_thread(self._files_listed, files)

    def _files_listed(self, files: list[str]) -> None:
        self._files = files
        self.on_text_area_changed()

    def _suggestions(self, text: str) -> list[str]:
        if text.startswith("/") and " " not in text:
            return [c for c in COMMANDS if c.startswith(text) and c != text]
        if not text.strip() or text[-1].isspace():  # a completed word: a second Tab must not repeat it
            return []
        word = text.rsplit(None, 1)[-1]
        if word.startswith("@") and self.runtime is not None:
            if self._files is None:
                self._files = []  # filled in by the worker; the hints update when it is done
                self._list_files()
            needle = word[1:]
            hits = [f for f in self._files if needle in f]
            hits.sort(key=lambda f: (not f.startswith(needle), not f.rsplit("/", 1)[-1].startswith(needle), len(f)))
            return ["@" + f for f in hits[:20]]
        return []

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        self._recalled = False
        if text.startswith("/"):
            self._command(text)
            return
        self.outbox.append(text)
        self._show_outbox()
        self._send_next()

    def _send_next(self) -> None:
        """Send the oldest queued message, when the model is loaded and nothing is running.

        Queued slash commands run in their place: one that starts work (a git
        command, the tests, a compaction) holds the rest of the queue until it ends."""
        while self.runtime is not None and not self._busy and self.outbox:
            text = self.outbox.pop(0)
            self._show_outbox()
            if text.startswith("/"):
                self._command(text)
                continue
            self._mount(UserEntry(text))
            self._log_first_message(text)
            self._begin_work()
            self._run_turn(text)

    def _log_first_message(self, text: str) -> None:
        """The session's first message names it in `sessions` (its header only says it is interactive)."""
        session = getattr(self.runtime, "session", None)
        if self._titled or session is None:
            return
        self._titled = True
        from gptoss_agent.agent.events import RunStarted

        session.write("event", event=RunStarted(text, str(self._workspace()), self.runtime.model_name,
                                                self.runtime.backend_name, session.id).to_json())

    def _show_outbox(self) -> None:
        view = self.query_one("#outbox", Static)
        view.display = bool(self.outbox)
        if self.outbox:
            if self.start_error is not None:
                text = Text("not sent (the model could not start; Esc to edit or drop the last): ",
                            style="bold yellow")
            else:
                why = "the model is loading" if self.runtime is None else "sent when this turn ends"
                text = Text(f"queued ({why}; Esc to edit or drop the last): ", style="dim")
            for index, queued in enumerate(self.outbox):
                if index:
                    text.append(" · ", style="dim")
                text.append_text(safe(queued[:60] + ("…" if len(queued) > 60 else ""), multiline=False))
            view.update(text)

    def _begin_work(self) -> None:
        self._busy = True
        self._cancel = threading.Event()
        self.query_one(WorkingIndicator).start()

    def on_turn_ended(self, _: TurnEnded) -> None:
        self._busy = False
        for indicator in self.query(WorkingIndicator):  # (none while the app shuts down)
            indicator.stop()
        self._refresh_status()
        self._scan_git()
        self._send_next()

    @work(thread=True, group="agent")
    def _run_turn(self, text: str) -> None:
        from gptoss_agent.agent.frontends.headless import start_agent

        try:
            agent = self.runtime.agent
            # @path mentions are read here, off the UI thread, through open_file's own rules; each
            # refusal is told to the user before the model answers (it never saw that file).
            attached = attach_mentions(self.runtime.ctx, text)
            for line in attached.refused:
                self._queue.append(("refused", line))
            text = attached.text
            if not self._started:
                start_agent(self.runtime, text)
                self._started = True
            agent.run(text, self._cancel)
        except BaseException as exc:  # a bug (or a native panic) in a turn must not take the app down
            self._queue_event(ErrorRaised(f"{type(exc).__name__}: {exc}"))
        finally:
            self._queue.append(("ended", None))

    # ------------------------------------------------------------------ approvals (called in the worker)

    def _approve(self, call, spec) -> None:
        from gptoss_agent.agent.approvals import Refused, must_ask

        # The one rule of every front-end; it raises for read-only, which wins over an earlier "always".
        if not must_ask(self.approval, spec) or spec.recipient in self._always:
            return
        preview, is_diff = self._preview(call, spec)
        asked = time.monotonic()
        answer = self._ask(ApprovalScreen(spec.recipient, preview, is_diff=is_diff))
        self._queue.append(("waited", time.monotonic() - asked))  # not counted in the tool's time
        if answer is None:
            raise Refused("the user cancelled")
        if answer.always:
            self._always.add(spec.recipient)
            self.call_from_thread(self._refresh_status)
        if not answer.allow:
            raise Refused(answer.reason or "no")

    def _preview(self, call, spec) -> tuple[str, bool]:
        from gptoss_agent.agent.model.completion import decode_arguments

        arguments, _ = decode_arguments(call)
        if spec.recipient == "repo_browser.apply_patch":
            patch = arguments.get("patch", arguments.get("input", "")) if isinstance(arguments, dict) else arguments
            return self.runtime.operations.patch_preview(patch)
        command = command_preview(arguments)
        return (command if command is not None else arguments_preview(arguments)), False

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
                # After the next refresh: the bar rounds a value to its width, so setting it before the first
                # layout would draw a different bar for the same progress.
                self.call_after_refresh(self.query_one("#loading", ProgressBar).update, progress=item)
                continue
            if kind == "refused":
                self._note(item, style="bold yellow")
                continue
            if kind == "waited":
                running = [card for card in self._cards.values() if card.outcome == "running"]
                if running:
                    running[-1].waited += item
                continue
            if kind == "ended":
                if batch:
                    self._stream_text(batch_channel, "".join(batch))
                    batch = []
                self.post_message(TurnEnded())
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
        self.query_one(Transcript).added()

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
            self._mount(widgets.AnswerView(event.text) if event.channel == "final" else Static(safe(event.text), classes="preamble"))
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
            self._mount(Static(safe(f"tests: {event.passed} passed, {event.failed} failed, {event.errors} errors{failing}",
                                    multiline=False, style=style), classes="tests"))
        elif isinstance(event, PlanUpdated):
            self.query_one(PlanPanel).show(event.steps)
            current = next((s for s in event.steps if s.get("status") == "in_progress"), None)
            self.query_one(WorkingIndicator).detail = str(current.get("step", ""))[:60] if current else ""
        elif isinstance(event, Committed):
            first = event.message.splitlines()[0] if event.message else ""
            self._note(f"● committed {event.sha[:12]} {first}", style="yellow")
            self._scan_git()
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
            if event.status != "completed":  # the step that was in progress is not any more
                self.query_one(PlanPanel).stop()
                self.query_one(WorkingIndicator).detail = ""
            if event.status != "completed":
                self._note(f"■ {event.status}" + (f": {event.reason}" if event.reason else ""), style="bold")
            self._refresh_status()

    def _mount(self, widget) -> None:
        transcript = self.query_one(Transcript)
        transcript.mount(widget)
        transcript.added()

    def _note(self, text: str, style: str = "") -> None:
        """A line in the transcript; it may quote untrusted text (paths, errors), so it is shown safely."""
        self._mount(Static(safe(text, style=style), classes="note"))

    def on_transcript_new_output(self, message: Transcript.NewOutput) -> None:
        found = self.query("#new-output")
        if not found:  # the transcript scrolls once as it mounts, before the marker exists
            return
        marker = found.first(Static)
        marker.display = message.pending
        if message.pending:
            marker.update(Text("↓ new output below · PgDn to read it", style="bold reverse"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """PgUp/PgDn scroll the transcript only on the main screen; a modal scrolls its own content."""
        if action == "scroll_transcript":
            return len(self.screen_stack) == 1
        return True

    def action_scroll_transcript(self, direction: int) -> None:
        """PgUp/PgDn scroll the transcript, or, over a modal or help screen, what that screen shows."""
        transcript = self.query_one(Transcript)
        if self.screen is not self.screen_stack[0]:
            focused = self.screen.focused
            transcript = focused if focused is not None and focused.allow_vertical_scroll else None
            if transcript is None:
                for candidate in self.screen.query("VerticalScroll"):
                    transcript = candidate
                    break
            if transcript is None:
                return
        if direction < 0:
            transcript.scroll_page_up()
        else:
            transcript.scroll_page_down()

    def on_markdown_link_clicked(self, message) -> None:
        """Links in the model's answer never open on a click: the real address is shown first."""
        message.stop()
        href = message.href

        def opened(confirmed: bool | None) -> None:
            if confirmed:
                self.open_url(href)

        self.push_screen(LinkScreen(href), opened)

    def _refresh_status(self) -> None:
        fields: dict[str, str] = {}
        warning = None
        runtime = self.runtime
        if runtime is None and self.start_error is not None:
            fields["model"] = "load cancelled" if self.load_cancelled else "could not start"
            warning = "NO MODEL"
        elif runtime is None:
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
            if self._git:
                fields["git"] = self._git
            if python := runtime.operations.python_env_name():  # the project's own venv or conda env, when it has one
                fields["python"] = python
            sandbox = runtime.ctx.sandbox.mechanism if runtime.ctx.sandbox else "off"
            fields["sandbox"] = sandbox + (f" ⚠{len(self._weak)}" if self._weak else "")
            if sandbox in ("none", "off"):
                warning = "SANDBOX OFF"
        fields["approval"] = self.approval + (f" (always: {', '.join(sorted(self._always))})" if self._always else "")
        if time.monotonic() - self._last_interrupt < QUIT_WINDOW_SECONDS:  # first in the bar, seen wherever one reads
            warning = "Ctrl+C again to quit"
        for bar in self.query(StatusBar):  # (none while the app shuts down and a late scan arrives)
            bar.show(fields, warning=warning)

    # ------------------------------------------------------------------ actions and commands

    @work(thread=True, exclusive=True, group="git")
    def _scan_git(self) -> None:
        """(worker) The branch and dirty mark for the status bar: git never runs on the UI thread."""
        if self.runtime is not None:
            self.post_message(GitScanned(self.runtime.operations.git_state()))

    def on_git_scanned(self, message: GitScanned) -> None:
        self._git = message.state
        self._refresh_status()

    def action_cancel(self) -> None:
        """Esc: take the last queued message back to edit (or drop), else interrupt the running step."""
        prompt = self.query_one("#prompt", PromptInput)
        if prompt.text.strip():
            # A second Esc meant to drop the message just taken back must not cancel the turn (A4 #5):
            # with text in the input, Esc only ever acts on that text.
            if self._recalled:
                dropped = prompt.text
                prompt.text = ""
                self._recalled = False
                self._note(f"dropped from the queue: {dropped[:60]}{'…' if len(dropped) > 60 else ''}", style="dim")
            elif self._busy:
                self._note("Esc interrupts when the input is empty (your draft is kept).", style="dim")
            return
        if self.outbox:
            prompt.text = self.outbox.pop()
            prompt.move_cursor(prompt.document.end)
            self._recalled = True
            self._show_outbox()
            return
        if self._busy:
            self._cancel.set()
            self._note("cancelling…", style="dim")
        elif self._loading and self.runtime is None and not self._load_cancel.is_set():
            self._load_cancel.set()  # llama.cpp stops at its next progress callback
            self._note("cancelling the model load…", style="dim")

    def action_interrupt(self) -> None:
        if isinstance(self.screen, NoModelScreen):  # nothing runs and nothing can be lost there: it quits at once
            self.exit()
            return
        now = time.monotonic()
        if now - self._last_interrupt < QUIT_WINDOW_SECONDS:
            self.exit()
            return
        prompt = self.query_one("#prompt", PromptInput)
        if prompt.text and not isinstance(self.screen, GuardedModal):
            # As shells do: the first Ctrl+C clears the line being written, and arms nothing (A4 #8).
            prompt.text = ""
            self._recalled = False
            self.notify("Draft cleared. Ctrl+C on an empty input, twice, quits.", timeout=3)
            return
        self._last_interrupt = now
        if isinstance(self.screen, GuardedModal):  # the question goes with the run it belonged to (as refused)
            self.screen.dismiss(None)
        if self._busy:
            self._cancel.set()
            self._note("cancelling…", style="dim")
        # In the status bar, always on screen: a line at the end of a scrolled-up transcript is not seen.
        self._refresh_status()
        self.set_timer(QUIT_WINDOW_SECONDS + 0.05, self._refresh_status)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen):
        """Every action in the command palette (Ctrl+P), beside Textual's own."""
        yield from super().get_system_commands(screen)
        # Textual's own entries already include "Quit" (and help keys): ours add only what it lacks.
        entries = palette_entries()
        for title, help_text, line in entries:
            yield SystemCommand(title, help_text, lambda line=line: self._command(line))

    def _command(self, line: str) -> None:
        """Run a slash command now, or queue it (visibly, in order) when it needs what is not there yet:
        the model while it loads, or the end of the running turn for commands that would race it."""
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        attribute = f"_cmd_{name.replace('-', '_')}"
        handler = getattr(self, attribute, None) if attribute.isidentifier() else None
        if handler is None:
            self._note(f"Unknown command /{name}. /help lists them.", style="red")
            return
        slash = "/" + name
        if self.runtime is None and slash in NEEDS_MODEL and self.start_error is not None:
            if slash in WORKS_WITHOUT_MODEL:
                handler(rest)
            else:
                self._note(f"{slash} needs the model, which could not start (/model PATH loads another).",
                           style="red")
            return
        if (self.runtime is None and slash in NEEDS_MODEL) or (self._busy and slash in WAITS_FOR_TURN):
            self.outbox.append(line)
            self._show_outbox()
            return
        handler(rest)

    def _cmd_help(self, _: str) -> None:
        self.action_help()

    def _cmd_quit(self, _: str) -> None:
        self.exit()

    def _cmd_clear(self, _: str) -> None:
        if self.runtime is not None:
            self.runtime.agent.reset()  # logged, so resuming this session restores the new conversation
        self._started = False
        self.query_one(Transcript).remove_children()
        self.query_one(PlanPanel).show([])
        self._note("Conversation cleared.", style="dim")

    def _while_idle(self, name: str) -> bool:
        """Commands that change the work tree wait for the running turn: they would race the agent's edits."""
        if self._busy:
            self._note(f"/{name} waits until the agent is done (Esc interrupts it).", style="dim")
        return not self._busy

    def _git_done(self, renderable, style: str = "") -> None:
        """(UI thread) Show what a git command did, then refresh the status bar's git field."""
        self._mount(Static(safe(renderable, style=style), classes="note") if isinstance(renderable, str) else renderable)
        self._scan_git()
        self._refresh_status()

    def _cmd_undo(self, _: str) -> None:
        if self._while_idle("undo"):
            self._begin_work()  # what was queued behind /undo waits for it
            self._undo()

    @work(thread=True, exclusive=True, group="git-command")
    def _undo(self) -> None:
        from gptoss_agent.agent.operations import OperationFailed

        try:
            self.call_from_thread(self._git_done, self._operations().undo())
        except OperationFailed as exc:
            self.call_from_thread(self._git_done, str(exc), "red")
        finally:
            self._queue.append(("ended", None))

    def _operations(self):
        """The session's operations; without a model (it could not start), those of a fresh tool context
        for the repository: the agent has made no edits then, and undo says so rather than refusing."""
        if self.runtime is not None:
            return self.runtime.operations
        from gptoss_agent.agent.operations import repository_operations

        return repository_operations(self._workspace())

    def _workspace(self) -> Path:
        """The repository: the runtime's once it is loaded, before that the one the app was started in."""
        return self.runtime.ctx.workspace if self.runtime is not None else (self._repo or Path.cwd())

    @work(thread=True, exclusive=True, group="git-command")
    def _cmd_diff(self, _: str) -> None:
        try:
            diff = self._operations().diff()
        except Exception as exc:  # (GitError, HostGitError, OSError): a line on screen, never a crash of the app
            self.call_from_thread(self._git_done, f"/diff: {exc}", "red")
            return
        self.call_from_thread(self._git_done, Static(safe_diff(diff) if diff else Text("No changes.", style="dim"),
                                                     classes="diff"))

    def _cmd_commit(self, message: str) -> None:
        if self._while_idle("commit"):
            self._begin_work()
            self._commit(message)

    @work(thread=True, exclusive=True, group="git-command")
    def _commit(self, message: str) -> None:
        from gptoss_agent.agent.operations import OperationFailed

        try:
            sha, paths = self.runtime.operations.commit(message or "Changes by gptoss-agent")
            self.call_from_thread(self._git_done, f"● committed {sha[:12]}: {', '.join(paths)}", "yellow")
        except OperationFailed as exc:
            self.call_from_thread(self._git_done, str(exc), "red")
        finally:
            self._queue.append(("ended", None))

    def _cmd_test(self, _: str) -> None:
        self._begin_work()  # a message sent meanwhile waits: the agent would edit what the tests run
        self._run_tests()

    @work(thread=True, group="tests")
    def _run_tests(self) -> None:
        try:
            report = self.runtime.operations.run_tests()
            self._queue_event(TestsReported(report.passed, report.failed, report.errors, report.failing_ids))
        except Exception as exc:  # shown, never a traceback
            self._queue_event(ErrorRaised(f"/test: {type(exc).__name__}: {exc}"))
        finally:
            self._queue.append(("ended", None))

    def _cmd_plan(self, _: str) -> None:
        steps = self.runtime.ctx.plan if self.runtime is not None else []
        self._note("\n".join(f"[{s['status']}] {s['step']}" for s in steps) or "No plan yet.")

    def _cmd_reasoning(self, effort: str) -> None:
        if effort not in REASONING_EFFORTS:
            self._note("Usage: /reasoning " + "|".join(REASONING_EFFORTS), style="red")
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

    def _cmd_compact(self, _: str) -> None:
        if not self._started:
            self._note("Nothing to compact yet.", style="dim")
        elif self._while_idle("compact"):
            self._begin_work()
            self._compact()

    @work(thread=True, group="agent")
    def _compact(self) -> None:
        try:
            self.runtime.agent.compact(self._cancel)
        except BaseException as exc:
            self._queue_event(ErrorRaised(f"{type(exc).__name__}: {exc}"))
        finally:
            self._queue.append(("ended", None))

    def _cmd_model(self, path: str) -> None:
        """Show the loaded model; when none could start, `/model PATH` loads another without a restart."""
        if self.runtime is None:
            if not path:
                self._note("Usage: /model PATH (a GGUF file) to load a model.", style="red")
                return
            self.start_error = None  # loading again: the queue waits for it, as at start-up
            self._note(f"Loading {path} …", style="dim")
            self.query_one("#loading", ProgressBar).display = True
            self._show_outbox()
            self._refresh_status()
            self._start_load(str(Path(path).expanduser()))
            return
        if path:
            self._note("A model is loaded; start gptoss-agent again with --model PATH to use another.", style="dim")
            return
        info = getattr(self.runtime.backend, "info", None)
        self._note(str(info) if info else f"{self.runtime.model_name} ({self.runtime.backend_name})")

    def _cmd_sessions(self, _: str) -> None:
        from gptoss_agent.agent.session import list_sessions

        from gptoss_agent.agent.frontends.headless import session_task

        rows = [f"{s.id}  {s.status:<11} {s.steps:>3} steps  {session_task(s, 50)}"
                for s in list(list_sessions(repo=str(self._workspace())))[:15]]
        self._note("\n".join(rows) or "No sessions yet.")

    def _cmd_resume(self, ident: str) -> None:
        """Continue an earlier session here: its conversation replaces this one (and is copied into this log)."""
        from gptoss_agent.agent.session import SessionError, find_session

        try:
            record = find_session(ident or None, repo=str(self.runtime.ctx.workspace),  # this repository's only
                                  exclude=self.runtime.session.id)  # bare /resume: the one before this
        except SessionError as exc:
            self._note(str(exc), style="red")
            return
        self.runtime.agent.resume(record)
        self._started = bool(self.runtime.agent.conversation.segments)  # an empty log: the next turn starts anew
        self.query_one(PlanPanel).show(self.runtime.ctx.plan)
        self._show_history()
        task = _first_task(record)
        self._log_first_message(task)  # this session is then listed by what the resumed one was about
        self._note(f"Resumed session {record.id} ({record.steps} steps): {task[:80]}")

    def _show_history(self) -> None:
        """The screen shows the conversation the model now has: the previous one goes, a recap comes."""
        from gptoss_agent.agent.compaction import recap

        self.query_one(Transcript).remove_children()
        agent = self.runtime.agent
        for role, text in recap(agent.conversation.segments, agent.codec):
            self._mount(UserEntry(text) if role == "user" else widgets.AnswerView(text))


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


def keys_for(typed: str) -> list[events.Key]:
    """Key events for text typed before the app could read keys, exactly as Textual reads them later.

    Textual's own terminal parser makes them, so CR is Enter, LF is Ctrl+J (a new
    line in the prompt), DEL is Backspace and escape sequences are arrow keys, as
    they would be after start-up. The end of the text ends any half sequence (a
    lone Esc is Esc). Whatever is not a key (there are none before the app asks
    the terminal for mouse or paste reports) is left out.
    """
    if not typed:
        return []
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    parsed = [*parser.feed(typed), *parser.feed("")]
    return [event for event in parsed if isinstance(event, events.Key)]


def _weak_sandbox_properties(sandbox) -> list[str]:
    """What the sandbox cannot give on this machine, in words (empty when everything holds).

    Reads `sandbox.properties()` where the sandbox offers it: items that are
    strings, (name, holds[, detail]) tuples, or objects with `holds` and `name`/`detail`.
    """
    if sandbox is None:
        return ["everything: the sandbox is off and commands run unconfined"]
    if getattr(sandbox, "mechanism", None) == "none":
        return ["everything: the sandbox is off (--sandbox none) and commands run unconfined"]
    properties = getattr(sandbox, "properties", None)
    try:
        items = properties() if callable(properties) else (properties or ())
    except Exception:
        return []
    weak = []
    for item in items:
        if isinstance(item, str):
            weak.append(item)
        elif isinstance(item, tuple) and len(item) >= 2:
            if not item[1]:
                weak.append(" — ".join(str(part) for part in (item[0], *item[2:3]) if part))
        elif not getattr(item, "holds", True):
            name = getattr(item, "name", "") or str(item)
            detail = getattr(item, "detail", "") or getattr(item, "why", "")
            weak.append(f"{name} — {detail}" if detail else name)
    return weak

