"""A prompt that arrives while the model loads waits, showing "loading model" and its progress as thoughts.

The embedded model loads in seconds to minutes; a replay loads at once, so the
end-to-end tests cannot show the wait. Here the server's wait runs against a
loader that is still loading, and the thoughts it posts are what an editor shows.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("acp")

from gptoss_agent.agent.frontends.acp.model import ModelLoader  # noqa: E402
from gptoss_agent.agent.frontends.acp.server import AcpServer  # noqa: E402
from gptoss_agent.agent.runtime import RunOptions  # noqa: E402


class Thoughts:
    """Where the server posts a session's updates (the pump that sends them is tested end to end)."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.texts: list[str] = []

    def post(self, update) -> None:
        self.texts.append(update.content.text)


def loading(fractions: list[float], *, error: str | None = None) -> ModelLoader:
    """A loader whose load is under way (started elsewhere): it moves through `fractions`, then is ready."""
    loader = ModelLoader(RunOptions())
    loader._thread = threading.current_thread()  # never start a real load
    loader.notices = ["model loaded in 2.0s: gpt-oss-20b.gguf"]

    def advance() -> None:
        import time

        for fraction in fractions:
            time.sleep(0.3)
            loader.fraction = fraction
        time.sleep(0.3)
        loader.model, loader.error = ("the model" if error is None else None), error
        loader.ready.set()

    threading.Thread(target=advance, daemon=True).start()
    return loader


def test_a_prompt_waits_for_the_model_with_its_progress_as_thoughts():
    server, session = AcpServer(RunOptions(), loader=loading([0.25, 0.5, 1.0])), Thoughts()
    model = asyncio.run(server._model(session))
    assert model == "the model"
    assert session.texts[0] == "loading model…\n"
    assert "loading model… 25%\n" in session.texts and "loading model… 50%\n" in session.texts
    assert session.texts[-1].startswith("model loaded in 2.0s")


def test_cancel_while_the_model_loads_ends_the_wait():
    server, session = AcpServer(RunOptions(), loader=loading([0.1] * 20)), Thoughts()

    async def scenario():
        waiting = asyncio.ensure_future(server._model(session))
        await asyncio.sleep(0.4)
        session.cancel.set()
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) is None


def test_a_model_that_cannot_load_is_the_prompt_s_error():
    from acp import RequestError

    server, session = AcpServer(RunOptions(), loader=loading([], error="no model found (gptoss-agent model where)")), \
        Thoughts()
    with pytest.raises(RequestError) as failed:
        asyncio.run(server._model(session))
    assert "the model could not be loaded: no model found" in str(failed.value)
