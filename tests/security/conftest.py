"""Fixtures for the adversarial suite: both sandbox mechanisms, a real repository, a hostile-command runner.

`mechanism` runs a test under bubblewrap and under the Landlock fallback; one
this machine cannot run is skipped with the reason. GPTOSS_AGENT_TEST_SANDBOX
(bwrap | landlock) narrows the run to one mechanism (.ci/run uses it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

MECHANISMS = ("bwrap", "landlock")


def _chosen() -> tuple[str, ...]:
    wanted = os.environ.get("GPTOSS_AGENT_TEST_SANDBOX", "").strip()
    return (wanted,) if wanted in MECHANISMS else MECHANISMS


@pytest.fixture(params=_chosen())
def mechanism(request) -> str:
    """'bwrap' or 'landlock'; skipped with the reason where this machine cannot confine that way."""
    from gptoss_agent.tools.sandbox import detect

    report = detect(request.param)
    if report.mechanism != request.param:
        pytest.skip(f"{request.param} unavailable here: {report.reason}")
    return request.param


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def sandbox_repo(tmp_path: Path) -> Path:
    """A small committed git repository (the workspace a hostile command runs in)."""
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "dev@example.com")
    _git(root, "config", "user.name", "Dev")
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def make_sandbox(sandbox_repo: Path, mechanism: str):
    """A factory for sandboxes over `sandbox_repo` with short limits (so a hostile test stays fast)."""
    from gptoss_agent.tools.sandbox import Limits, Sandbox

    def make(**limits) -> Sandbox:
        limits.setdefault("timeout_s", 20)
        return Sandbox(sandbox_repo, mode=mechanism, limits=Limits(**limits))

    return make


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch) -> Path:
    """$HOME pointed at a fresh folder the test fills with toolchains and credentials."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home
