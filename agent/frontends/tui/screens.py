"""Modal and full screens: approvals, links, the repository-settings trust prompt, the no-model screen, help."""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static

from gptoss_agent.agent import safe_text
from gptoss_agent.agent.approvals import APPROVAL_MODES
from gptoss_agent.agent.frontends.tui.widgets import safe, safe_diff
from gptoss_agent.agent.choices import REASONING_EFFORTS


@dataclass(frozen=True)
class SlashCommand:
    """One slash command, declared once: /help's line, the command palette's entries, when it may run.

    `needs_model`: it needs the loaded model (or the agent's state that comes with it); typed while the
    model loads, it waits in the outbox and runs in its turn (the others run at once). `works_without_model`:
    of those, it still does its job when the model could not start. `waits_for_turn`: it changes the work
    tree or the conversation, so typed while the agent works it waits for the turn to end (it would race
    the agent's edits). `palette`: the palette's title and description ("": no entry of ours; Textual's own
    covers it); with `values`, one palette entry per value.
    """

    name: str
    help: str
    palette: tuple[str, str] = ("", "")
    values: tuple[str, ...] = ()
    needs_model: bool = False
    works_without_model: bool = False
    waits_for_turn: bool = False


SLASH_COMMANDS = (
    SlashCommand("/help", "keys and commands (this screen)", ("Commands", "Every slash command, one line each")),
    SlashCommand("/clear", "start a new conversation", ("Clear", "Start a new conversation"),
                 needs_model=True, works_without_model=True, waits_for_turn=True),
    SlashCommand("/compact", "summarise the conversation to free context",
                 ("Compact", "Summarise the conversation to free context"), needs_model=True, waits_for_turn=True),
    SlashCommand("/undo", "revert the agent's last edits or commit", ("Undo", "Revert the agent's last edits or commit"),
                 needs_model=True, works_without_model=True, waits_for_turn=True),
    SlashCommand("/diff", "show the uncommitted changes", ("Diff", "Show uncommitted changes")),
    SlashCommand("/commit", "commit the agent's changes [message]", ("Commit", "Commit the agent's changes"),
                 needs_model=True, waits_for_turn=True),
    SlashCommand("/test", "run the test suite", ("Test", "Run the test suite"), needs_model=True, waits_for_turn=True),
    SlashCommand("/plan", "show the current plan", ("Plan", "Show the current plan")),
    SlashCommand("/reasoning", "thinking effort: " + " | ".join(REASONING_EFFORTS),
                 ("Reasoning", "Set reasoning effort to"), REASONING_EFFORTS, needs_model=True, waits_for_turn=True),
    SlashCommand("/approval", "ask first? " + "|".join(APPROVAL_MODES), ("Approval", "Set the approval mode to"),
                 APPROVAL_MODES),
    SlashCommand("/model", "show the model [PATH: load one if none started]", ("Model", "Show the loaded model"),
                 needs_model=True, works_without_model=True),
    SlashCommand("/sessions", "list this repository's recent sessions", ("Sessions", "List recent sessions")),
    SlashCommand("/resume", "continue an earlier session here [id]",
                 ("Resume", "Continue the session before this one"), needs_model=True, waits_for_turn=True),
    SlashCommand("/quit", "leave gptoss-agent"),  # the palette has Textual's own Quit
)
# Derived from SLASH_COMMANDS: the lines /help shows (and the completion list), and when each may run.
COMMANDS = {command.name: command.help for command in SLASH_COMMANDS}
NEEDS_MODEL = frozenset(command.name for command in SLASH_COMMANDS if command.needs_model)
WORKS_WITHOUT_MODEL = frozenset(command.name for command in SLASH_COMMANDS if command.works_without_model)
WAITS_FOR_TURN = frozenset(command.name for command in SLASH_COMMANDS if command.waits_for_turn)


def palette_entries() -> list[tuple[str, str, str]]:
    """The command palette's entries (title, description, the line it runs), from SLASH_COMMANDS."""
    entries = []
    for command in SLASH_COMMANDS:
        title, description = command.palette
        if not title:
            continue
        if command.values:
            entries += [(f"{title}: {value}", f"{description} {value}", f"{command.name} {value}")
                        for value in command.values]
        else:
            entries.append((title, description, command.name))
    return entries

# One key or command per line, each within the 64 columns the help box has inside an 80-column terminal.
KEYS_HELP = """\
Enter                 send
Shift+Enter, Ctrl+J   new line
Up / Down             earlier messages
@path, then Tab       attach a file
Esc                   interrupt (empty input); edit, drop queued
PgUp / PgDn           scroll the transcript
Ctrl+P                command palette
F1                    this help
Ctrl+C                clear the draft; twice on empty: quit
"""
HELP_NAME_WIDTH = 12

# A modal takes no key or click from its first second on screen, and no answering key that comes less
# than TYPING_GAP_SECONDS after the previous keystroke: a person typing on (say 120 ms a key) as the
# question appears is writing a message, not answering it. Measured: a typist's keys come < 0.3 s apart.
APPROVAL_GUARD_SECONDS = 1.0
TYPING_GAP_SECONDS = 0.5
# Keys that only move through what is shown: taken at any time, they cannot answer anything.
VIEWING_KEYS = frozenset({"up", "down", "pageup", "pagedown", "home", "end", "left", "right"})
# Rows of the approval box around the preview: border 2, title and its margin 2, the note 1, buttons 3
# (the warning line and the reason box add theirs).
APPROVAL_CHROME_ROWS = 8
# Rows of the no-model box around its list of places: border 2, padding 2, title and its margin 2, the
# command's two lines and the blank after them, the field's label and the field (3), the list's label.
# the line of keys (quit, --backend) under the field; one more when typed messages are kept.
NO_MODEL_CHROME_ROWS = 15
NO_MODEL_TITLE_CHARS = 64  # one line inside the box at 80 columns


@dataclass(frozen=True)
class ApprovalAnswer:
    allow: bool
    always: bool = False
    reason: str = ""


def command_preview(arguments: object) -> str | None:
    """The exact command a container.exec call will run, quoted as a shell would need it, or None.

    Like every preview here, the text keeps the model's characters as they are: the screen shows it
    through `agent.safe_text`, which turns each control, bidi or invisible character into a marked,
    counted escape.
    """
    if not isinstance(arguments, dict) or "cmd" not in arguments:
        return None
    cmd = arguments["cmd"]
    argv = [str(part) for part in cmd] if isinstance(cmd, list) else [str(cmd)]
    text = shlex.join(argv) if isinstance(cmd, list) else str(cmd)
    extras = {k: v for k, v in arguments.items() if k != "cmd"}
    suffix = "".join(f"\n  ({_as_json(key)}: {_as_json(value)})" for key, value in extras.items())
    return "$ " + text + suffix


def arguments_preview(arguments: object) -> str:
    """Any other call's arguments, in full, laid out as indented JSON (see `_as_json`)."""
    if isinstance(arguments, str):
        return arguments
    return _as_json(arguments, indent=2)


def _as_json(value: object, indent: int | None = None) -> str:
    """JSON layout for a person, with every string's characters kept as the model wrote them.

    `json.dumps` writes an ESC as the six plain letters `\\u001b` (and a CR as
    `\\r`, a backspace as `\\b`): harmless-looking text that no warning counts. Here
    those escapes are turned back into the characters, so the one place that shows
    untrusted text (`agent.safe_text`, via `safe()`) escapes, marks and counts each.
    Newline and tab stay written JSON-style; non-ASCII (bidi, zero-width) was never escaped.
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    return _JSON_ESCAPE.sub(_unescape_control, text)


# One backslash escape at a time, left to right: `\\u001b` (an escaped backslash, then letters) stays text.
_JSON_ESCAPE = re.compile(r"\\(u00[01][0-9a-fA-F]|.)")


def _unescape_control(match: re.Match) -> str:
    code = match.group(1)
    if code.startswith("u00"):
        return chr(int(code[1:], 16))
    return {"r": "\r", "b": "\b", "f": "\f"}.get(code, match.group(0))


class GuardedModal(ModalScreen):
    """A modal that only answers to deliberate input: after it has been on screen a while, and not mid-typing.

    The app asks `accepts(event, since_previous_key)` before dispatching each key
    or click to it (see `GptossApp.on_event`), so type-ahead and a sentence typed
    on as the question appears never reach the choice; the app gives refused
    printable keys back to the prompt.
    """

    GUARD_SECONDS = APPROVAL_GUARD_SECONDS

    def __init__(self) -> None:
        super().__init__()
        self.armed_at = time.monotonic() + self.GUARD_SECONDS

    def on_mount(self) -> None:
        self.armed_at = time.monotonic() + self.GUARD_SECONDS

    def belongs_to_prompt(self, event: events.Key) -> bool:
        """Whether this key was typed for the prompt behind the modal (the app gives it back there)."""
        return False

    def accepts(self, event: events.Event, since_previous_key: float = float("inf")) -> bool:
        if isinstance(event, events.Key) and (event.key in VIEWING_KEYS or isinstance(self.focused, Input)):
            return True  # scrolling, or writing into a field the person opened (the reason for a refusal)
        if getattr(event, "time", time.monotonic()) < self.armed_at:
            return False
        return not (isinstance(event, events.Key) and since_previous_key < TYPING_GAP_SECONDS)


class ApprovalScreen(GuardedModal):
    """Asked before a mutating tool runs: the exact diff or command, then yes / no / always / no-and-why.

    What is shown is what will run: the argv quoted with shlex, every control,
    bidi and zero-width character shown as an escape (with a count). The whole
    text sits in a scrolling preview sized so the buttons always fit on screen;
    until it has been scrolled to its end, a line says how much is still below
    and Yes is not available. No single letter answers (a person typing would
    produce it): Ctrl+Y, Ctrl+N / Esc, Ctrl+T, or Enter on a button; Always
    (Ctrl+A) asks to be confirmed with a second Ctrl+A. Letters typed here go to
    the prompt.
    """

    BINDINGS = [Binding("ctrl+y", "answer('yes')", "yes"), Binding("ctrl+n,escape", "answer('no')", "no"),
                Binding("ctrl+a", "answer('always')", "always"), Binding("ctrl+t", "answer('tell')", "no, tell why"),
                Binding("end", "to_end", "end", show=False)]

    def __init__(self, tool: str, preview: str, *, is_diff: bool) -> None:
        super().__init__()
        self.tool, self.preview, self.is_diff = tool, preview, is_diff
        self.lines = preview.split("\n")
        self.seen_all = False
        self.always_asked = False

    def compose(self) -> ComposeResult:
        with Vertical(id="approval"):
            yield Label(safe(f"Allow {self.tool}?", multiline=False), id="approval-title")
            hidden = safe_text.hidden_count(self.preview, strict=not self.is_diff)
            if hidden:
                yield Label(Text(f"⚠ {hidden} control/invisible character(s), shown as escapes (reversed)",
                                 style="bold yellow"), id="approval-warning")
            yield VerticalScroll(Static(self._body(), id="approval-body"), id="approval-preview")
            yield Label("", id="approval-more")
            yield Input(placeholder="why not? (the model is told)", id="approval-reason")
            with Horizontal(id="approval-buttons"):
                yield Button("Yes ^Y", id="yes", variant="success", disabled=True)
                yield Button("No ^N", id="no", variant="error")
                yield Button("Always ^A", id="always")
                yield Button("Tell why ^T", id="tell")

    def _body(self):
        shown = "\n".join(self.lines)
        return safe_diff(shown) if self.is_diff else safe(shown, strict=True)

    def on_mount(self) -> None:  # (GuardedModal.on_mount runs too: Textual calls each class's handler)
        self.query_one("#approval-reason", Input).display = False
        self._fit()
        # The focus is on the preview, not on a button: Space and Enter must not answer.
        preview = self.query_one("#approval-preview", VerticalScroll)
        preview.focus()
        self.watch(preview, "scroll_y", lambda _: self._update_seen(), init=False)
        self.call_after_refresh(self._update_seen)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()
        self.call_after_refresh(self._update_seen)

    def _fit(self) -> None:
        """The preview gets the rows the rest of the box leaves, so the buttons are always on screen."""
        preview = self.query_one("#approval-preview", VerticalScroll)
        chrome = APPROVAL_CHROME_ROWS + len(self.query("#approval-warning"))
        chrome += 3 if self.query_one("#approval-reason", Input).display else 0
        preview.styles.max_height = max(3, self.size.height - chrome)

    def _update_seen(self) -> None:
        """Count the rows (wrapped, as drawn) still below the view; Yes comes once there are none."""
        preview = self.query_one("#approval-preview", VerticalScroll)
        below = max(0, round(preview.max_scroll_y - preview.scroll_y))
        if below == 0 and preview.size.height:
            self.seen_all = True
        self.query_one("#yes", Button).disabled = not self.seen_all
        more = self.query_one("#approval-more", Label)
        if below:
            text = f"↓ {below:,} more line(s) below (↓ PgDn End)"
            if not self.seen_all:
                text += "; Yes waits for the end"
            more.update(Text(text, style="bold"))
        elif self.always_asked:
            more.update(Text(f"Always allow {self.tool}? Ctrl+A again confirms", style="bold"))
        else:
            more.update(Text("^Y yes · ^N/Esc no · ^A always · ^T why · or Tab, Enter",
                             style="dim"))

    def action_to_end(self) -> None:
        self.query_one("#approval-preview", VerticalScroll).scroll_end(animate=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id or "no")

    def action_answer(self, choice: str) -> None:
        reason_box = self.query_one("#approval-reason", Input)
        if choice == "tell" and not reason_box.display:
            reason_box.display = True
            self._fit()
            reason_box.focus()
            return
        if choice == "yes":
            if self.seen_all:
                self.dismiss(ApprovalAnswer(True))
            else:
                self.notify("Read to the end of the preview first (End).", severity="warning")
        elif choice == "always":
            if not self.seen_all:
                self.notify("Read to the end of the preview first (End).", severity="warning")
            elif self.always_asked:
                self.dismiss(ApprovalAnswer(True, always=True))
            else:  # a second, separate deliberate action confirms it
                self.always_asked = True
                self.query_one("#always", Button).label = "Confirm always ^A"
                self._update_seen()
        elif choice == "tell":
            self.dismiss(ApprovalAnswer(False, reason=reason_box.value.strip()))
        else:
            self.dismiss(ApprovalAnswer(False))

    def belongs_to_prompt(self, event: events.Key) -> bool:
        """A letter typed here belongs to the prompt (unless the reason box has the focus), and so does
        Enter unless it presses the focused button. Space too: on a focused button it would answer."""
        if isinstance(self.focused, Input):
            return False
        if event.key == "enter":
            return not isinstance(self.focused, Button)
        return bool(event.is_printable and event.character)

    def on_key(self, event: events.Key) -> None:
        """An Enter that came right after Tab reaches the modal (see `GptossApp.on_event`): a focused button
        took it already; if the Tab did not land on one, it is a new line for the prompt, as any Enter."""
        if event.key == "enter" and not isinstance(self.focused, (Button, Input)):
            event.stop()
            event.prevent_default()
            self.app.return_key_to_prompt(event)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(ApprovalAnswer(False, reason=event.value.strip()))


class LinkScreen(GuardedModal):
    """A link in the model's answer was clicked: show the real address; only `o` opens it."""

    BINDINGS = [Binding("o", "open", "open"), Binding("escape,n,q", "close", "cancel")]

    def __init__(self, href: str) -> None:
        super().__init__()
        self.href = href

    def compose(self) -> ComposeResult:
        with Vertical(id="link"):
            yield Label("Open this link in your browser?", id="link-title")
            yield Static(safe(self.href, strict=True), id="link-url")
            yield Label(Text("o open · Esc cancel", style="dim"))

    def action_open(self) -> None:
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)


class TrustScreen(GuardedModal):
    """The repository's settings file sets user-only keys: show it and ask once (remembered for this content)."""

    BINDINGS = [Binding("T", "answer(True)", "trust (Shift+T)"), Binding("escape,n", "answer(False)", "ignore")]

    def __init__(self, path: str, text: str, message: str) -> None:
        super().__init__()
        self.path, self.text, self.message = path, text, message

    def compose(self) -> ComposeResult:
        with Vertical(id="trust"):
            yield Label(safe(f"Trust the settings in {self.path}?", multiline=False), id="trust-title")
            yield Static(safe(self.message), id="trust-message")
            yield VerticalScroll(Static(safe(self.text, strict=True)), id="trust-preview")
            yield Label(Text("Shift+T trust this exact content (remembered) · n or Esc ignore those keys",
                             style="bold"))

    def action_answer(self, trusted: bool) -> None:
        self.dismiss(trusted)


class NoModelScreen(Screen[str]):
    """No GGUF found: the one command that fetches it, a field for a path, then every place searched.

    The two ways forward come first and always fit on screen (80×24 included);
    the list of places searched takes the rows left below them and scrolls
    (PgUp/PgDn, the mouse) when it needs more.
    """

    BINDINGS = [Binding("pageup", "scroll_places(-1)", show=False), Binding("pagedown", "scroll_places(1)", show=False),
                Binding("escape", "app.quit", "quit", show=False)]

    def __init__(self, places: str, fetch: str, *, refused: str | None = None, queued: list[str] = ()) -> None:
        super().__init__()
        self.places, self.fetch = places, fetch
        self.refused = refused  # "<file>: <why>": the model the user named, and why it was not loaded
        self.queued = list(queued)  # messages typed before this screen came: kept, and said so
        self._answered = False

    def compose(self) -> ComposeResult:
        title = f"Could not load {self.refused}" if self.refused else "No gpt-oss model found"
        with Vertical(id="no-model"):
            shown = safe(title, multiline=False)
            shown.truncate(NO_MODEL_TITLE_CHARS, overflow="ellipsis")
            yield Label(shown, id="no-model-title")
            yield Label("Get gpt-oss-20b (12 GB, the only command that uses the network):")
            yield Static(safe("  " + self.fetch, multiline=False, style="bold"), id="no-model-fetch")
            yield Label("Or paste the path to a GGUF file and press Enter:")
            yield Input(placeholder="/path/to/gpt-oss-20b-mxfp4.gguf", id="model-path")
            yield Label(Text("Esc or Ctrl+C quits · --backend http://HOST:PORT uses a server", style="dim"),
                        id="no-model-keys")
            if self.queued:
                kept = Text("Kept, sent once a model loads: ", style="bold yellow")
                kept.append_text(safe(" · ".join(q.replace("\n", " ") for q in self.queued)[:200], multiline=False))
                yield Label(kept, id="no-model-queued")
            yield Label("Searched:", id="no-model-searched")
            yield VerticalScroll(Static(safe(self.places)), id="no-model-places")

    def on_mount(self) -> None:
        self.query_one("#model-path", Input).focus()
        self._fit()

    def on_key(self, event: events.Key) -> None:
        """A character that reached the screen instead of the path field still lands in the field.

        A key typed while the screen opens is dispatched before the field has focus; the field takes every
        character it is given, so one arriving here was not typed into it. Posted to the field's queue, it is
        handled before any key typed after it."""
        if event.is_printable and event.character:
            field = self.query_one("#model-path", Input)
            field.focus()
            field.post_message(events.Key(event.key, event.character))
            event.stop()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """The places list gets the rows the rest of the box leaves, so the command and the field stay on screen."""
        rows = self.size.height or self.app.size.height
        chrome = NO_MODEL_CHROME_ROWS + (1 if self.queued else 0)
        self.query_one("#no-model-places", VerticalScroll).styles.max_height = max(2, rows - chrome)
        self.call_after_refresh(self._label_places)

    def _label_places(self) -> None:
        scrolls = self.query_one("#no-model-places", VerticalScroll).max_scroll_y > 0
        self.query_one("#no-model-searched", Label).update("Searched (PgUp/PgDn for more):" if scrolls else "Searched:")

    def action_scroll_places(self, direction: int) -> None:
        places = self.query_one("#no-model-places", VerticalScroll)
        places.scroll_page_up() if direction < 0 else places.scroll_page_down()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """The first path given is the answer: a second Enter (or a typed-ahead line) before the
        screen has gone must not dismiss it twice (that popped the last screen: A4 #1)."""
        if self._answered or not event.value.strip():
            return
        self._answered = True
        self.query_one("#model-path", Input).disabled = True
        self.dismiss(event.value.strip())


class HelpScreen(ModalScreen[None]):
    """Keys, then one line per slash command."""

    BINDINGS = [Binding("escape,q,f1", "close", "close")]

    def compose(self) -> ComposeResult:
        commands = "\n".join(f"{name:<{HELP_NAME_WIDTH}} {text}" for name, text in COMMANDS.items())
        with Vertical(id="help"):
            yield Label("gptoss-agent — keys and commands", id="help-title")
            yield VerticalScroll(Static(Text(KEYS_HELP + "\n" + commands)), id="help-body")

    def action_close(self) -> None:
        self.dismiss(None)
