"""Untracked files that are not the user's work: environments, caches and build outputs.

`fix` refuses a work tree with uncommitted changes so that it never mixes the user's edits with its own.
An untracked `.venv` (toolz and marshmallow ship no ignore rule for it), `__pycache__` or `node_modules`
is not an edit of the user's, and refusing for it after the whole suite ran was the first thing a real
user hit. Only UNTRACKED entries are set aside: a tracked file modified under `build/` is still work.
"""

from __future__ import annotations

from typing import Iterable

# Any path component with one of these names: an environment or a cache, wherever it sits.
ANYWHERE = frozenset({".venv", "venv", "__pycache__", ".tox", ".nox", "node_modules", ".pytest_cache", ".mypy_cache",
                      ".ruff_cache", ".hypothesis", ".eggs", "__pypackages__", ".ipynb_checkpoints"})
# Build outputs: only at the top of the repository (a `build/` deep inside a source tree may be code).
TOP_LEVEL = frozenset({"build", "dist", "target", "htmlcov", ".coverage"})


def is_noise(path: str, environments: Iterable[str] = ()) -> bool:
    """Whether an untracked `path` (relative, '/'-separated) is an environment, a cache or a build output.

    `environments`: folders (relative) the project's detected environment lives in, whatever their name.
    """
    parts = [part for part in path.split("/") if part]
    if not parts:
        return False
    if parts[0] in TOP_LEVEL or any(part in ANYWHERE or part.endswith(".egg-info") for part in parts):
        return True
    if len(parts) == 1 and parts[0].endswith((".pyc", ".pyo")):
        return True
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in environments if folder)


def user_changes(entries: Iterable[tuple[str, str]], environments: Iterable[str] = ()) -> set[str]:
    """The paths of `git status` entries (code, path) that are the user's work: all but untracked noise."""
    environments = list(environments)
    return {path for code, path in entries if not (code == "??" and is_noise(path, environments))}
