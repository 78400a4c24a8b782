"""The contracts that hold the agent together; concrete classes duck-type them."""

from __future__ import annotations

import threading
from typing import Callable, Collection, Protocol, Sequence

from gptoss_agent.agent.types import GenerationStats

TokenCallback = Callable[[int], "bool | None"]


def reusable_prefix(cached: Sequence[int], prompt: Sequence[int]) -> int:
    """How much of `prompt` a KV cache holding `cached` can keep: the common prefix,
    always leaving at least one prompt token to evaluate (its logits are needed)."""
    limit = min(len(cached), len(prompt) - 1)
    common = 0
    while common < limit and cached[common] == prompt[common]:
        common += 1
    return common


class Backend(Protocol):
    """Turns a prompt of token ids into sampled token ids.

    llama.cpp in process, a LAN server and the scripted replay all honour the
    same contract: stream each sampled token to `on_token` as it is made; stop
    after a token in `stop` (it is passed to `on_token` first), when `on_token`
    returns True, when `cancel` is set (within one token, or during prompt
    evaluation), or after `max_tokens`.
    """

    def generate(self, prompt: Sequence[int], *, stop: Collection[int], on_token: TokenCallback,
                 cancel: threading.Event, max_tokens: int) -> GenerationStats: ...

    def close(self) -> None: ...
