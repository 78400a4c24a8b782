"""Shared by the composition-root tests: the CLI as a subprocess, the replay scripts, the escape probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import FIX_PATCH, call, final, git, make_calc_repo

COMMIT_ANYWAY = [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                 call("functions.git_commit", {"message": "Commit although told not to"}),
                 final("Done.")]


def cli(*args, cwd, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


def commits(repo: Path) -> int:
    return len(git(repo, "log", "--oneline").splitlines())


OUTSIDE_WRITE = "touch {target} && echo wrote"


def escape_attempt(tmp_path: Path) -> tuple[Path, list[str]]:
    target = tmp_path / "outside" / "escaped"
    target.parent.mkdir()
    return target, [call("container.exec", {"cmd": OUTSIDE_WRITE.format(target=target)}), final("ok")]


def developer_text(state: Path, codec) -> str:
    texts = []
    for log in (state / "sessions").glob("*.jsonl"):
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "segment" and record.get("segment") == "developer":
                texts.append(codec.decode(record["tokens"]))
    return "\n".join(texts)
