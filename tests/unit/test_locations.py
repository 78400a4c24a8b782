"""Where gptoss-agent keeps its own files: each override moves every file of its kind, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_agent.agent import locations


@pytest.fixture
def roots(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    roots = {name: tmp_path / name for name in ("state", "cache", "data")}
    monkeypatch.setenv("GPTOSS_AGENT_STATE_DIR", str(roots["state"]))
    monkeypatch.setenv("GPTOSS_AGENT_CACHE_DIR", str(roots["cache"]))
    monkeypatch.setenv("GPTOSS_AGENT_DATA_DIR", str(roots["data"]))
    monkeypatch.setenv("GPTOSS_AGENT_CONFIG", str(tmp_path / "my-config.toml"))
    return roots


def test_every_file_of_the_program_lands_under_its_override(roots, tmp_path):
    from gptoss_agent.agent.config import trust_store_path, user_config_path
    from gptoss_agent.agent.model import vocab
    from gptoss_agent.agent.model.discovery import models_dir
    from gptoss_agent.agent.session import SessionLog
    from gptoss_agent.tools.repomap import cache_path
    from gptoss_agent.tools.sandbox.overlay import layers_base
    from gptoss_agent.tools.tests import build_cache

    repo = tmp_path / "repo"
    repo.mkdir()
    log = SessionLog.create(repo=str(repo), task="t", config={})
    log.close()
    placed = {
        "state": [log.path, trust_store_path(), layers_base(), locations.batch_worktrees_dir()],
        "cache": [vocab.cache_dir(), cache_path(repo), build_cache(repo)],
        "data": [models_dir()],
    }
    for root, paths in placed.items():
        for path in paths:
            assert path is not None and Path(path).is_relative_to(roots[root]), (root, path)
    assert user_config_path() == tmp_path / "my-config.toml"


def test_an_empty_override_is_no_override_and_the_platform_folders_follow_xdg(tmp_path, monkeypatch):
    for name in ("GPTOSS_AGENT_STATE_DIR", "GPTOSS_AGENT_CACHE_DIR", "GPTOSS_AGENT_DATA_DIR", "GPTOSS_AGENT_CONFIG"):
        monkeypatch.setenv(name, "")
    for name in ("STATE", "CACHE", "DATA", "CONFIG"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    assert locations.sessions_dir() == tmp_path / "state" / "gptoss-agent" / "sessions"
    assert locations.vocab_dir() == tmp_path / "cache" / "gptoss-agent" / "vocab"
    assert locations.models_dir() == tmp_path / "data" / "gptoss-agent" / "models"
    assert locations.user_config_path() == tmp_path / "config" / "gptoss-agent" / "config.toml"
