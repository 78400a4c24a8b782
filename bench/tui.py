"""TUI figures: time to first frame (and to interactive input), and the highest token rate the
transcript sustains, vs the same tokens printed plainly, same run (goal ≥ 250 tokens/s)."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from _common import canonical_vocab_dir


def main():
    import os

    from agent.backends.replay import ReplayBackend
    from agent.harmony import HarmonyCodec
    from agent.headless import RunOptions, TranscriptPrinter, build_runtime, prepare_workspace
    from agent.tui.app import GptossApp
    from agent.tui.widgets import AnswerView, PromptInput
    from tests.fixtures.repos import final, make_calc_repo

    cache = Path(tempfile.mkdtemp())
    shutil.copytree(canonical_vocab_dir(), cache / "vocab")
    os.environ["GPTOSS_AGENT_CACHE_DIR"] = str(cache)
    os.environ["GPTOSS_AGENT_STATE_DIR"] = str(cache / "state")
    repo = make_calc_repo(Path(tempfile.mkdtemp()) / "project")
    words = " ".join(f"w{i}" for i in range(2500))
    replay = repo.parent / "replay.json"
    replay.write_text(json.dumps([final(words)] * 3))
    codec = HarmonyCodec.load(cache / "vocab")
    n_tokens = len(codec.encode_with_specials(final(words)))

    def connect(model, progress, sink):
        options = RunOptions(cwd=str(repo), backend=f"replay:{replay}", approval="full-auto")
        return build_runtime(options, task="bench", sink=sink, workspace=prepare_workspace(options))

    async def measure():
        started = time.perf_counter()
        app = GptossApp(connect, approval="full-auto", timings=False)
        async with app.run_test(size=(100, 30)) as pilot:
            first_frame = time.perf_counter() - started
            interactive = first_frame if app.focused is app.query_one(PromptInput) else None
            while app.runtime is None:
                await pilot.pause(0.01)
            ready = time.perf_counter() - started
            prompt = app.query_one(PromptInput)
            prompt.text = "stream"
            t0 = time.perf_counter()
            await pilot.press("enter")
            while not app.query(AnswerView):
                await pilot.pause(0.005)
            streamed = time.perf_counter() - t0
        return first_frame, interactive, ready, streamed

    first_frame, interactive, ready, streamed = asyncio.run(measure())
    plain_backend = ReplayBackend([final(words)], codec)
    printer = TranscriptPrinter(io.StringIO())
    t0 = time.perf_counter()
    plain_backend.generate([1], stop=(200_002,), on_token=lambda t: printer.out.write(codec.decode([t])),
                           cancel=threading.Event(), max_tokens=100_000)
    plain = time.perf_counter() - t0
    print(f"time to first frame {first_frame * 1000:.0f} ms (goal < 1 s); input focused at first frame: "
          f"{interactive is not None}; runtime ready {ready * 1000:.0f} ms (replay backend)")
    print(f"streaming {n_tokens} tokens: TUI {n_tokens / streamed:,.0f} tok/s, plain print {n_tokens / plain:,.0f} tok/s "
          f"(TUI/plain {plain / streamed:.2f}); goal ≥ 250 tok/s sustained")


if __name__ == "__main__":
    main()
