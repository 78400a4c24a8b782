"""Pilot tests of the screens: the no-model screen and /help at 80×24, approvals of hostile arguments."""

from __future__ import annotations

import re

from gptoss_agent.agent.model import discovery as models
from gptoss_agent.agent.frontends.tui.app import GptossApp, ModelMissing
from gptoss_agent.agent.frontends.tui.screens import COMMANDS, KEYS_HELP, ApprovalScreen, HelpScreen, NoModelScreen
from gptoss_agent.agent.frontends.tui.widgets import AnswerView
from tests.fixtures.repos import call, final
from tests.tui.conftest import until_answerable, wait_for
from tests.tui.test_app import asynctest, screen_text, send

# What `models.search().describe()` prints on a machine without the model: two lines per place.
PLACES = "\n".join(f"  {label:<22} {path}\n  {'':<22} → {note}" for label, path, note in [
    ("--model", "(not set)", "nothing"), ("GPTOSS_AGENT_MODEL", "(not set)", "nothing"),
    ("config: model", "(not set)", "nothing"),
    ("gptoss-agent models", "~/.local/share/gptoss-agent/models", "folder absent"),
    ("Hugging Face cache", "~/.cache/huggingface/hub", "folder absent"),
    ("LM Studio", "~/.lmstudio/models", "folder absent"),
    ("Ollama", "~/.ollama/models", "no gpt-oss:20b manifest")])


@asynctest
async def test_at_80x24_the_no_model_screen_shows_the_command_the_field_and_what_was_searched(repo):
    asked = []

    def connect(model, progress, sink, cancel_load=None):
        asked.append(model)
        raise ModelMissing(PLACES, models.PULL_COMMAND)

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, NoModelScreen))
        await pilot.pause(0.3)
        rows = screen_text(app).split("\n")
        assert any(models.PULL_COMMAND in row for row in rows)  # whole, on one row: it can be copied
        field = app.screen.query_one("#model-path")
        assert field.region.bottom <= 24 and field.region.height == 3 and app.screen.focused is field
        assert any("Searched" in row for row in rows) and any("--model" in row for row in rows)
        assert not any("Ollama" in row for row in rows)  # the rest of the list is below, and says so
        assert any("PgUp/PgDn for more" in row for row in rows)
        await pilot.press("pagedown")
        await pilot.pause(0.2)
        assert any("no gpt-oss:20b manifest" in row for row in screen_text(app).split("\n"))
        assert any(models.PULL_COMMAND in row for row in screen_text(app).split("\n"))
        await pilot.press(*"/models/gpt-oss-20b.gguf", "enter")  # the field still takes the path
        await wait_for(pilot, lambda: len(asked) == 2)
        assert asked == [None, "/models/gpt-oss-20b.gguf"]


@asynctest
async def test_help_has_one_unwrapped_line_per_key_and_command_at_80_columns(make_app):
    app = make_app([final("unused")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.2)
        body = app.screen.query_one("#help-body Static")
        lines = KEYS_HELP.rstrip("\n").split("\n") + [""] + [f"{n:<12} {d}" for n, d in COMMANDS.items()]
        assert body.size.height == len(lines)  # not one line wrapped
        rows = screen_text(app).split("\n")
        for line in lines[:8]:  # those on screen before any scrolling, each on its own row
            assert line.strip() == "" or any(line.rstrip() in row for row in rows), line


@asynctest
async def test_control_and_bidi_characters_in_tool_arguments_are_shown_marked_and_counted(make_app):
    message = "Fix add\x1b]52;c;ZWNobyBwd25lZA==\x07 \u202eevil\u202c done"
    app = make_app([call("functions.git_commit", {"message": message}), final("ok")])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "commit it")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen) and app.screen.query("#approval-body"))
        await pilot.pause(0.2)
        body = app.screen.query_one("#approval-body")
        shown = body.content  # the Rich Text the screen draws
        plain = shown.plain
        assert "Fix add\\x1b]52;c;ZWNobyBwd25lZA==\\x07 <U+202E>evil<U+202C> done" in plain
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", plain.replace("\n", ""))
        assert "\\u001b" not in plain  # JSON's way, which would pass for plain text
        marked = {plain[span.start:span.end] for span in shown.spans if "reverse" in str(span.style)}
        assert {"\\x1b", "\\x07", "<U+202E>", "<U+202C>"} <= marked
        assert "4 control/invisible" in str(app.screen.query_one("#approval-warning").render())
        assert "\x1b]52" not in screen_text(app)
        await until_answerable(pilot)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.query(AnswerView))


@asynctest
async def test_sessions_name_an_interactive_session_by_its_first_message_escaped_on_one_line(make_app, repo):
    import io

    from gptoss_agent.agent.frontends.headless import run_sessions
    from tests.tui.test_app import transcript_text

    first = "fix the add\x1b]0;pwned\x07 function\n   in calc.py"
    app = make_app([final("Done."), final("Again.")])
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, first)
        await wait_for(pilot, lambda: app.query(AnswerView) and not app._busy)
        await send(pilot, "a second message")
        await wait_for(pilot, lambda: len(app.query(AnswerView)) == 2 and not app._busy)
        await send(pilot, "/sessions")
        await pilot.pause(0.3)
        own = app.runtime.session.id
        row = next(line for line in transcript_text(app).split("\n") if own in line)
    shown = "fix the add\\x1b]0;pwned\\x07 function in calc.py"
    assert row.endswith(shown)  # not the header's "tui", nor the second message
    out = io.StringIO()
    run_sessions(str(repo), out=out)
    listed = next(line for line in out.getvalue().split("\n") if own in line)
    assert listed.endswith(shown) and "\x1b" not in out.getvalue()
