"""Settings layers: defaults < repo config (harmless keys) < user config < env < flags, each validated."""

from __future__ import annotations

import pytest

from gptoss_agent.agent.config import ConfigError, load_settings


def env_for(tmp_path, **extra):
    return {"GPTOSS_AGENT_CONFIG": str(tmp_path / "user.toml"), **extra}


def test_layers_override_in_order(tmp_path):
    (tmp_path / "user.toml").write_text('reasoning = "low"\nn_ctx = 16384\nmax_steps = 10\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gptoss-agent.toml").write_text('reasoning = "high"\ntemperature = 0.5\n')
    env = env_for(tmp_path, GPTOSS_AGENT_MAX_STEPS="20", GPTOSS_AGENT_FLASH_ATTENTION="off")
    settings = load_settings(repo, env=env, flags={"max_steps": 30, "model": None})
    # the user's own config wins over the repository's file; the repository's wins over the defaults
    assert (settings.reasoning, settings.n_ctx, settings.temperature) == ("low", 16384, 0.5)
    assert settings.max_steps == 30 and settings.flash_attention is False and settings.model is None


def test_unknown_key_names_the_file(tmp_path):
    (tmp_path / "user.toml").write_text("temprature = 1.0\n")
    with pytest.raises(ConfigError, match=r"user\.toml: unknown setting 'temprature'"):
        load_settings(None, env=env_for(tmp_path))


def test_wrong_type_is_refused(tmp_path):
    (tmp_path / "user.toml").write_text('n_ctx = "big"\n')
    with pytest.raises(ConfigError, match="n_ctx must be int"):
        load_settings(None, env=env_for(tmp_path))


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="GPTOSS_AGENT_N_CTX"):
        load_settings(None, env=env_for(tmp_path, GPTOSS_AGENT_N_CTX="lots"))


def test_invalid_choice_and_range(tmp_path):
    with pytest.raises(ConfigError, match="reasoning must be one of"):
        load_settings(None, env=env_for(tmp_path), flags={"reasoning": "extreme"})
    with pytest.raises(ConfigError, match="n_ctx must be between"):
        load_settings(None, env=env_for(tmp_path), flags={"n_ctx": 1_000_000})


def test_malformed_toml_is_a_config_error(tmp_path):
    (tmp_path / "user.toml").write_text("reasoning = \n")
    with pytest.raises(ConfigError, match="user.toml"):
        load_settings(None, env=env_for(tmp_path))
