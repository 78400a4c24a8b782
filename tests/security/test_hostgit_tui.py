"""The TUI on a hostile repository: start-up, the git scan, /diff, /commit and /undo run nothing it controls."""

from __future__ import annotations

import asyncio
import json
import os

from tests.fixtures.repos import FIX_PATCH, call, final
from tests.security.hostgit_fixtures import git, markers
from tests.security.test_hostgit_startup import hostile_repo


async def _wait_for(pilot, predicate, timeout=30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await pilot.pause(0.05)
        if predicate():
            return
    raise AssertionError("condition not reached in time")


async def _command(pilot, text):
    from gptoss_agent.agent.frontends.tui.widgets import PromptInput

    prompt = pilot.app.query_one(PromptInput)
    prompt.text = text
    prompt.focus()
    await pilot.press("enter")
    await pilot.pause(0.3)


def test_tui_session_on_a_hostile_repository_runs_nothing_it_controls(tmp_path, vocab_dir):
    from gptoss_agent.agent.frontends.headless import RunOptions, build_runtime, prepare_workspace
    from gptoss_agent.agent.frontends.tui.app import GptossApp
    from gptoss_agent.agent.frontends.tui.widgets import AnswerView

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    repo = hostile_repo(tmp_path / "project", evidence)
    start = git(repo, "rev-parse", "HEAD").strip()
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed.")]))

    def connect(model_override, progress, sink, cancel_load=None):
        options = RunOptions(cwd=str(repo), backend=f"replay:{replay}")
        progress(1.0)
        return build_runtime(options, task="tui", sink=sink, workspace=prepare_workspace(options))

    async def session():
        app = GptossApp(connect, approval="full-auto")
        async with app.run_test(size=(100, 30)) as pilot:
            await _wait_for(pilot, lambda: app.runtime is not None)
            await _command(pilot, "fix add")
            await _wait_for(pilot, lambda: app.query(AnswerView))
            await _command(pilot, "/diff")
            await _command(pilot, "/commit Fix add")
            await _wait_for(pilot, lambda: git(repo, "rev-parse", "HEAD").strip() != start)
            await _command(pilot, "/undo")
            await _wait_for(pilot, lambda: git(repo, "rev-parse", "HEAD").strip() == start)

    os.environ.pop("GPTOSS_AGENT_REPLAY_TOKEN_DELAY", None)
    asyncio.run(session())
    assert "a - b" in (repo / "calc.py").read_text()
    assert markers(evidence) == []
