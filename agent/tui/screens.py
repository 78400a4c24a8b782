"""Modal and full screens: approvals, the no-model screen, help."""

from __future__ import annotations

from dataclasses import dataclass

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static

KEYS_HELP = """\
Enter            send              Shift+Enter / Ctrl+J   new line
Up / Down        input history     @path                  attach a file
Esc / Ctrl+C     cancel the step   Ctrl+C twice           quit
Ctrl+P           command palette   F1                     this help

/help  /clear  /compact  /undo  /diff  /commit [message]  /test  /plan
/reasoning low|medium|high   /approval read-only|ask|auto-edit|full-auto
/model  /sessions  /resume  /quit
"""


@dataclass(frozen=True)
class ApprovalAnswer:
    allow: bool
    always: bool = False
    reason: str = ""


class ApprovalScreen(ModalScreen[ApprovalAnswer]):
    """Asked before a mutating tool runs: the diff or the command, then yes / no / always / no-and-why."""

    BINDINGS = [Binding("y", "answer('yes')", "yes"), Binding("n", "answer('no')", "no"),
                Binding("a", "answer('always')", "always"), Binding("t", "answer('tell')", "no, and tell why"),
                Binding("escape", "answer('no')", "no", show=False)]

    def __init__(self, tool: str, preview: str, *, is_diff: bool) -> None:
        super().__init__()
        self.tool, self.preview, self.is_diff = tool, preview, is_diff

    def compose(self) -> ComposeResult:
        with Vertical(id="approval"):
            yield Label(f"Allow {self.tool}?", id="approval-title")
            body = Syntax(self.preview, "diff", theme="ansi_dark", word_wrap=True) if self.is_diff else Text(self.preview)
            yield VerticalScroll(Static(body), id="approval-preview")
            yield Input(placeholder="why not? (the model is told)", id="approval-reason")
            with Horizontal(id="approval-buttons"):
                yield Button("Yes (y)", id="yes", variant="success")
                yield Button("No (n)", id="no", variant="error")
                yield Button("Always this session (a)", id="always")
                yield Button("No, and tell why (t)", id="tell")

    def on_mount(self) -> None:
        self.query_one("#approval-reason", Input).display = False
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id or "no")

    def action_answer(self, choice: str) -> None:
        reason_box = self.query_one("#approval-reason", Input)
        if choice == "tell" and not reason_box.display:
            reason_box.display = True
            reason_box.focus()
            return
        if choice == "yes":
            self.dismiss(ApprovalAnswer(True))
        elif choice == "always":
            self.dismiss(ApprovalAnswer(True, always=True))
        elif choice == "tell":
            self.dismiss(ApprovalAnswer(False, reason=reason_box.value.strip()))
        else:
            self.dismiss(ApprovalAnswer(False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(ApprovalAnswer(False, reason=event.value.strip()))


class NoModelScreen(Screen[str]):
    """No GGUF found: where we looked, a field for a path, and the one command that fetches it."""

    def __init__(self, places: str, fetch: str) -> None:
        super().__init__()
        self.places, self.fetch = places, fetch

    def compose(self) -> ComposeResult:
        with Vertical(id="no-model"):
            yield Label("No gpt-oss model found", id="no-model-title")
            yield Static(Text("Looked in:\n" + self.places), id="no-model-places")
            yield Static(Text(f"Fetch it (12 GB, the only command that uses the network):\n    {self.fetch}"))
            yield Label("Or paste the path to a GGUF file and press Enter:")
            yield Input(placeholder="/path/to/gpt-oss-20b-mxfp4.gguf", id="model-path")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "close", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("gptoss-agent — keys and commands", id="help-title")
            yield Static(Text(KEYS_HELP))

    def action_close(self) -> None:
        self.dismiss(None)
