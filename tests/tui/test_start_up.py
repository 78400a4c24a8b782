"""Pilot tests: what a person types while the model loads, and what they see when it cannot start."""

from __future__ import annotations

import threading

from gptoss_agent.agent.frontends.tui.app import GptossApp
from gptoss_agent.agent.frontends.tui.widgets import AnswerView, PromptInput
from tests.fixtures.repos import FIX_PATCH, call, final
from tests.tui.conftest import wait_for
from tests.tui.test_app import asynctest, screen_text, send, transcript_text, user_messages


def transcript_order(app, *needles) -> list[int]:
    """Where in the transcript (which entry, top to bottom) each needle first shows."""
    entries = []
    for child in app.query_one("#transcript").children:
        text = getattr(child, "_markdown", None) or str(child.render())
        entries.append(text)
    return [next(i for i, text in enumerate(entries) if needle in text) for needle in needles]


@asynctest
async def test_a_model_that_cannot_start_says_so_and_keeps_every_queued_message(repo):
    release = threading.Event()

    def connect(model, progress, sink, cancel_load=None):
        progress(0.3)
        release.wait(30)
        raise RuntimeError("llama.cpp: failed to load model from gpt-oss-20b.gguf")

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "fix the failing test")
        await send(pilot, "/undo")  # needs the model: waits in the queue with the messages
        await send(pilot, "then explain it")
        assert app.outbox == ["fix the failing test", "/undo", "then explain it"]
        release.set()
        await wait_for(pilot, lambda: app.start_error is not None)
        await pilot.pause(0.2)
        status = str(app.query_one("#status").render())
        assert "could not start" in status and "loading" not in status
        assert not app.query_one("#loading").display
        assert "Could not start: llama.cpp: failed to load model from gpt-oss-20b.gguf" in transcript_text(app)
        outbox = str(app.query_one("#outbox").render())
        assert "not sent" in outbox and "fix the failing test" in outbox and "then explain it" in outbox
        shown = " ".join(screen_text(app).split())  # on screen at 80×24 (rows joined), not only in the widget
        assert "not sent" in shown and "fix the failing test · /undo · then explain it" in shown
        await pilot.press("escape")  # the last one comes back to edit (or drop)
        prompt = app.query_one(PromptInput)
        assert prompt.text == "then explain it" and app.outbox == ["fix the failing test", "/undo"]
        prompt.text = ""
        await send(pilot, "one more")  # typed after the failure: kept as well, never sent
        await send(pilot, "/compact")  # a command that needs the model says so instead of waiting forever
        await pilot.pause(0.2)
        assert app.outbox == ["fix the failing test", "/undo", "one more"]
        assert "/compact needs the model, which could not start" in transcript_text(app)


@asynctest
async def test_slash_commands_typed_while_the_model_loads_run_now_or_wait_their_turn(make_app, repo):
    loading = threading.Event()
    (repo / "notes.txt").write_text("a change of the user's\n")
    app = make_app([final("Hello there.")], loading=loading)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        assert app.runtime is None
        await send(pilot, "/plan")  # needs no model: runs at once
        await send(pilot, "/diff")
        await wait_for(pilot, lambda: any("+a change of the user's" in getattr(diff.content, "code", "")
                                          for diff in app.query("#transcript .diff")))
        await send(pilot, "hello")
        await send(pilot, "/reasoning high")  # need the model: wait, in order, behind the message
        await send(pilot, "/model")
        assert app.outbox == ["hello", "/reasoning high", "/model"]
        assert "No plan yet." in transcript_text(app)
        assert "still loading" not in transcript_text(app) and "Unknown command" not in transcript_text(app)
        loading.set()
        await wait_for(pilot, lambda: app.query(AnswerView) and "Reasoning effort: high." in transcript_text(app)
                       and "replay (replay)" in transcript_text(app).split("Reasoning effort: high.")[-1])
        answer, effort = transcript_order(app, "Hello there.", "Reasoning effort: high.")
        assert answer < effort  # the command ran after the message queued before it
        assert app.runtime.settings.reasoning == "high" and app.outbox == []
        assert user_messages(app) == ["hello"]


@asynctest
async def test_undo_typed_while_the_agent_works_runs_when_the_turn_ends(make_app, repo):
    held = threading.Event()
    original = (repo / "calc.py").read_text()
    app = make_app([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed."), final("Explained.")],
                   approval="full-auto", held=held)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await send(pilot, "fix add")
        await wait_for(pilot, lambda: app._busy)
        await send(pilot, "/undo")  # would race the agent's edit: it waits, visibly
        await send(pilot, "now explain the bug")  # and this waits for the /undo before it
        assert app.outbox == ["/undo", "now explain the bug"] and "/undo" in str(app.query_one("#outbox").render())
        held.set()
        await wait_for(pilot, lambda: len(app.query(AnswerView)) == 2 and not app._busy)
        assert (repo / "calc.py").read_text() == original
        order = transcript_order(app, "Fixed.", "restored", "now explain the bug", "Explained.")
        assert order == sorted(order) and app.outbox == []


@asynctest
async def test_type_ahead_is_read_as_textual_reads_keys_ctrl_j_is_a_new_line_not_enter(make_app):
    base = make_app([final("One answer.")])
    typed = GptossApp(base._connect, timings=False, animate=False, type_ahead="first line\nsecond line\r")
    async with typed.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: typed.query(AnswerView))
        assert user_messages(typed) == ["first line\nsecond line"]  # one message: LF (Ctrl+J) is a new line

    drafted = GptossApp(base._connect, timings=False, animate=False, type_ahead="draft\x1b[D\x1b[DX\n")
    async with drafted.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: drafted.runtime is not None)
        await pilot.pause(0.3)
        # Left, Left, then X and a new line at the cursor, as after start-up; nothing was sent.
        assert drafted.query_one(PromptInput).text == "draX\nft"
        assert drafted.outbox == [] and not drafted._busy and not drafted.query(AnswerView)


@asynctest
async def test_diff_where_git_fails_says_so_and_the_app_goes_on(tmp_path):
    loading = threading.Event()

    def connect(model, progress, sink, cancel_load=None):
        loading.wait(30)
        raise RuntimeError("test over")

    app = GptossApp(connect, timings=False, animate=False, repo=tmp_path)  # not a git repository
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await send(pilot, "/diff")
            await wait_for(pilot, lambda: "/diff: " in transcript_text(app))
            assert app.is_running
    finally:
        loading.set()


def test_what_runs_before_the_first_frame_loads_no_model_code_and_no_repository_tools():
    """`gptoss-agent` imports these and checks the repository before the app draws; the model's code
    (llama.cpp, Harmony, pydantic), the tools, git scans and tree-sitter grammars wait for the loading worker."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys\n"
            "from gptoss_agent.agent.frontends import headless\n"
            "from gptoss_agent.agent.model import discovery\n"
            "from gptoss_agent.agent.config import load_settings\n"
            "from gptoss_agent.agent.frontends.tui.app import GptossApp\n"
            "load_settings(headless.workspace_root('.'))\n"
            "heavy = ('llama_cpp', 'openai_harmony', 'pydantic', 'gptoss_agent.agent.loop',\n"
            "         'gptoss_agent.agent.model.harmony', 'gptoss_agent.tools.git', 'gptoss_agent.tools.registry',\n"
            "         'gptoss_agent.tools.sandbox', 'gptoss_agent.tools.repomap', 'tree_sitter_')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
