"""Is this GGUF the model we run, and can llama.cpp load it without aborting?

llama.cpp checks many hyper-parameters with `GGML_ASSERT`, which aborts the
whole process (SIGABRT: the TUI dies with the terminal in raw mode, a batch
run loses every task), and divides by others (zero heads → SIGFPE). A GGUF is
untrusted input, so before the file is handed to llama.cpp its metadata is
checked here against the same rules, with the key, its value and the rule in
the message. The rules follow `llama_model::load_hparams` and the gpt-oss
(`openai-moe`) loader; values far outside any real model are refused too.

Two questions, asked separately:
- `check_loadable(meta)`: would llama.cpp abort or divide by zero on it? Asked
  for every model, just before loading (gemma works for experiments).
- `require_gpt_oss(meta)`: is it gpt-oss with the o200k_harmony vocabulary the
  agent speaks? Asked when choosing the model, unless the user passed
  `--allow-any-model`.
"""

from __future__ import annotations

import math
from typing import Any

from gptoss_agent.agent.model.gguf_meta import GGUFError, GGUFMetadata

GPT_OSS = "gpt-oss"
HARMONY_VOCAB_SIZE = 201_088  # agent.vocab.HARMONY_VOCAB_SIZE, without importing the vocabulary code
LLAMA_MAX_LAYERS = 512
LLAMA_MAX_EXPERTS = 1024
MAX_CONTEXT = 1 << 24
MAX_EMBEDDING = 1 << 17
MAX_HEAD_DIM = 4096
MAX_HEADS = 4096
ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")


class ModelCheckError(ValueError):
    """The file is not a model we can hand to llama.cpp; the message lists every problem."""


class NotGptOssError(ModelCheckError):
    """A loadable GGUF, but not gpt-oss (or not with the Harmony vocabulary)."""


def check_loadable(meta: GGUFMetadata) -> None:
    """Refuse hyper-parameters that make llama.cpp abort or divide by zero while loading."""
    problems: list[str] = []
    arch = meta.architecture
    if not arch:
        raise ModelCheckError(safe_line(f"{meta.path}: no general.architecture string; "
                                        "not a model file llama.cpp can load"))
    def key(name: str) -> str:
        return f"{arch}.{name}"

    get = _Getter(meta, problems)

    layers = get.int(key("block_count"), required=True, low=1, high=LLAMA_MAX_LAYERS)
    get.int(key("context_length"), required=True, low=1, high=MAX_CONTEXT)
    get.int(key("embedding_length"), required=True, low=1, high=MAX_EMBEDDING)
    nextn = get.int(key("nextn_predict_layers"), low=0, high=LLAMA_MAX_LAYERS)
    if nextn is not None and layers is not None and nextn > layers:
        problems.append(f"{key('nextn_predict_layers')} = {nextn} is more than block_count = {layers}")

    experts = get.int(key("expert_count"), low=0, high=LLAMA_MAX_EXPERTS) or 0
    used = get.per_layer(key("expert_used_count"), layers, low=0, high=LLAMA_MAX_EXPERTS)
    used_max = max(used) if used else 0
    if used_max > experts:
        problems.append(f"{key('expert_used_count')} = {used_max} is more than expert_count = {experts}")
    groups = get.int(key("expert_group_count"), low=0, high=LLAMA_MAX_EXPERTS) or 0
    groups_used = get.int(key("expert_group_used_count"), low=0, high=LLAMA_MAX_EXPERTS) or 0
    if experts > 0:
        if used_max == 0:
            problems.append(f"{key('expert_count')} = {experts} but no expert is used per token")
        if groups >= experts:
            problems.append(f"{key('expert_group_count')} = {groups} is not below expert_count = {experts}")
        elif groups > 1 and (experts % groups or not 0 < groups_used < groups):
            problems.append(f"expert groups {groups} (used {groups_used}) do not divide {experts} experts")
    elif used_max or groups:
        problems.append(f"{arch} has no experts but uses {used_max} (groups {groups})")

    heads = get.per_layer(key("attention.head_count"), layers, low=0, high=MAX_HEADS)
    kv_heads = get.per_layer(key("attention.head_count_kv"), layers, low=0, high=MAX_HEADS) or heads
    for layer, (h, kv) in enumerate(zip(heads, kv_heads)):
        if h and not kv:
            problems.append(f"{key('attention.head_count_kv')} is 0 for layer {layer} (llama.cpp divides by it)")
            break
    get.int(key("attention.key_length"), low=1, high=MAX_HEAD_DIM)
    get.int(key("attention.value_length"), low=1, high=MAX_HEAD_DIM)
    scaling = get.str(key("rope.scaling.type"))
    if scaling is not None and scaling not in ROPE_SCALING_TYPES:
        problems.append(f"{key('rope.scaling.type')} = {_show(scaling)} is not one of {', '.join(ROPE_SCALING_TYPES)}")
    get.float(key("rope.freq_base"), positive=True)
    get.float(key("rope.scaling.factor"), positive=False)

    if arch == GPT_OSS:
        _gpt_oss_rules(get, key, heads, kv_heads, experts, used_max, problems)
    _vocabulary_rules(meta, get, problems)
    if problems:
        raise ModelCheckError(safe_line(f"{meta.path} cannot be loaded safely: " + "; ".join(problems)))


def require_gpt_oss(meta: GGUFMetadata, *, allow_any_model: bool = False) -> None:
    """Refuse a GGUF that is not gpt-oss with the Harmony vocabulary, unless the user allows any model."""
    if allow_any_model:
        return
    arch = meta.architecture
    if arch != GPT_OSS:
        raise NotGptOssError(
            f"{safe_line(str(meta.path))} is {f'a {_show(arch)} model' if arch else 'a model of unknown architecture'}, "
            "not gpt-oss; "
            "gptoss-agent speaks gpt-oss's Harmony format. Pass --allow-any-model to try it anyway.")
    tokens = meta.array_lengths.get("tokenizer.ggml.tokens")
    if tokens != HARMONY_VOCAB_SIZE or meta.values.get("tokenizer.ggml.model") != "gpt2":
        raise NotGptOssError(
            f"{safe_line(str(meta.path))} says gpt-oss but its vocabulary is not o200k_harmony ({tokens} tokens, tokenizer "
            f"{_show(meta.values.get('tokenizer.ggml.model'))}). Pass --allow-any-model to try it anyway.")


def is_gpt_oss(meta: GGUFMetadata) -> bool:
    """True when `require_gpt_oss` would accept the file."""
    try:
        require_gpt_oss(meta)
    except NotGptOssError:
        return False
    return True


def _gpt_oss_rules(get: "_Getter", key, heads: list[int], kv_heads: list[int], experts: int, used_max: int,
                   problems: list[str]) -> None:
    """The gpt-oss loader reads these without defaults and builds tensor shapes from them."""
    get.float(key("attention.layer_norm_rms_epsilon"), required=True, positive=True)
    get.per_layer(key("expert_feed_forward_length"), None, required=True, low=1, high=1 << 20)
    get.int(key("attention.sliding_window"), required=True, low=1, high=MAX_CONTEXT)
    if not heads or min(heads) < 1:
        problems.append(f"{key('attention.head_count')} must be at least 1 in every layer")
    elif any(kv < 1 or h % kv for h, kv in zip(heads, kv_heads)):
        problems.append(f"{key('attention.head_count_kv')} must divide {key('attention.head_count')} in every layer")
    if experts < 1 or used_max < 1:
        problems.append("gpt-oss is a mixture of experts: expert_count and expert_used_count must be at least 1")


def _vocabulary_rules(meta: GGUFMetadata, get: "_Getter", problems: list[str]) -> None:
    tokens = meta.array_lengths.get("tokenizer.ggml.tokens")
    get.str("tokenizer.ggml.model")
    if tokens is None:
        return
    types = meta.array_lengths.get("tokenizer.ggml.token_type")
    if types is not None and types != tokens:
        problems.append(f"tokenizer.ggml.token_type has {types} entries for {tokens} tokens")
    scores = meta.array_lengths.get("tokenizer.ggml.scores")
    if scores is not None and scores != tokens:
        problems.append(f"tokenizer.ggml.scores has {scores} entries for {tokens} tokens")
    for name in ("bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask"):
        get.int(f"tokenizer.ggml.{name}_token_id", low=0, high=max(tokens - 1, 0))


class _Getter:
    """Typed, range-checked reads that collect problems instead of stopping at the first."""

    def __init__(self, meta: GGUFMetadata, problems: list[str]) -> None:
        self.meta = meta
        self.problems = problems

    def _typed(self, name: str, kind, required: bool) -> Any:
        try:
            value = self.meta.typed(name, kind)
        except GGUFError as exc:
            self.problems.append(str(exc))
            return None
        if value is None and required:
            self.problems.append(f"{name} is missing")
        return value

    def int(self, name: str, *, required: bool = False, low: int, high: int) -> int | None:
        value = self._typed(name, int, required)
        if value is not None and not low <= value <= high:
            self.problems.append(f"{name} = {value} is outside {low}..{high}")
            return None
        return value

    def float(self, name: str, *, required: bool = False, positive: bool) -> float | None:
        value = self._typed(name, float, required)
        if value is None:
            return None
        if not math.isfinite(value) or (positive and value <= 0) or value < 0:
            self.problems.append(f"{name} = {value} is not a {'positive' if positive else 'non-negative'} number")
            return None
        return value

    def str(self, name: str) -> str | None:
        return self._typed(name, str, False)

    def per_layer(self, name: str, layers: int | None, *, required: bool = False, low: int, high: int) -> list[int]:
        """A value given once for all layers, or as an array with one entry per layer."""
        if name in self.meta.skipped:
            self.problems.append(f"{name} is an array of {self.meta.array_lengths.get(name)} items; "
                                 f"expected one per layer")
            return []
        value = self._typed(name, (int, list), required)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            self.problems.append(f"{name} must be an integer or an array of integers")
            return []
        if isinstance(value, list) and layers is not None and len(items) != layers:
            self.problems.append(f"{name} has {len(items)} entries for {layers} layers")
            return []
        bad = [v for v in items if not low <= v <= high]
        if bad:
            self.problems.append(f"{name} = {bad[0]} is outside {low}..{high}")
            return []
        return items


def _show(value: Any) -> str:
    """A metadata string fit to show a person: quoted, control and invisible characters escaped."""
    text = value if isinstance(value, str) else repr(value)
    return "'" + safe_line(text[:200]) + ("…'" if len(text) > 200 else "'")


def safe_line(text: str) -> str:
    """One line of untrusted text made safe for a terminal (agent.safe_text when present)."""
    try:
        from gptoss_agent.agent.safe_text import line
    except ImportError:  # pragma: no cover - the shared neutraliser is the normal path
        return "".join(ch if ch.isprintable() else f"<U+{ord(ch):04X}>" for ch in text)
    return line(text)
