"""The TUI's widgets: transcript entries, tool cards, the plan panel, the status bar, the prompt.

Every string the model or the repository wrote is turned into a Rich `Text` by
`safe()`: control, bidi and zero-width characters become visible escapes (in
reverse video, so they cannot pass for typed text), never terminal commands.
"""

from __future__ import annotations

import re
import shlex
import time

from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Collapsible, Static, TextArea

from gptoss_agent.agent import safe_text
from gptoss_agent.agent.events import ToolCalled, ToolFinished

# Single-width symbols: emoji are double-width in most terminals and break alignment.
ICONS = {"repo_browser.open_file": "≡", "repo_browser.search": "⌕", "repo_browser.apply_patch": "✎",
         "repo_browser.print_tree": "⊢", "repo_browser.list_dir": "⊢", "container.exec": "$",
         "functions.run_tests": "⚑", "functions.git_commit": "●", "functions.update_plan": "☰",
         "functions.find_symbol": "⌖"}
PLAN_MARKS = {"pending": "○", "in_progress": "◐", "completed": "●", "stopped": "■"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
REFUSAL_PREFIX = "The user declined this call"
ESCAPE_STYLE = "reverse"


def safe(text: object, *, multiline: bool = True, strict: bool = False, style: str = "") -> Text:
    """Untrusted text as a Rich Text: escapes for every unsafe character, styled apart from the text."""
    result = Text(style=style)
    for piece, escaped in safe_text.spans(str(text), multiline=multiline, strict=strict):
        result.append(piece, style=ESCAPE_STYLE if escaped else None)
    return result


def safe_diff(diff: str):
    """A diff from the model or the repository, coloured, with every unsafe character escaped (a Rich Syntax)."""
    from rich.syntax import Syntax  # (imported on first use: Pygments is not needed for the first frame)

    return Syntax(safe_text.block(diff), "diff", theme="ansi_dark", word_wrap=True)


class UserEntry(Static):
    """What the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(safe(text), classes="user")


class StreamingText(Static):
    """Text arriving token by token, before its message is complete (updated in batches)."""

    def __init__(self, channel: str | None) -> None:
        super().__init__("", classes=f"streaming {channel or 'none'}")
        self.channel = channel
        self.text = ""

    def extend(self, text: str) -> None:
        self.text += text
        self.update(safe(self.text))


class ReasoningBlock(Collapsible):
    """The model's reasoning: dimmed, collapsed once the answer arrives, reopenable."""

    def __init__(self, text: str, *, collapsed: bool = True) -> None:
        super().__init__(Static(safe(text), classes="reasoning-text"), title="Reasoning", collapsed=collapsed,
                         classes="reasoning")


CARD_CHROME_COLUMNS = 6  # the card's ▶, its padding and the transcript's scrollbar
CARD_ARGUMENT_MIN = 16  # even in a very narrow card, enough to say what was cut
_SPACE_RUN = re.compile(r" {4,}")
_ARGUMENT_KEYS = ("path", "cmd", "query", "message", "paths", "name")


def card_argument(arguments: object, width: int = 60) -> str:
    """A tool call's key argument on one line of at most `width` columns, hiding nothing.

    Neutralised like a command a person approves (controls, bidi, zero-width and
    every space but " " escaped); a run of spaces is counted (`␠×200`) rather than
    drawn, so it cannot push the rest off the edge; what does not fit is said:
    `… +N chars` for the rest of the line, `+N lines` for the lines after it. A
    card then never reads as `echo harmless` when the command goes on to `echo EVIL`.
    """
    value: object = arguments
    if isinstance(arguments, dict):
        value = next((arguments[key] for key in _ARGUMENT_KEYS if key in arguments), "")
    if isinstance(value, list):
        value = shlex.join(str(part) for part in value) if isinstance(arguments, dict) and "cmd" in arguments \
            else " ".join(map(str, value))
    lines = str(value).split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    first = _SPACE_RUN.sub(lambda run: f" ␠×{len(run.group())} ", safe_text.visible(lines[0], strict=True))
    more_lines = len(lines) - 1
    lines_note = f" +{more_lines} line{'s' if more_lines > 1 else ''}" if more_lines else ""
    if len(first) + len(lines_note) + (2 if lines_note else 0) <= width:
        return first + (f" …{lines_note}" if lines_note else "")
    room = max(width - len(lines_note) - 12, 4)
    return f"{first[:room]}… +{len(first) - room} chars{lines_note}"


class ToolCard(Collapsible):
    """One tool call: icon, tool, key argument, status; expands to its output (diffs in colour).

    Its time counts only the tool's own work: time spent waiting for the user's
    approval is subtracted (`waited`). A refusal is shown as refused, not failed.
    """

    def __init__(self, call: ToolCalled, started: float = 0.0) -> None:
        self.call = call
        self.started = started
        self.waited = 0.0
        self.outcome = "running"
        self.status = "◌"  # left of the tool's name: a long argument can never push it off screen
        self.body = Static("…", classes="tool-output")
        super().__init__(self.body, title=self._heading(100), collapsed=True, classes="tool running")

    def _heading(self, columns: int | None = None) -> Content:
        """`status icon tool  argument`, the argument fitted to the width the card has (A4 #3)."""
        icon = ICONS.get(self.call.name, "⚙")
        head = f"{self.status} {icon} {safe_text.line(self.call.name)}  "
        width = (columns or self.size.width or self.app.size.width or 100) - CARD_CHROME_COLUMNS
        # Plain Content: a str title is read as Textual markup, and `[link=…]` or `[on black]` in a
        # model's path would style, hide or link the card's text.
        return Content(head + card_argument(self.call.arguments, max(width - len(head), CARD_ARGUMENT_MIN)))

    def on_resize(self, event: events.Resize) -> None:
        self.title = self._heading()

    def finish(self, result: ToolFinished, seconds: float | None = None) -> None:
        self.remove_class("running")
        refused = not result.ok and result.output.startswith(REFUSAL_PREFIX)
        self.outcome = "refused" if refused else ("ok" if result.ok else "failed")
        self.add_class(self.outcome)
        status = {"ok": "✓", "failed": "✗ failed", "refused": "⊘ refused"}[self.outcome]
        if seconds is not None and not refused:
            status += f" {max(seconds - self.waited, 0.0):.1f}s"
        self.status = status
        self.title = self._heading()
        if result.display:
            self.body.update(safe_diff(result.display))
            self.collapsed = False
        else:
            self.body.update(safe(result.output))


class PlanPanel(Static):
    """The current plan, each step with its status."""

    steps: list[dict] = []

    def stop(self) -> None:
        """The run ended before finishing (cancelled, failed): the step in progress is shown stopped."""
        self.show([{**step, "status": "stopped"} if step.get("status") == "in_progress" else step
                   for step in self.steps])

    def show(self, steps: list[dict]) -> None:
        self.steps = list(steps)
        if not steps:
            self.update(Text("No plan yet.", style="dim"))
            return
        text = Text()
        for step in steps:
            status = str(step.get("status", "pending"))
            text.append(f"{PLAN_MARKS.get(status, '○')} ", style="bold")
            text.append_text(safe(str(step.get("step", "")), multiline=False,
                                  style="dim" if status == "completed" else ""))
            text.append("\n")
        self.update(text)


class Transcript(VerticalScroll):
    """The conversation. Anchored to the newest output (Textual's anchor) until the user scrolls up to
    read; then new output raises `NewOutput` instead of moving the view, and reaching the end again
    follows once more."""

    can_focus = False  # the prompt keeps the keys; PgUp/PgDn and the mouse scroll the transcript

    class NewOutput(Message):
        """Output arrived below what the user is reading (True), or the user caught up (False)."""

        def __init__(self, pending: bool) -> None:
            super().__init__()
            self.pending = pending

    def on_mount(self) -> None:
        self.anchor()

    @property
    def at_end(self) -> bool:
        """Whether the newest output is in view: everything fits (no scrolling possible, whatever offset the
        anchor left after the content shrank), or the view is at the bottom."""
        return self.max_scroll_y <= 0 or self.scroll_y >= self.max_scroll_y - 1

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.at_end:
            self.post_message(self.NewOutput(False))

    def added(self) -> None:
        """Called after new output: tell the app whether the user is looking elsewhere."""
        self.call_after_refresh(lambda: self.post_message(self.NewOutput(not self.at_end)))


class WorkingIndicator(Static):
    """While the agent works: a spinner, the elapsed time, and how to interrupt."""

    def __init__(self, *, animate: bool = True, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.since: float | None = None
        self.detail = ""
        self.animate = animate  # off for snapshots: no spinner frame, no clock

    def start(self) -> None:
        self.since = time.monotonic()
        self.display = True
        self.tick()

    def stop(self) -> None:
        self.since = None
        self.display = False

    def tick(self) -> None:
        if self.since is None:
            return
        elapsed = time.monotonic() - self.since
        frame = SPINNER[int(elapsed * 10) % len(SPINNER)]
        text = Text(f"{frame} working {_clock(elapsed)}" if self.animate else "working", style="bold")
        if self.detail:
            text.append(" · ")
            text.append_text(safe(self.detail, multiline=False))
        text.append(" · esc to interrupt (empty input)", style="dim")
        self.update(text)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m {seconds % 60:02d}s"


class StatusBar(Static):
    """Model, backend, effort, context, cache reuse, speed, git state, approval, sandbox.

    At any width the safety-relevant fields stay: approval and sandbox (and any
    warning) are placed first; lower-priority fields are dropped when the line would not fit.
    """

    ORDER = ("approval", "sandbox", "model", "git", "python", "ctx", "reasoning", "cache", "speed", "backend")
    DROP_FIRST = ("backend", "speed", "cache", "reasoning", "python", "ctx", "git", "model")

    def show(self, fields: dict[str, str], *, warning: str | None = None) -> None:
        self._fields, self._warning = dict(fields), warning
        self._render_fields()

    def on_resize(self, event: events.Resize) -> None:
        if hasattr(self, "_fields"):
            self._render_fields()

    def _render_fields(self) -> None:
        fields = {k: self._fields[k] for k in self.ORDER if k in self._fields}
        fields.update({k: v for k, v in self._fields.items() if k not in fields})
        width = (self.size.width or 80) - 2
        text = self._line(fields)
        for name in self.DROP_FIRST:
            if text.cell_len <= width:
                break
            fields.pop(name, None)
            text = self._line(fields)
        self.update(text)

    def _line(self, fields: dict[str, str]) -> Text:
        text = Text()
        if self._warning:
            text.append(f"{self._warning}  ", style="bold red")
        for index, (name, value) in enumerate(fields.items()):
            if index:
                text.append(" · ", style="dim")
            if name in ("ctx", "cache", "approval", "sandbox", "python"):
                text.append(f"{name} ", style="dim")
            text.append_text(safe(value, multiline=False))
        return text


class PromptInput(TextArea):
    """Multi-line input: Enter sends, Shift+Enter or Ctrl+J adds a line, Up/Down walk the history.

    Enter and Tab are handled in `_on_key`, in the order the keys arrived, not
    as priority bindings: a priority binding runs before the keys queued ahead
    of it, so a fast `/plan⏎` used to send an empty line. Keys that bindings
    handle (arrows, Backspace) are run from `_on_key` too, for the same reason.
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sent: list[str] = []
        self._cursor: int | None = None
        self.suggestions: list[str] = []

    def action_complete(self) -> None:
        """Replace the word being typed with the first completion."""
        if not self.suggestions:
            return
        head, _, _ = self.text.rpartition(" ") if " " in self.text else ("", "", self.text)
        self.text = (head + " " if head else "") + self.suggestions[0] + " "
        self.suggestions = []
        self.move_cursor(self.document.end)

    def action_send(self) -> None:
        text = self.text.strip()
        if text:
            self.sent.append(text)
            self._cursor = None
            self.post_message(self.Submitted(text))
            self.text = ""

    def action_newline(self) -> None:
        self.insert("\n")

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        handled = True
        if key == "enter":
            self.action_send()
        elif key in ("shift+enter", "ctrl+j"):
            self.action_newline()
        elif key == "tab":  # completes; never moves the focus out of the prompt
            self.action_complete()
        elif key in ("up", "down") and "\n" not in self.text and self.sent:
            step = -1 if key == "up" else 1
            start = len(self.sent) if self._cursor is None else self._cursor
            self._cursor = min(max(start + step, 0), len(self.sent))
            self.text = self.sent[self._cursor] if self._cursor < len(self.sent) else ""
            self.move_cursor(self.document.end)
        else:
            handled = False
        if not handled and not event.is_printable:
            # A key left to a binding (arrows, Backspace, Home, Esc, F1) acts now, in key order. Left to
            # bubble up to the app, it would act after the keys queued behind it: `ab⌫c⏎` typed in one
            # burst sent "abc", the Backspace landing in the emptied prompt.
            handled = await self.app._check_bindings(key)
        if handled:
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)


def _answer_view_class():
    """AnswerView, defined on first use: Markdown parsing is not needed before the first answer, and
    importing it costs a noticeable part of the start-up (see bench/tui.py)."""
    from textual.widgets import Markdown

    class AnswerView(Markdown):
        """The final answer, as Markdown with highlighted code.

        The Markdown source is neutralised before parsing, and links never open on
        a click: the app asks first, showing the real address (`LinkClicked`).
        """

        def __init__(self, text: str) -> None:
            super().__init__(safe_text.block(text), classes="answer", open_links=False)
            self.original = text  # what the model wrote, before neutralising

    return AnswerView


def __getattr__(name: str):
    if name == "AnswerView":
        globals()["AnswerView"] = cls = _answer_view_class()
        return cls
    raise AttributeError(name)
