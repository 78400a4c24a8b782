"""KV reuse through the real loop on the tiny gpt-oss GGUF: each step evaluates only its new tokens.

The random model writes nonsense, so every step ends in a format error that the
loop hands back to the model: exactly the multi-step path, with a real KV cache.
What llama.cpp evaluated is read from its own perf counters.
"""

from __future__ import annotations

import pytest

from gptoss_agent.agent.model.backends.llama import LlamaBackend, SamplingSettings
from gptoss_agent.agent.loop import Agent, Budgets
from tests.fixtures.repos import make_calc_repo
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext

pytestmark = pytest.mark.model


class Recording:
    """Passes calls to the real backend and notes what llama.cpp decoded for each."""

    def __init__(self, backend: LlamaBackend) -> None:
        self.backend = backend
        self.calls: list[dict] = []

    def generate(self, prompt, *, stop, on_token, cancel, max_tokens):
        before = self.backend.decoded_token_count()
        sampled: list[int] = []

        def tap(token):
            sampled.append(token)
            return on_token(token)

        stats = self.backend.generate(prompt, stop=stop, on_token=tap, cancel=cancel, max_tokens=max_tokens)
        decoded = self.backend.decoded_token_count() - before
        sampled_decoded = len(sampled) - 1 if stats.stop_reason in ("max_tokens", "stop_token", "requested") else len(sampled)
        self.calls.append({"prompt": list(prompt), "prompt_decoded": decoded - sampled_decoded,
                           "state_after": list(prompt) + sampled[:sampled_decoded]})
        return stats

    def close(self):
        self.backend.close()


def test_every_step_of_a_real_run_evaluates_only_its_new_tokens(tiny_gguf, codec, tmp_path):
    repo = make_calc_repo(tmp_path / "project")
    backend = Recording(LlamaBackend(tiny_gguf, n_ctx=8192, sampling=SamplingSettings(seed=11)))
    ctx = ToolContext(workspace=repo, sandbox=None, count_tokens=codec.count)
    agent = Agent(backend, codec, default_registry(), ctx, sink=lambda e: None,
                  budgets=Budgets(max_steps=6, max_tokens_per_step=24, context_window=8192, max_format_errors=10))
    agent.start(instructions="Fix the failing test.", reasoning="low")
    result = agent.run("Make tests/test_calc.py pass.")
    backend.close()
    assert result.steps == 6
    for previous, current in zip(backend.calls, backend.calls[1:]):
        cached = previous["state_after"]
        common = next((i for i, (a, b) in enumerate(zip(cached, current["prompt"])) if a != b),
                      min(len(cached), len(current["prompt"])))
        assert common == len(cached), "the new prompt must extend what the model already evaluated"
        assert current["prompt_decoded"] == len(current["prompt"]) - len(cached)
