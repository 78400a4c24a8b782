"""The TUI's widgets: transcript entries, tool cards, the plan panel, the status bar, the prompt."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Collapsible, Markdown, Static, TextArea

from agent.events import ToolCalled, ToolFinished, key_argument

# Single-width symbols: emoji are double-width in most terminals and break alignment.
ICONS = {"repo_browser.open_file": "≡", "repo_browser.search": "⌕", "repo_browser.apply_patch": "✎",
         "repo_browser.print_tree": "⊢", "repo_browser.list_dir": "⊢", "container.exec": "$",
         "functions.run_tests": "⚑", "functions.git_commit": "●", "functions.update_plan": "☰",
         "functions.find_symbol": "⌖"}
PLAN_MARKS = {"pending": "○", "in_progress": "◐", "completed": "●"}


class UserEntry(Static):
    """What the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(text), classes="user")


class StreamingText(Static):
    """Text arriving token by token, before its message is complete (updated in batches)."""

    def __init__(self, channel: str | None) -> None:
        super().__init__("", classes=f"streaming {channel or 'none'}")
        self.channel = channel
        self.text = ""

    def extend(self, text: str) -> None:
        self.text += text
        self.update(Text(self.text))


class ReasoningBlock(Collapsible):
    """The model's reasoning: dimmed, collapsed once the answer arrives, reopenable."""

    def __init__(self, text: str, *, collapsed: bool = True) -> None:
        super().__init__(Static(Text(text), classes="reasoning-text"), title="Reasoning", collapsed=collapsed,
                         classes="reasoning")


class AnswerView(Markdown):
    """The final answer, as Markdown with highlighted code."""

    def __init__(self, text: str) -> None:
        super().__init__(text, classes="answer")


class ToolCard(Collapsible):
    """One tool call: icon, tool, key argument, status; expands to its output (diffs in colour)."""

    def __init__(self, call: ToolCalled, started: float = 0.0) -> None:
        self.call = call
        self.started = started
        self.body = Static("…", classes="tool-output")
        super().__init__(self.body, title=self._heading("running"), collapsed=True, classes="tool running")

    def _heading(self, status: str) -> str:
        icon = ICONS.get(self.call.name, "⚙")
        return f"{icon} {self.call.name}  {key_argument(self.call.arguments)}  {status}"

    def finish(self, result: ToolFinished, seconds: float | None = None) -> None:
        self.remove_class("running")
        self.add_class("ok" if result.ok else "failed")
        status = "✓" if result.ok else "✗"
        self.title = self._heading(f"{status} {seconds:.1f}s" if seconds is not None else status)
        if result.display:
            self.body.update(Syntax(result.display, "diff", theme="ansi_dark", word_wrap=True))
            self.collapsed = False
        else:
            self.body.update(Text(result.output))


class PlanPanel(Static):
    """The current plan, each step with its status."""

    def show(self, steps: list[dict]) -> None:
        if not steps:
            self.update(Text("No plan yet.", style="dim"))
            return
        text = Text()
        for step in steps:
            status = step.get("status", "pending")
            text.append(f"{PLAN_MARKS.get(status, '○')} ", style="bold")
            text.append(step.get("step", "") + "\n", style="dim" if status == "completed" else "")
        self.update(text)


class StatusBar(Static):
    """Model, backend, effort, context, cache reuse, speed, git state, approval, sandbox."""

    def show(self, fields: dict[str, str], *, warning: str | None = None) -> None:
        """Compact enough for 80 columns: values, with a short dim label where the value alone is unclear."""
        text = Text()
        for index, (name, value) in enumerate(fields.items()):
            if index:
                text.append(" · ", style="dim")
            if name in ("ctx", "cache"):
                text.append(f"{name} ", style="dim")
            text.append(value)
        if warning:
            text.append(f"  {warning}", style="bold red")
        self.update(text)


class PromptInput(TextArea):
    """Multi-line input: Enter sends, Shift+Enter or Ctrl+J adds a line, Up/Down walk the history."""

    BINDINGS = [
        Binding("enter", "send", "Send", priority=True),
        Binding("tab", "complete", "Complete", show=False, priority=True),
        Binding("shift+enter,ctrl+j", "newline", "New line", show=False, priority=True),
    ]

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

    def _on_key(self, event) -> None:
        if event.key in ("up", "down") and "\n" not in self.text and self.sent:
            event.prevent_default()
            event.stop()
            step = -1 if event.key == "up" else 1
            start = len(self.sent) if self._cursor is None else self._cursor
            self._cursor = min(max(start + step, 0), len(self.sent))
            self.text = self.sent[self._cursor] if self._cursor < len(self.sent) else ""
            self.move_cursor(self.document.end)
