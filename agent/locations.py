"""Every folder and file of gptoss-agent's own, resolved in one place (never inside a repository).

Four roots, each with an environment override (tests, CI, and people who keep
such things elsewhere) and otherwise the platform's convention (platformdirs:
the XDG folders on Linux):

- state  (GPTOSS_AGENT_STATE_DIR): sessions, trust decisions, batch worktrees, overlay layers
- cache  (GPTOSS_AGENT_CACHE_DIR): the derived vocabulary and CPU probe, repo maps, Go's build cache
- data   (GPTOSS_AGENT_DATA_DIR):  the models `model pull` saves
- config (GPTOSS_AGENT_CONFIG):    the user's config.toml (the variable names the file itself)

An override that is set but empty counts as not set. Every function takes the
environment as an argument (default: the process's), so a caller can resolve
another one's folders and tests need not touch os.environ.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

APP_NAME = "gptoss-agent"
STATE_DIR_VARIABLE = "GPTOSS_AGENT_STATE_DIR"
CACHE_DIR_VARIABLE = "GPTOSS_AGENT_CACHE_DIR"
DATA_DIR_VARIABLE = "GPTOSS_AGENT_DATA_DIR"
CONFIG_FILE_VARIABLE = "GPTOSS_AGENT_CONFIG"


def _platform_dir(kind: str) -> Path:
    """The platform's folder of one kind ("state", "cache", "data", "config") for this program (platformdirs,
    imported only when no override is set: it costs start-up time)."""
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME))


def _overridden(env: Mapping[str, str], variable: str) -> Path | None:
    """The folder or file a non-empty environment variable names, else None (an empty one is as if unset)."""
    return Path(env[variable]) if env.get(variable) else None


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's own state folder (sessions, trust decisions)."""
    return _overridden(env, STATE_DIR_VARIABLE) or _platform_dir("state")


def state_dir_candidates(env: Mapping[str, str] = os.environ) -> list[Path]:
    """The state folders to try in order where one must be usable: the override, then the platform's.

    The platform's is left out when platformdirs cannot be imported; the caller has its own last resort.
    """
    candidates = [found] if (found := _overridden(env, STATE_DIR_VARIABLE)) else []
    try:
        return [*candidates, _platform_dir("state")]
    except ImportError:
        return candidates


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's cache folder: everything in it can be derived again."""
    return _overridden(env, CACHE_DIR_VARIABLE) or _platform_dir("cache")


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's data folder: what was fetched and is worth keeping (models)."""
    return _overridden(env, DATA_DIR_VARIABLE) or _platform_dir("data")


def user_config_path(env: Mapping[str, str] = os.environ) -> Path:
    """The user's own config.toml."""
    return _overridden(env, CONFIG_FILE_VARIABLE) or _platform_dir("config") / "config.toml"


def sessions_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Every session's JSONL log."""
    return state_dir(env) / "sessions"


def batch_worktrees_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The worktrees `batch` runs its tasks in."""
    return state_dir(env) / "worktrees"


def trust_store_path(env: Mapping[str, str] = os.environ) -> Path:
    """The remembered trust decisions about repositories' own settings files."""
    return state_dir(env) / "trusted-repo-settings.json"


def vocab_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The vocabulary derived from a GGUF (and the CPU probe's verdicts beside it)."""
    return cache_dir(env) / "vocab"


def repomap_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The repo maps' tag caches, one file per repository."""
    return cache_dir(env) / "repomap"


def go_build_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Go's build caches, one folder per repository."""
    return cache_dir(env) / "go-build"


def models_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Our own models folder, where `model pull` saves the GGUF."""
    return data_dir(env) / "models"
