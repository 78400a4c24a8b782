"""The replay backend: scripted Harmony completions streamed as if sampled.

Tests and demos drive the whole agent with it, no model needed. Each entry of
the replay file is the raw text of one assistant completion (special tokens
written as text, starting right after the prompt's `<|start|>assistant`). It
keeps the same KV bookkeeping as llama.cpp would, so the loop's prompt-prefix
discipline is measured even without a model.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Collection, Sequence

from gptoss_agent.agent.model.harmony import HarmonyCodec
from gptoss_agent.agent.protocols import TokenCallback, reusable_prefix
from gptoss_agent.agent.types import GenerationStats


class ReplayError(RuntimeError):
    """The replay file is unusable, or its completions ran out."""


class ReplayBackend:
    """Streams one scripted completion per `generate` call."""

    def __init__(self, completions: Sequence[str], codec: HarmonyCodec, *, source: str = "replay",
                 token_delay_s: float = 0.0) -> None:
        self._completions = list(completions)
        self._codec = codec
        self._source = source
        self._delay = token_delay_s
        self._next = 0
        self._cache: list[int] = []  # what a real KV cache would hold now

    @classmethod
    def from_file(cls, path: str | Path, codec: HarmonyCodec, **kwargs) -> "ReplayBackend":
        """Load a replay file: a JSON array of completion strings."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReplayError(f"replay file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReplayError(f"replay file {path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise ReplayError(f"replay file {path} is nested too deeply to be a list of completions") from None
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise ReplayError(f"replay file {path} must be a JSON array of strings (one per completion)")
        return cls(data, codec, source=str(path), **kwargs)

    def generate(self, prompt: Sequence[int], *, stop: Collection[int], on_token: TokenCallback,
                 cancel: threading.Event, max_tokens: int) -> GenerationStats:
        if self._next >= len(self._completions):
            raise ReplayError(f"the replay {self._source} has no completion left "
                              f"(all {len(self._completions)} were used)")
        text = self._completions[self._next]
        self._next += 1
        tokens = self._codec.encode_with_specials(text)
        started = time.perf_counter()
        reused = self._reuse(prompt)
        prompt_done = time.perf_counter()
        generated, reason = 0, "exhausted"
        for token in tokens:
            if cancel.is_set():
                reason = "cancelled"
                break
            if generated >= max_tokens:
                reason = "max_tokens"
                break
            if self._delay:
                time.sleep(self._delay)
            generated += 1
            requested = on_token(token)
            if token in stop:
                reason = "stop_token"
                break
            if requested:
                reason = "requested"
                break
            self._cache.append(token)
        return GenerationStats(len(prompt), reused, len(prompt) - reused, generated,
                               prompt_done - started, time.perf_counter() - prompt_done, reason)

    def _reuse(self, prompt: Sequence[int]) -> int:
        common = reusable_prefix(self._cache, prompt)
        self._cache = list(prompt)
        return common

    def close(self) -> None:
        """Nothing to release."""
