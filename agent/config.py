"""Settings, layered: defaults < user config.toml < repo .gptoss-agent.toml < env < flags.

Every layer is validated the same way: an unknown key or a value of the wrong
type is a one-line error naming the file (or variable) and the key, never a
silent default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, get_args, get_type_hints

ENV_PREFIX = "GPTOSS_AGENT_"
REPO_CONFIG = ".gptoss-agent.toml"
REASONING = ("low", "medium", "high")
APPROVAL = ("read-only", "ask", "auto-edit", "full-auto")


class ConfigError(ValueError):
    """A setting is unknown or malformed; the message names where it came from."""


@dataclass(frozen=True)
class Settings:
    """Everything a run can be configured with."""

    model: str | None = None
    backend: str = "llama"
    n_ctx: int = 32_768
    n_threads: int | None = None
    n_gpu_layers: int | None = None  # None: all layers when llama.cpp was built with a GPU
    flash_attention: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    reasoning: str = "medium"
    approval: str | None = None  # None: "ask" in the TUI, "full-auto" headless
    max_steps: int = 50
    max_tokens_per_step: int = 8_192
    allow_remote: bool = False
    test_cmd: str | None = None
    sandbox: str = "auto"
    map_tokens: int = 2_048  # repo map in the developer message; 0 disables it

    def __post_init__(self) -> None:
        if self.reasoning not in REASONING:
            raise ConfigError(f"reasoning must be one of {', '.join(REASONING)}, not {self.reasoning!r}")
        if self.approval is not None and self.approval not in APPROVAL:
            raise ConfigError(f"approval must be one of {', '.join(APPROVAL)}, not {self.approval!r}")
        if not 512 <= self.n_ctx <= 131_072:
            raise ConfigError(f"n_ctx must be between 512 and 131072 (the model's window), not {self.n_ctx}")


def user_config_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    import platformdirs

    return Path(platformdirs.user_config_dir("gptoss-agent")) / "config.toml"


def load_settings(repo_root: Path | None = None, *, env: Mapping[str, str] = os.environ,
                  flags: Mapping[str, Any] | None = None) -> Settings:
    """Merge every layer into one validated Settings."""
    merged: dict[str, Any] = {}
    for path in (user_config_path(env), (repo_root / REPO_CONFIG) if repo_root else None):
        if path is not None and path.is_file():
            merged.update(_from_toml(path))
    merged.update(_from_env(env))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    return _build(merged, "settings")


def _types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    types = _types()
    for key, value in data.items():
        if key not in types:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(types))})")
        _check_type(key, value, types[key], str(path))
    return data


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    types = _types()
    for key, kind in types.items():
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is not None and raw != "":
            out[key] = _coerce(raw, kind, ENV_PREFIX + key.upper())
    return out


def _coerce(raw: str, kind: Any, origin: str) -> Any:
    base = next((t for t in get_args(kind) if t is not type(None)), kind)
    try:
        if base is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        return base(raw)
    except ValueError:
        raise ConfigError(f"{origin}: {raw!r} is not a valid {base.__name__}") from None


def _check_type(key: str, value: Any, kind: Any, origin: str) -> None:
    allowed = tuple(t for t in (get_args(kind) or (kind,)))
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return
    if bool not in allowed and isinstance(value, bool):
        raise ConfigError(f"{origin}: {key} must be {_names(allowed)}, not a boolean")
    if not isinstance(value, allowed):
        raise ConfigError(f"{origin}: {key} must be {_names(allowed)}, not {type(value).__name__}")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types if t is not type(None))


def _build(values: dict[str, Any], origin: str) -> Settings:
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {', '.join(sorted(unknown))}")
    return dataclasses.replace(Settings(), **values)
