"""Plain, frozen data that crosses module boundaries: tool declarations, stats, events.

Nothing here does work; keeping these in one dependency-free module lets the
core, the backends, the TUI and the tests share them without import cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal



@dataclass(frozen=True)
class ToolDeclaration:
    """A tool as the model is told about it.

    `namespace` is the Harmony namespace: `functions` tools are declared in the
    developer message; `repo_browser` and `container`, which gpt-oss was trained
    to call, are declared as system-message namespaces.
    """

    namespace: str
    name: str
    description: str
    parameters: dict[str, Any] | None = None

    @property
    def recipient(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class GenerationStats:
    """What one `Backend.generate` call did, measured by the backend itself."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache
    evaluated_tokens: int = 0  # prompt tokens the model actually processed
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    stop_reason: Literal["stop_token", "requested", "max_tokens", "cancelled", "exhausted"] = "stop_token"

    @property
    def prompt_tokens_per_second(self) -> float:
        return self.evaluated_tokens / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def generation_tokens_per_second(self) -> float:
        return self.generated_tokens / self.generation_seconds if self.generation_seconds > 0 else 0.0


@dataclass(frozen=True)
class ModelInfo:
    """What the status bar and `model where` say about a loaded model."""

    path: str
    name: str
    architecture: str | None = None
    quantization: str | None = None
    context_window: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolResult:
    """What a tool hands back: `output` is what the model reads (already capped);
    `display` is a richer rendering for people (a coloured diff); `data` is structured."""

    ok: bool
    output: str
    truncated: bool = False
    display: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def error(cls, message: str, **data: Any) -> "ToolResult":
        return cls(False, message, data=data)
