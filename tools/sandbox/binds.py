"""Which host folders a command gets back inside the trees the sandbox hides: the toolchain's bin and lib
folders under $HOME, this Python's prefix, PATH entries, and the project's Python environment.

Both mechanisms use these lists: bwrap re-binds them read-only over its tmpfs, the Landlock fallback
allows reading them. Pure apart from looking at the file system.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from gptoss_agent.tools.sandbox.secrets import credentials_deep

# Toolchain folders under $HOME a command may need: bin and lib folders only, never a whole dot-folder
# (~/.cargo holds credentials.toml next to bin/). PATH entries and this Python's prefix are added as found.
_HOME_TOOLCHAINS = (".pyenv/versions", ".pyenv/shims", ".pyenv/bin", ".pyenv/libexec", ".cargo/bin",
                    ".cargo/registry", ".cargo/git", ".rustup/toolchains", ".rustup/settings.toml", ".local/bin",
                    ".local/lib", ".nvm/versions", ".volta/bin", ".volta/tools", "go/bin", "go/pkg/mod",
                    ".sdkman/candidates", ".deno/bin", ".bun/bin", ".local/share/uv/python")
# Trees a command never sees whole (bwrap: tmpfs over them; Landlock: left out), re-bound parts excepted.
PRIVATE_TREES = ("/root", "/home")
# Where a project environment's folder may be re-bound from (elsewhere it is visible already, or never shown).
_BIND_TREES = ("/root", "/home", "/tmp", "/var/tmp")


def environment_binds(visible: tuple[Path, ...]) -> tuple[Path, ...]:
    """The project environment's folders that need a bind: under a tree the sandbox hides (/root, /home, /tmp,
    /var/tmp; anything else is shown already, and a bind over a system folder would re-mask it), never a
    pseudo filesystem, and small enough to be masked to full depth (tools.sandbox_secrets.credentials_deep).
    tools.python_env already refuses the rest; this is the sandbox's own guard."""
    kept = []
    for path in visible:
        real = Path(os.path.realpath(path))
        if real != path or not any(real.is_relative_to(tree) and real != Path(tree) for tree in _BIND_TREES):
            continue
        if credentials_deep(real) is None:
            continue  # too big to mask to full depth: not shown
        kept.append(real)
    return tuple(kept)


def toolchain_paths(home: Path, environment: tuple[Path, ...] = ()) -> list[Path]:
    """Folders under $HOME the toolchain needs (this Python, PATH entries), to re-bind read-only, and the
    project's Python environment (`environment`: already checked by tools.python_env.visible_folders)."""
    return list(_toolchain_paths_for(home, os.environ.get("PATH", ""), environment))


@lru_cache(maxsize=8)
def _toolchain_paths_for(home: Path, path_variable: str, environment: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    candidates += [Path(p) for p in path_variable.split(os.pathsep) if p]
    candidates += [home / name for name in _HOME_TOOLCHAINS]
    private = [home] + [Path(p) for p in PRIVATE_TREES]
    seen: list[Path] = []
    for path in candidates:
        try:
            resolved = path.resolve()
        except OSError:
            continue
        inside = any(resolved.is_relative_to(tree) and resolved != tree for tree in private)
        if inside and _reachable(resolved) and resolved not in seen:
            seen.append(resolved)
    # The project's environment may live anywhere (a venv in /tmp is hidden by the sandbox's own /tmp).
    seen += [path for path in environment if _reachable(path) and path not in seen]
    # One bind per top-most folder: every bind costs bwrap a mount.
    seen.sort(key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in seen:
        if not any(path.is_relative_to(parent) for parent in kept):
            kept.append(path)
    return tuple(kept)


def _reachable(path: Path) -> bool:
    """Whether `path` exists for us. A PATH entry under a folder we may not enter (root's
    ~/.local/bin seen by another user) is simply not there: never a reason to fail a command."""
    try:
        return path.exists()
    except OSError:
        return False
