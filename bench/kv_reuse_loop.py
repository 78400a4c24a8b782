"""Tokens llama.cpp evaluated ÷ tokens new, summed over a 20-step run of the real loop on the tiny
gpt-oss GGUF (goal ≤ 1.02). "Evaluated" comes from llama.cpp's perf counters; "new" is what each
prompt added beyond what the model had already processed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import canonical_vocab_dir, tiny_gguf


def main(steps: int = 20):
    from gptoss_agent.agent.model.backends.llama import LlamaBackend, SamplingSettings
    from gptoss_agent.agent.model.harmony import HarmonyCodec
    from gptoss_agent.agent.loop import Agent, Budgets
    from tests.fixtures.repos import make_calc_repo
    from tests.model.test_loop_kv_reuse import Recording
    from gptoss_agent.tools.catalog import default_registry
    from gptoss_agent.tools.context import ToolContext

    codec = HarmonyCodec.load(canonical_vocab_dir())
    repo = make_calc_repo(Path(tempfile.mkdtemp()) / "project")
    backend = Recording(LlamaBackend(tiny_gguf(), n_ctx=16_384, sampling=SamplingSettings(seed=5)))
    agent = Agent(backend, codec, default_registry(), ToolContext(workspace=repo, count_tokens=codec.count),
                  sink=lambda e: None, budgets=Budgets(max_steps=steps, max_tokens_per_step=32, context_window=16_384,
                                                       max_format_errors=10**6))
    agent.start(instructions="Fix the failing test.", reasoning="low")
    agent.run("Make tests/test_calc.py pass.")
    evaluated = new = 0
    for previous, current in zip(backend.calls, backend.calls[1:]):
        evaluated += current["prompt_decoded"]
        new += len(current["prompt"]) - len(previous["state_after"])
    print(f"{len(backend.calls)} steps: evaluated {evaluated} / new {new} = {evaluated / new:.3f} (goal <= 1.02)")


if __name__ == "__main__":
    main()
