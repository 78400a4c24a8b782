"""The model an ACP process loads once and lends to every session, one generation at a time.

No `acp` import here: the loader starts right after the handshake, while the
SDK (whose schema takes about a second to import) is still loading.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from gptoss_agent.agent.runtime import RunOptions, SetupError


class SerialBackend:
    """One loaded model for every session: one generation at a time, a cancelled wait ends at once."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()

    def generate(self, prompt, *, cancel: threading.Event, **kwargs):
        from gptoss_agent.agent.types import GenerationStats

        while not self._lock.acquire(timeout=0.05):
            if cancel.is_set():
                return GenerationStats(len(prompt), 0, 0, 0, 0.0, 0.0, "cancelled")
        try:
            return self._backend.generate(prompt, cancel=cancel, **kwargs)
        finally:
            self._lock.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class ModelLoader:
    """Loads the model once, in a thread, from the process's options and the user's own settings.

    The model is the user's choice (flags, their config, the environment); a
    repository's settings file cannot pick it, so no session's repository is read.
    """

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.ready = threading.Event()
        self.model = None
        self.error: str | None = None
        self.fraction = 0.0
        self.notices: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="gptoss-acp-model", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        from gptoss_agent.agent.runtime import load_model, resolve_settings

        try:
            settings = resolve_settings(None, self.options).settings
            model = load_model(settings, sink=lambda notice: self.notices.append(notice.text),
                               on_progress=self._progress)
            self.model = dataclasses.replace(model, backend=SerialBackend(model.backend))
        except SetupError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is the editor's one-line error
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.fraction = 1.0
            self.ready.set()

    def _progress(self, fraction: float) -> None:
        self.fraction = max(0.0, min(1.0, float(fraction)))
