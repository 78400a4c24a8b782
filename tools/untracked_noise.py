"""Untracked files that are not the user's work: environments, caches and build outputs.

`fix` refuses a work tree with uncommitted changes so that it never mixes the user's edits with its own.
An untracked `.venv` (toolz and marshmallow ship no ignore rule for it), `__pycache__` or `node_modules`
is not an edit of the user's, and refusing for it after the whole suite ran was the first thing a real
user hit. Only UNTRACKED entries are set aside: a tracked file modified under `build/` is still work.

Matched by what they are, not by name alone: given the work tree, the component that makes a path noise
must be a real folder (not a link: a repository's `.venv -> src` would make the user's new `src/feature.py`
"noise", and the model could then delete it), and a project environment's folder must look like one (a
`pyvenv.cfg` or `conda-meta`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

# Any path component with one of these names: an environment or a cache, wherever it sits.
ANYWHERE = frozenset({".venv", "venv", "__pycache__", ".tox", ".nox", "node_modules", ".pytest_cache", ".mypy_cache",
                      ".ruff_cache", ".hypothesis", ".eggs", "__pypackages__", ".ipynb_checkpoints"})
# Build outputs: only at the top of the repository (a `build/` deep inside a source tree may be code).
TOP_LEVEL = frozenset({"build", "dist", "target", "htmlcov", ".coverage"})


def is_noise(path: str, environments: Iterable[str] = (), workspace: Path | None = None) -> bool:
    """Whether an untracked `path` (relative, '/'-separated) is an environment, a cache or a build output.

    `environments`: folders (relative) the project's detected environment lives in, whatever their name.
    `workspace`: the work tree, to check what the matching component is (see the module docstring); without
    it, names alone decide (a pure check for callers that have only names).
    """
    parts = [part for part in path.split("/") if part]
    if not parts:
        return False
    if len(parts) == 1 and parts[0].endswith((".pyc", ".pyo")):
        return _plain_file(workspace, parts) if workspace is not None else True
    for depth, part in enumerate(parts):
        if (depth == 0 and part in TOP_LEVEL) or part in ANYWHERE or part.endswith(".egg-info"):
            if workspace is None:
                return True
            if depth == len(parts) - 1 and part in TOP_LEVEL | {".coverage"} and _plain_file(workspace, parts):
                return True  # `.coverage` is a file
            return _real_folder(workspace, parts[:depth + 1])
    for folder in environments:
        folder = folder.strip("/")
        if folder and (path.rstrip("/") == folder or path.startswith(folder + "/")):
            if workspace is None:
                return True
            inner = folder.split("/")
            return _real_folder(workspace, inner) and (
                os.path.isfile(workspace.joinpath(*inner, "pyvenv.cfg"))
                or os.path.isdir(workspace.joinpath(*inner, "conda-meta")))
    return False


def _real_folder(workspace: Path, parts: list[str]) -> bool:
    """Every component from the work tree down to `parts` is a real folder, none a link."""
    here = workspace
    for part in parts:
        here = here / part
        try:
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                return False
        except OSError:
            return False
    return True


def _plain_file(workspace: Path | None, parts: list[str]) -> bool:
    if workspace is None:
        return True
    try:
        return stat.S_ISREG(os.lstat(workspace.joinpath(*parts)).st_mode) and _real_folder(workspace, parts[:-1])
    except OSError:
        return False


def user_changes(entries: Iterable[tuple[str, str]], environments: Iterable[str] = (),
                 workspace: Path | None = None) -> set[str]:
    """The paths of `git status` entries (code, path) that are the user's work: all but untracked noise."""
    environments = list(environments)
    return {path for code, path in entries if not (code == "??" and is_noise(path, environments, workspace))}
