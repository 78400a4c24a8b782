"""Harness overhead: tokens/s streamed through our backend + Harmony parser, divided by
tokens/s of a bare llama-cpp-python `Llama.generate` loop on the same model, same run.

Both sample with the same settings (temperature 1.0, top_p 1.0, no top-k/min-p),
interleaved A/B over several rounds; the median of each is compared. Goal ≥ 0.97.
"""

from __future__ import annotations

import argparse
import threading
import time

from _common import canonical_vocab_dir, gemma_gguf, median, tiny_gguf


def bare_llama(path, prompt, n_tokens, seed):
    from llama_cpp import Llama

    llm = Llama(str(path), n_ctx=2048, n_threads=1, n_threads_batch=1, flash_attn=True, swa_full=True,
                seed=seed, verbose=False)

    def run():
        llm.reset()
        count = 0
        started = None
        for _ in llm.generate(prompt, top_k=0, top_p=1.0, min_p=0.0, temp=1.0, reset=True):
            if started is None:
                started = time.perf_counter()  # first token: the prompt is evaluated
            count += 1
            if count == n_tokens:
                break
        return (count - 1) / (time.perf_counter() - started)

    return run


def ours(path, prompt, n_tokens, seed, codec):
    from gptoss_agent.agent.model.backends.llama import LlamaBackend, SamplingSettings

    backend = LlamaBackend(path, n_ctx=2048, n_threads=1, n_threads_batch=1,
                           sampling=SamplingSettings(seed=seed))

    def run():
        parser = codec.parser(on_text=lambda header, text: None)
        first = []

        def on_token(token):
            if not first:
                first.append(time.perf_counter())
            parser.feed(token)

        backend.reset()  # a cold prompt each round, like the bare loop's reset
        backend.generate(prompt, stop=(), on_token=on_token, cancel=threading.Event(), max_tokens=n_tokens)
        return (n_tokens - 1) / (time.perf_counter() - first[0])

    return run


def measure(name, path, prompt, codec, n_tokens, rounds):
    a, b = bare_llama(path, prompt, n_tokens, seed=7), ours(path, prompt, n_tokens, seed=7, codec=codec)
    a(), b()  # warm-up
    bare, harness = [], []
    for _ in range(rounds):
        bare.append(a())
        harness.append(b())
    ratio = median(harness) / median(bare)
    print(f"{name:<14} bare Llama.generate {median(bare):7.1f} tok/s | backend+parser {median(harness):7.1f} tok/s"
          f" | ratio {ratio:.3f} (goal >= 0.97)")
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from gptoss_agent.agent.model.harmony import HarmonyCodec

    codec = HarmonyCodec.load(canonical_vocab_dir())
    tiny_prompt = (codec.render_system() + codec.render_user("Write a haiku about caches.") + list(codec.assistant_start))
    measure("tiny gpt-oss", tiny_gguf(), tiny_prompt, codec, args.tokens, args.rounds)
    from llama_cpp import Llama

    gemma = gemma_gguf()
    tok = Llama(str(gemma), vocab_only=True, verbose=False)
    gemma_prompt = tok.tokenize(b"Write a short story about a robot who learns to paint.")
    measure("gemma3-270m", gemma, gemma_prompt, codec, args.tokens, args.rounds)


if __name__ == "__main__":
    main()
