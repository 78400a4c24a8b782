"""Hostile repositories for the host-git tests: each evil program leaves a marker file when it runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git(repo: Path, *args: str, env: dict | None = None) -> str:
    """The test's own git (plain, unhardened: it is how the attacker prepares the repository)."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "notes.txt").write_text("plain notes\n")
    (root / "README.md").write_text("# project\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def evil_program(folder: Path, tag: str) -> str:
    """A program that records that it ran (marker file `ran-TAG`), then passes stdin through."""
    script = folder / f"evil-{tag}.sh"
    script.write_text(f"#!/bin/sh\ntouch '{folder}/ran-{tag}'\ncat\n")
    script.chmod(0o755)
    return str(script)


def markers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("ran-*"))


def make_stat_dirty(path: Path) -> None:
    """Change a file's stat data so git must re-read (and re-filter) it."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
