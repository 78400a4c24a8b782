"""Harness time per step, excluding model and tool time, over a 50-step replay run (goal < 5 ms).

The replay backend streams scripted completions; time inside `generate` (the
model's share) and inside the tool functions is measured and subtracted from
the wall time of the run. What remains is the loop: rendering, parsing,
checking, capping, events and the session log.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _common import canonical_vocab_dir


class Timed:
    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def generate(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.inner.generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def close(self):
        pass


def main(steps: int = 50):
    from gptoss_agent.agent.model.backends.replay import ReplayBackend
    from gptoss_agent.agent.model.harmony import HarmonyCodec
    from gptoss_agent.agent.loop import Agent, Budgets
    from gptoss_agent.agent.session import SessionLog
    from tests.fixtures.repos import call, final, make_calc_repo
    from gptoss_agent.tools.catalog import default_registry
    from gptoss_agent.tools.context import ToolContext

    codec = HarmonyCodec.load(canonical_vocab_dir())
    repo = make_calc_repo(Path(tempfile.mkdtemp()) / "project")
    completions = [call("repo_browser.open_file", {"path": "calc.py", "line_start": 1 + i % 3},
                        analysis=f"Step {i}: reading the file again to check line {1 + i % 3}.")
                   for i in range(steps - 1)] + [final("done")]
    backend = Timed(ReplayBackend(completions, codec))
    registry = default_registry()
    tool_seconds = 0.0
    for spec_name, tool in registry.tools.items():
        original = tool.function

        def wrapped(ctx, _original=original, **kwargs):
            nonlocal tool_seconds
            started = time.perf_counter()
            try:
                return _original(ctx, **kwargs)
            finally:
                tool_seconds += time.perf_counter() - started

        tool.function = wrapped
    session = SessionLog.create(repo=str(repo), task="bench", config={}, directory=Path(tempfile.mkdtemp()))
    agent = Agent(backend, codec, registry, ToolContext(workspace=repo, count_tokens=codec.count),
                  sink=lambda e: None, budgets=Budgets(max_steps=steps + 1, repeat_warning=10**6,
                                                       context_window=131_072), session=session)
    agent.start(instructions="bench", reasoning="low")
    started = time.perf_counter()
    result = agent.run("read calc.py repeatedly")
    wall = time.perf_counter() - started
    harness = wall - backend.seconds - tool_seconds
    print(f"{result.steps} steps ({result.status}): wall {wall * 1000:.0f} ms, replay 'model' {backend.seconds * 1000:.0f} ms, "
          f"tools {tool_seconds * 1000:.0f} ms")
    print(f"harness per step: {harness / result.steps * 1000:.2f} ms (goal < 5 ms)")
    print(f"prompt tokens {result.prompt_tokens}, reused from cache {result.cached_tokens} "
          f"({result.cached_tokens / result.prompt_tokens:.1%})")


if __name__ == "__main__":
    main()
