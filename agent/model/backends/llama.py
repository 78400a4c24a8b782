"""The embedded backend: llama.cpp in process, through llama-cpp-python's C API.

We drive the C API directly rather than `Llama.generate` because the agent
needs what that wrapper hides: load progress, an abort callback that cancels a
long prompt evaluation, exact accounting of the KV prefix reused across steps,
and gpt-oss sampling without llama-cpp-python's top-k/min-p defaults. This is
the only module that imports `llama_cpp`.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Sequence

import llama_cpp as ll

from gptoss_agent.agent.model.backends.cpu_probe import probe as probe_cpu
from gptoss_agent.agent.model.gguf_meta import GGUFError, quantization_name, read_metadata
from gptoss_agent.agent.model.check import ModelCheckError, check_loadable
from gptoss_agent.agent.protocols import TokenCallback, reusable_prefix
from gptoss_agent.agent.types import GenerationStats, ModelInfo

_BACKEND_READY = False
_BACKEND_LOCK = threading.Lock()
_LOG_LINES: list[str] = []


class BackendError(RuntimeError):
    """The model could not be loaded or run; the message says why and what to do."""


class ContextFullError(BackendError):
    """The prompt no longer fits in the context window."""


@dataclass(frozen=True)
class SamplingSettings:
    """gpt-oss's recommended sampling (temperature 1.0, top_p 1.0), nothing else on top."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None


def default_threads() -> tuple[int, int]:
    """(generation, batch) threads. On two cores one thread each avoided 0.5 s stalls."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if cores <= 2:
        return 1, 1
    return min(cores - 1, 8), cores


def _ensure_backend() -> None:
    global _BACKEND_READY
    with _BACKEND_LOCK:
        if not _BACKEND_READY:
            ll.llama_log_set(_log_callback, ctypes.c_void_p(0))
            ll.llama_backend_init()
            _BACKEND_READY = True


@ll.llama_log_callback
def _log_callback(level, text, _data):  # pragma: no cover - called from C
    if len(_LOG_LINES) > 400:
        del _LOG_LINES[:200]
    _LOG_LINES.append(text.decode("utf-8", errors="replace"))


def recent_llama_log() -> str:
    """The last lines llama.cpp logged (shown with --debug and in load errors)."""
    return "".join(_LOG_LINES[-40:])


class LoadCancelled(BackendError):
    """`cancel_load` was set: llama.cpp stopped reading the weights at its next progress callback."""


class LlamaBackend:
    """gpt-oss (or any GGUF) running in this process, keeping its KV cache between calls."""

    def __init__(self, model_path: str | Path, *, n_ctx: int = 32_768, n_threads: int | None = None,
                 n_threads_batch: int | None = None, n_gpu_layers: int | None = None,
                 flash_attention: bool = True, n_batch: int = 512,
                 sampling: SamplingSettings = SamplingSettings(),
                 on_progress: Callable[[float], None] | None = None,
                 cancel_load: threading.Event | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        try:
            meta = read_metadata(path)
            check_loadable(meta)  # values llama.cpp would abort on (GGML_ASSERT) never reach it
        except (GGUFError, ModelCheckError) as exc:
            raise BackendError(str(exc)) from exc
        _ensure_backend()
        self.path = path
        self._sampling = sampling
        self._cancel: threading.Event | None = None
        # Polled by llama.cpp between compute steps while a prompt is evaluated, so a
        # cancel lands mid-prompt; installed only then, as it costs a Python call per step.
        self._abort_cb = ll.ggml_abort_callback(lambda _data: self._cancel is not None and self._cancel.is_set())
        self._cached: list[int] = []

        mparams = ll.llama_model_default_params()
        # Where the CPU advertises AMX but cannot run it, llama.cpp's extra buffer
        # types would route matmuls to kernels that die with SIGILL (cpu_probe.py).
        self.cpu_verdict = probe_cpu()
        if not self.cpu_verdict.extra_buffer_types and hasattr(mparams, "use_extra_bufts"):
            mparams.use_extra_bufts = False
        if n_gpu_layers is None:
            n_gpu_layers = -1 if ll.llama_supports_gpu_offload() else 0
        mparams.n_gpu_layers = n_gpu_layers

        def progress(fraction: float, _data) -> bool:
            if on_progress is not None:
                on_progress(float(fraction))
            return not (cancel_load is not None and cancel_load.is_set())

        self._progress_cb = ll.llama_progress_callback(progress)
        mparams.progress_callback = self._progress_cb
        self._model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not self._model:
            if cancel_load is not None and cancel_load.is_set():
                raise LoadCancelled("model loading cancelled")
            raise BackendError(f"llama.cpp could not load {path}:\n{recent_llama_log()}")

        trained = ll.llama_model_n_ctx_train(self._model)
        n_ctx = min(n_ctx, trained) if trained > 0 else n_ctx
        gen_threads, batch_threads = default_threads()
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = n_threads or gen_threads
        cparams.n_threads_batch = n_threads_batch or n_threads or batch_threads
        cparams.flash_attn_type = (ll.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention
                                   else ll.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        # Without a full-size SWA cache, reusing a prefix that ends far back gives wrong logits.
        cparams.swa_full = True
        cparams.no_perf = False
        self._ctx = ll.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            ll.llama_model_free(self._model)
            raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens for {path}:\n"
                               f"{recent_llama_log()}")
        self._memory = ll.llama_get_memory(self._ctx)
        self.n_ctx = ll.llama_n_ctx(self._ctx)
        self.n_batch = n_batch
        self.n_vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(self._model))
        self._sampler = self._build_sampler(sampling)
        self.info = ModelInfo(
            path=str(path),
            name=meta.values.get("general.name") or path.stem,
            architecture=meta.architecture,
            quantization=quantization_name(meta.values.get("general.file_type")),
            context_window=self.n_ctx,
            extra={"gpu_layers": n_gpu_layers, "threads": cparams.n_threads,
                   "trained_context": trained, "cpu": self.cpu_verdict.describe()},
        )

    # ------------------------------------------------------------------ public

    def generate(self, prompt: Sequence[int], *, stop: Collection[int], on_token: TokenCallback,
                 cancel: threading.Event, max_tokens: int) -> GenerationStats:
        """Evaluate only what the KV cache lacks, then sample until a stop rule fires."""
        if not prompt:
            raise BackendError("empty prompt")
        if len(prompt) >= self.n_ctx:
            raise ContextFullError(f"prompt of {len(prompt)} tokens does not fit the {self.n_ctx}-token context")
        max_tokens = min(max_tokens, self.n_ctx - len(prompt))
        started = time.perf_counter()
        reused = self._reuse_prefix(prompt)
        evaluated = len(prompt) - reused
        if not self._decode(prompt[reused:], cancel):
            return GenerationStats(len(prompt), reused, evaluated, 0,
                                   time.perf_counter() - started, 0.0, "cancelled")
        prompt_done = time.perf_counter()
        generated, reason = self._sample_loop(stop, on_token, cancel, max_tokens)
        return GenerationStats(len(prompt), reused, evaluated, generated,
                               prompt_done - started, time.perf_counter() - prompt_done, reason)

    def logits_for(self, prompt: Sequence[int]) -> list[float]:
        """The next-token logits after `prompt`, reusing the cache like `generate` (diagnostics, tests)."""
        reused = self._reuse_prefix(prompt)
        self._decode(prompt[reused:])
        row = ll.llama_get_logits_ith(self._ctx, -1)
        return [row[i] for i in range(self.n_vocab)]

    def decoded_token_count(self) -> int:
        """Tokens llama.cpp itself has decoded since load (its perf counters), prompt and sampled."""
        data = ll.llama_perf_context(self._ctx)
        return int(data.n_p_eval) + int(data.n_eval)

    def reset(self) -> None:
        """Forget the KV cache (a new conversation; benchmarks measuring a cold prompt)."""
        ll.llama_memory_clear(self._memory, True)
        self._cached.clear()

    @property
    def cached_tokens(self) -> tuple[int, ...]:
        return tuple(self._cached)

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """llama.cpp's own tokenizer: only for trusted text on non-Harmony models (benchmarks, gemma)."""
        vocab = ll.llama_model_get_vocab(self._model)
        data = text.encode("utf-8")
        buf = (ll.llama_token * (len(data) + 16))()
        n = ll.llama_tokenize(vocab, data, len(data), buf, len(buf), True, special)
        if n < 0:
            raise BackendError("tokenization overflow")
        return list(buf[:n])

    def token_piece(self, token: int) -> str:
        """llama.cpp's text for one token (non-Harmony models; Harmony text goes through the codec)."""
        vocab = ll.llama_model_get_vocab(self._model)
        buf = ctypes.create_string_buffer(256)
        n = ll.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
        return buf.raw[:max(n, 0)].decode("utf-8", errors="replace")

    def close(self) -> None:
        if getattr(self, "_sampler", None):
            ll.llama_sampler_free(self._sampler)
            self._sampler = None
        if getattr(self, "_ctx", None):
            ll.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            ll.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ internals

    def _build_sampler(self, s: SamplingSettings):
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        if s.temperature <= 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
            return chain
        if s.top_k > 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(s.top_k))
        if s.top_p < 1.0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0.0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_min_p(s.min_p, 1))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(s.temperature))
        seed = s.seed if s.seed is not None else ll.LLAMA_DEFAULT_SEED
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(seed))
        return chain

    def _reuse_prefix(self, prompt: Sequence[int]) -> int:
        """Keep the longest cached prefix of `prompt` (always leaving one token to evaluate)."""
        cached = self._cached
        common = reusable_prefix(cached, prompt)
        if common < len(cached):
            if not ll.llama_memory_seq_rm(self._memory, 0, common, -1):
                ll.llama_memory_clear(self._memory, True)
                common = 0
            del cached[common:]
        return common

    def _decode(self, tokens: Sequence[int], cancel: threading.Event | None = None) -> bool:
        """Evaluate tokens in batches; False if cancelled part-way (the cache stays consistent)."""
        watch = cancel is not None and len(tokens) > 1
        if watch:
            self._cancel = cancel
            ll.llama_set_abort_callback(self._ctx, self._abort_cb, None)
        try:
            for start in range(0, len(tokens), self.n_batch):
                if cancel is not None and cancel.is_set():
                    return False
                chunk = tokens[start:start + self.n_batch]
                array = (ll.llama_token * len(chunk))(*chunk)
                status = ll.llama_decode(self._ctx, ll.llama_batch_get_one(array, len(chunk)))
                if status == 0:
                    self._cached.extend(chunk)
                    continue
                # Ubatches processed before an abort stay in the cache: re-sync our record.
                kept = ll.llama_memory_seq_pos_max(self._memory, 0) + 1
                self._cached.extend(chunk)
                del self._cached[max(kept, 0):]
                if status == 2:
                    return False
                if status == 1:
                    raise ContextFullError(f"the KV cache has no room for {len(chunk)} more tokens "
                                           f"(context {self.n_ctx})")
                raise BackendError(f"llama_decode failed with status {status}:\n{recent_llama_log()}")
            return True
        finally:
            if watch:
                ll.llama_set_abort_callback(self._ctx, ll.ggml_abort_callback(0), None)
                self._cancel = None

    def _sample_loop(self, stop: Collection[int], on_token: TokenCallback, cancel: threading.Event,
                     max_tokens: int) -> tuple[int, str]:
        sampler, ctx = self._sampler, self._ctx
        generated = 0
        while generated < max_tokens:
            if cancel.is_set():
                return generated, "cancelled"
            token = ll.llama_sampler_sample(sampler, ctx, -1)
            generated += 1
            requested = on_token(token)
            if token in stop:
                return generated, "stop_token"
            if requested:
                return generated, "requested"
            if generated >= max_tokens:
                break
            self._decode((token,))
        return generated, "max_tokens"
