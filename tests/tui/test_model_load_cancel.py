"""Esc while the model loads stops the load (llama.cpp aborts at its next progress callback); /model PATH loads again.

The model is the real tiny gpt-oss GGUF loaded by llama.cpp: the cancellation
is llama.cpp's own (its progress callback answers False), not a stand-in.
"""

from __future__ import annotations

import threading

import pytest

from gptoss_agent.agent.frontends.tui.app import GptossApp
from gptoss_agent.agent.runtime import LoadCancelled, RunOptions, build_runtime, prepare_workspace
from tests.tui.conftest import wait_for
from tests.tui.test_app import asynctest, screen_text, send, transcript_text


def _options(repo, model) -> RunOptions:
    return RunOptions(cwd=str(repo), model=str(model), backend="llama")


def test_a_llama_load_cancelled_at_its_first_progress_callback_loads_nothing_and_can_start_again(repo, tiny_gguf):
    cancel = threading.Event()
    progress: list[float] = []

    def on_progress(fraction: float) -> None:
        progress.append(fraction)
        cancel.set()  # the user pressed Esc while the first tensors were read

    with pytest.raises(LoadCancelled, match="cancelled"):
        build_runtime(_options(repo, tiny_gguf), task="t", sink=lambda event: None, on_progress=on_progress,
                      cancel_load=cancel)
    assert len(progress) == 1 and progress[0] < 1.0  # llama.cpp stopped at the callback that said so

    runtime = build_runtime(_options(repo, tiny_gguf), task="t", sink=lambda event: None,
                            cancel_load=threading.Event())
    try:
        assert runtime.model_name == tiny_gguf.name
    finally:
        runtime.backend.close()


@asynctest
async def test_esc_while_the_model_loads_cancels_the_load_and_model_path_loads_it_again(repo, tiny_gguf):
    at_first_progress = threading.Event()
    loads: list[str | None] = []

    def connect(model_override, progress, sink, cancel_load):
        loads.append(model_override)
        options = _options(repo, model_override or tiny_gguf)

        def held_progress(fraction: float) -> None:
            progress(fraction)
            if len(loads) == 1:  # the first load waits at its first callback until the user decides
                at_first_progress.set()
                cancel_load.wait(30)

        return build_runtime(options, task="tui", sink=sink, workspace=prepare_workspace(options),
                             on_progress=held_progress, cancel_load=cancel_load)

    app = GptossApp(connect, timings=False, animate=False, repo=repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, at_first_progress.is_set)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.start_error is not None)
        await pilot.pause(0.2)
        assert app.runtime is None
        assert "Model loading cancelled." in transcript_text(app)
        assert "load cancelled" in screen_text(app)  # the status bar says so, not "could not start"

        await send(pilot, f"/model {tiny_gguf}")
        await wait_for(pilot, lambda: app.runtime is not None, timeout=60)
        assert loads == [None, str(tiny_gguf)]
        assert "load cancelled" not in screen_text(app) and tiny_gguf.name in transcript_text(app)
        app.runtime.backend.close()
