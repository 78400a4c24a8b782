"""test_timeout: how long the suite may run, from a repository's file, the user's config or --test-timeout."""

from __future__ import annotations

import pytest

from gptoss_agent.agent.frontends.cli import build_parser
from gptoss_agent.agent.config import load_settings_with_origins
from gptoss_agent.agent.runtime import RunOptions


def env_for(tmp_path):
    return {"GPTOSS_AGENT_CONFIG": str(tmp_path / "user.toml")}


def test_a_repository_may_set_a_sane_suite_timeout(tmp_path):
    (tmp_path / ".gptoss-agent.toml").write_text("test_timeout = 1200\n")
    loaded = load_settings_with_origins(tmp_path, env=env_for(tmp_path))
    assert loaded.settings.test_timeout == 1200 and loaded.repo_report is None


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "100000"])
def test_a_repository_cannot_set_an_endless_or_absurd_timeout(tmp_path, value):
    (tmp_path / ".gptoss-agent.toml").write_text(f"test_timeout = {value}\n")
    loaded = load_settings_with_origins(tmp_path, env=env_for(tmp_path))
    assert loaded.settings.test_timeout == 600  # the default stays
    assert "test_timeout must be between 1 and 7200" in loaded.repo_report.message()


def test_the_flag_reaches_the_settings_over_the_repository_file(tmp_path):
    (tmp_path / ".gptoss-agent.toml").write_text("test_timeout = 1200\n")
    args = build_parser().parse_args(["fix", "--test-timeout", "30"])
    options = RunOptions(test_timeout=args.test_timeout)
    loaded = load_settings_with_origins(tmp_path, env=env_for(tmp_path), flags=options.flags())
    assert loaded.settings.test_timeout == 30 and loaded.origin("test_timeout") == "the --test-timeout flag"


@pytest.mark.parametrize("command", ["exec", "batch"])
def test_exec_and_batch_take_the_flag_too(command):
    extra = ["task"] if command == "exec" else ["plan.toml"]
    assert build_parser().parse_args([command, "--test-timeout", "45", *extra]).test_timeout == 45


def test_a_zero_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["fix", "--test-timeout", "0"])
    assert exit_info.value.code == 2 and "must be at least 1" in capsys.readouterr().err
