"""The TUI driven by the real loop with the replay backend, on a real temporary repository."""

from __future__ import annotations

import json
import os

import pytest

from gptoss_agent.agent.frontends.headless import RunOptions, build_runtime, prepare_workspace
from gptoss_agent.agent.frontends.tui.app import GptossApp
from tests.fixtures.repos import make_calc_repo


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


@pytest.fixture
def make_app(repo, tmp_path):
    """An app whose connector builds the real runtime over `completions` (streamed with `delay` per token)."""

    def factory(completions, *, approval="ask", delay=0.0, timings=False, still=False, held=None, loading=None):
        replay = tmp_path / f"replay-{len(list(tmp_path.glob('replay-*')))}.json"
        replay.write_text(json.dumps(completions))

        def connect(model_override, progress, sink, cancel_load=None):
            if loading is not None:  # the model "loads" until the test lets it finish
                progress(0.5)
                loading.wait(30)
            os.environ["GPTOSS_AGENT_REPLAY_TOKEN_DELAY"] = str(delay)
            options = RunOptions(cwd=str(repo), backend=f"replay:{replay}")
            progress(1.0)
            runtime = build_runtime(options, task="tui", sink=sink, workspace=prepare_workspace(options))
            os.environ.pop("GPTOSS_AGENT_REPLAY_TOKEN_DELAY", None)
            if held is not None:  # the model "thinks" until the test lets it go (or the step is cancelled)
                runtime.agent.backend = HeldBackend(runtime.agent.backend, held)
            return runtime

        # `still`: no cursor blink, no spinner or clock, for snapshots that must not depend on timing.
        return GptossApp(connect, approval=approval, timings=timings, animate=not still, repo=repo)

    return factory


class HeldBackend:
    """The replay backend, but each generation first waits until `release` is set or the step is cancelled:
    a turn that stays "working" for as long as a test (or a snapshot) needs, with nothing streamed yet."""

    def __init__(self, backend, release):
        self._backend, self._release = backend, release

    def generate(self, prompt, *, cancel, **kwargs):
        while not (self._release.wait(0.05) or cancel.is_set()):
            pass
        return self._backend.generate(prompt, cancel=cancel, **kwargs)

    def __getattr__(self, name):
        return getattr(self._backend, name)


async def wait_for(pilot, predicate, timeout=20.0):
    """Let the app run until `predicate()` holds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await pilot.pause(0.05)
        if predicate():
            return
    raise AssertionError("condition not reached in time")


async def until_answerable(pilot):
    """Wait until the modal on screen takes keys: not in its first second, nor right after another key."""
    import time

    from gptoss_agent.agent.frontends.tui.screens import TYPING_GAP_SECONDS

    screen = pilot.app.screen
    while time.monotonic() < max(screen.armed_at, pilot.app._last_key_at + TYPING_GAP_SECONDS) + 0.05:
        await pilot.pause(0.05)
