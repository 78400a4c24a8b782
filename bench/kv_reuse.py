"""KV reuse across steps: tokens llama.cpp evaluated on each step's prompt ÷ tokens that
step added, over a 10-step scripted tool-calling conversation on the tiny gpt-oss GGUF.

"Evaluated" is llama.cpp's own count (its perf counters), not our bookkeeping;
"new" is what the step appended after the tokens the model had already seen.
Goal: 1.0, nothing re-evaluated.
"""

from __future__ import annotations

import argparse
import threading

from _common import canonical_vocab_dir, tiny_gguf


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from gptoss_agent.agent.model.backends.llama import LlamaBackend, SamplingSettings
    from gptoss_agent.agent.model.harmony import HarmonyCodec
    from gptoss_agent.agent.model.harmony_stream import CALL, RETURN

    codec = HarmonyCodec.load(canonical_vocab_dir())
    backend = LlamaBackend(tiny_gguf(), n_ctx=16_384, sampling=SamplingSettings(seed=3))
    prompt = (codec.render_system() + codec.render_developer("You are a coding agent.")
              + codec.render_user("Make the failing test in tests/test_calc.py pass.") + list(codec.assistant_start))
    seen_by_model = 0
    total_new = total_evaluated = 0
    for step in range(1, args.steps + 1):
        generated: list[int] = []
        before = backend.decoded_token_count()
        stats = backend.generate(prompt, stop={CALL, RETURN}, on_token=generated.append,
                                 cancel=threading.Event(), max_tokens=24)
        decoded = backend.decoded_token_count() - before
        sampled_and_decoded = max(len(generated) - 1, 0) if stats.stop_reason == "max_tokens" else \
            len(generated) - (1 if generated and generated[-1] in (CALL, RETURN) else 0)
        evaluated = decoded - sampled_and_decoded
        new = len(prompt) - seen_by_model
        if step > 1:  # the ratio is about steps N+1: step 1 has nothing to reuse
            total_new += new
            total_evaluated += evaluated
        print(f"step {step:2d}: prompt {len(prompt):5d} tokens, new {new:4d}, evaluated {evaluated:4d}, "
              f"reused {stats.cached_tokens:5d}")
        seen_by_model = len(prompt) + sampled_and_decoded
        # The model's own tokens stay in history; a tool result follows, then the next turn.
        prompt = (prompt + generated + ([] if generated and generated[-1] == CALL else [CALL])
                  + codec.render_tool_result("functions.run_tests", f"step {step}: 3 passed, 1 failed")
                  + list(codec.assistant_start))
    print(f"\nevaluated / new over steps 2..{args.steps}: {total_evaluated} / {total_new} = "
          f"{total_evaluated / total_new:.3f} (goal 1.0)")


if __name__ == "__main__":
    main()
