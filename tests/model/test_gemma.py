"""gemma3-270m, a real trained model, through the same backend code path as gpt-oss."""

from __future__ import annotations

import threading

import pytest

from gptoss_agent.agent.model.backends.llama import LlamaBackend, SamplingSettings

pytestmark = pytest.mark.model

PROMPT = "The Eiffel Tower is located in the city of"


def test_gemma_generates_what_llama_cpp_python_generates(gemma_gguf):
    """Our C-API path gives the same greedy continuation as llama-cpp-python's own Llama."""
    from llama_cpp import Llama

    backend = LlamaBackend(gemma_gguf, n_ctx=1024, flash_attention=False, sampling=SamplingSettings(temperature=0.0))
    try:
        assert backend.info.architecture == "gemma3" and backend.info.quantization == "Q4_K_M"
        prompt = backend.tokenize(PROMPT)
        tokens: list[int] = []
        stats = backend.generate(prompt, stop={1, 106}, on_token=tokens.append,
                                 cancel=threading.Event(), max_tokens=12)
        ours = "".join(backend.token_piece(t) for t in tokens)
    finally:
        backend.close()
    reference = _reference_llama(Llama, gemma_gguf)
    theirs = reference.create_completion(PROMPT, max_tokens=12, temperature=0.0)["choices"][0]["text"]
    assert "Paris" in ours
    assert ours.startswith(theirs) or theirs.startswith(ours)
    assert stats.generated_tokens == len(tokens) and stats.generation_tokens_per_second > 0


def _reference_llama(Llama, path):
    """llama-cpp-python's own Llama, loaded with the same CPU decision our backend made.

    `Llama` has no switch for llama.cpp's extra buffer types; on a machine whose AMX
    only looks usable (see agent/backends/cpu_probe.py) it would die with SIGILL, so
    its default model parameters get the same switch our backend sets.
    """
    import llama_cpp.llama_cpp as raw

    from gptoss_agent.agent.model.backends.cpu_probe import probe

    if probe().extra_buffer_types:
        return Llama(str(path), n_ctx=1024, verbose=False)
    original = raw.llama_model_default_params

    def without_extra_buffer_types():
        params = original()
        params.use_extra_bufts = False
        return params

    raw.llama_model_default_params = without_extra_buffer_types
    try:
        return Llama(str(path), n_ctx=1024, verbose=False)
    finally:
        raw.llama_model_default_params = original
