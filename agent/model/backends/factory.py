"""Pick and build the backend a run asked for: `llama`, `replay:FILE` or `http://HOST:PORT`."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

from gptoss_agent.agent.config import Settings
from gptoss_agent.agent.model.harmony import HarmonyCodec
from gptoss_agent.agent.protocols import Backend


class BackendSpecError(ValueError):
    """The --backend value names no known backend."""


def describe(spec: str) -> str:
    """The backend's kind as shown in events and the status bar."""
    if spec.startswith("replay:"):
        return "replay"
    if spec.startswith(("http://", "https://")):
        return "http"
    return spec


def make_backend(spec: str, *, settings: Settings, codec: HarmonyCodec, model_path: Path | None = None,
                 on_progress: Callable[[float], None] | None = None,
                 cancel_load: threading.Event | None = None) -> Backend:
    """Build the backend for `spec`; llama_cpp is imported only when spec is `llama`."""
    if spec == "llama":
        if model_path is None:
            raise BackendSpecError("the llama backend needs a model file")
        from gptoss_agent.agent.model.backends.llama import LlamaBackend, SamplingSettings

        return LlamaBackend(model_path, n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                            n_gpu_layers=settings.n_gpu_layers, flash_attention=settings.flash_attention,
                            sampling=SamplingSettings(settings.temperature, settings.top_p, seed=settings.seed),
                            on_progress=on_progress, cancel_load=cancel_load)
    if spec.startswith("replay:"):
        from gptoss_agent.agent.model.backends.replay import ReplayBackend

        # A per-token delay makes a replay stream at a model's pace (demos, cancellation tests).
        delay = float(os.environ.get("GPTOSS_AGENT_REPLAY_TOKEN_DELAY", "0") or 0)
        return ReplayBackend.from_file(spec[len("replay:"):], codec, token_delay_s=delay)
    if spec.startswith(("http://", "https://")):
        from gptoss_agent.agent.model.backends.http import HTTPBackend

        return HTTPBackend(spec, codec, allow_remote=settings.allow_remote, model=settings.server_model,
                           temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
    raise BackendSpecError(f"unknown backend {spec!r}: use llama, replay:FILE or http://HOST:PORT")
