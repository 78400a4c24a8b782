"""TUI figures: from process start to the first frame and to the input showing typed keys, measured on
the real `gptoss-agent` in a real pseudo-terminal (goal < 0.8 s on two cores); then the highest token rate
the transcript sustains, vs the same tokens printed plainly, same run (goal ≥ 250 tokens/s).

The wall times depend on how busy the machine is; the child's own CPU time (user + system, until the
first frame is measured separately as the process total) is printed beside them."""

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


def pty_start_up(repo: Path, replay: Path, runs: int = 5) -> None:
    """Spawn `python -m agent.cli` in a pty, type at once, and time the first frame and the typed text's echo."""
    import os
    import resource
    import statistics
    import sys

    from tests.tui.pty_session import ALT_SCREEN, PtySession

    frames, echoes, readies, cpus, frame_cpus = [], [], [], [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        session = PtySession([sys.executable, "-m", "agent.cli", "--backend", f"replay:{replay}"], cwd=repo,
                             env={"PYTHONPATH": os.pathsep.join(filter(None, (str(Path(__file__).resolve().parents[1]),
                                                                               os.environ.get("PYTHONPATH"))))},
                             columns=100, rows=30)
        session.send("zqxj")  # typed the moment the process starts
        session.wait_for(ALT_SCREEN, timeout=60)
        start = session.output.find(ALT_SCREEN)
        frames.append(session.wait_for(b"approval", timeout=60, after=start))  # the status bar: a full frame
        frame_cpus.append(session.cpu_seconds())
        echoes.append(session.wait_for(b"zqxj", timeout=60, after=start))  # drawn in the prompt, not echoed by the tty
        readies.append(session.wait_for(b"Ready", timeout=60, after=start))
        session.send("\x03\x03")
        session.close()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    median = statistics.median
    load = os.getloadavg()[0]
    print(f"real pty, process start → first frame {median(frames) * 1000:.0f} ms (goal < 800 ms), "
          f"→ keys typed at start shown in the input {median(echoes) * 1000:.0f} ms, "
          f"→ runtime ready {median(readies) * 1000:.0f} ms (replay backend); median of {runs}")
    print(f"  CPU time of the process up to its first frame {median(frame_cpus) * 1000:.0f} ms (what the wall time "
          f"is on an idle machine); whole run {median(cpus) * 1000:.0f} ms; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs")


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

    pty_start_up(repo, replay)
    first_frame, interactive, ready, streamed = asyncio.run(measure())
    plain_backend = ReplayBackend([final(words)], codec)
    printer = TranscriptPrinter(io.StringIO())
    t0 = time.perf_counter()
    plain_backend.generate([1], stop=(200_002,), on_token=lambda t: printer.out.write(codec.decode([t])),
                           cancel=threading.Event(), max_tokens=100_000)
    plain = time.perf_counter() - t0
    print(f"test driver (no terminal): first frame {first_frame * 1000:.0f} ms after the app object; input focused "
          f"at first frame: {interactive is not None}; runtime ready {ready * 1000:.0f} ms")
    print(f"streaming {n_tokens} tokens: TUI {n_tokens / streamed:,.0f} tok/s, plain print {n_tokens / plain:,.0f} tok/s "
          f"(TUI/plain {plain / streamed:.2f}); goal ≥ 250 tok/s sustained")


if __name__ == "__main__":
    main()
