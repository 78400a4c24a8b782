"""The CLI as a person runs it: fast help, honest model discovery, the offline vocabulary."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest


def cli(*args, env_extra=None, timeout=60):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_help_is_fast_and_imports_neither_llama_cpp_nor_textual():
    probe = ("import sys, time; t = time.perf_counter(); import gptoss_agent.agent.frontends.cli as c; c.build_parser().format_help();"
             "print(time.perf_counter() - t); print('llama_cpp' in sys.modules, 'textual' in sys.modules,"
             " 'openai_harmony' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[1] == "False False False"
    started = time.perf_counter()
    result = cli("--help")
    assert result.returncode == 0 and "model" in result.stdout
    assert time.perf_counter() - started < 5  # generous: a cold interpreter on a loaded CI box


def test_model_where_without_a_model_ends_well_and_says_how_to_get_one(tmp_path):
    """The README's first command, on a newcomer's machine: a report and the one fetch command, exit 0."""
    result = cli("model", "where", env_extra={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Hugging Face cache" in result.stdout
    assert "pip install 'gptoss-agent[pull]' && gptoss-agent model pull" in result.stdout


def test_missing_model_is_one_line_with_exit_2(tmp_path):
    result = cli("model", "info", env_extra={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.startswith("gptoss-agent: no gpt-oss model found")
    assert len(result.stderr.strip().splitlines()) == 1 and "gptoss-agent model where" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_help_name_the_real_options():
    assert cli("--version").stdout.strip().startswith("gptoss-agent 0.")
    text = cli("--help").stdout
    assert "TUI_MODEL" not in text and "TUI_BACKEND" not in text and "--model PATH" in text


@pytest.mark.parametrize("command", [["--help"], ["doctor"], ["model", "where"]])
def test_a_closed_pipe_is_quiet(tmp_path, command):
    """`gptoss-agent … | head`: no BrokenPipeError and no error line when the reader leaves."""
    reader = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *command], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE,
                              env={**os.environ, "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"})  # write at once
    reader.stdout.close()  # the reader leaves before the writer writes
    _, err = reader.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err and b"Errno 32" not in err, err
    assert reader.returncode in (0, 141)


def test_a_step_limit_below_one_is_a_usage_error(tmp_path):
    result = cli("exec", "--max-steps", "-1", "task")
    assert result.returncode == 2 and "must be at least 1" in result.stderr


def test_the_interactive_ui_refuses_without_a_terminal(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 2 and "needs a terminal" in result.stderr and "exec" in result.stderr


def test_model_info_reads_metadata_only(tiny_gguf):
    result = cli("model", "info", "--model", str(tiny_gguf))
    assert result.returncode == 0, result.stderr
    assert "gpt-oss" in result.stdout and "Q8_0" in result.stdout and "4 (2 active)" in result.stdout


def test_model_vocab_derives_the_canonical_file(tiny_gguf, tmp_path):
    result = cli("model", "vocab", str(tiny_gguf), env_extra={"GPTOSS_AGENT_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "vocab" / "o200k_base.tiktoken").is_file()
    assert "SHA-256 verified" in result.stdout


def test_model_vocab_refuses_a_non_gpt_oss_model(gemma_gguf, tmp_path):
    result = cli("model", "vocab", str(gemma_gguf), env_extra={"GPTOSS_AGENT_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 2 and "not the o200k BPE" in result.stderr


@pytest.mark.skipif(__import__("importlib").util.find_spec("huggingface_hub") is not None,
                    reason="huggingface_hub is installed here; this checks the message without it")
def test_model_pull_without_huggingface_hub_says_how_to_get_it():
    result = cli("model", "pull")
    assert result.returncode == 2 and "pip install 'gptoss-agent[pull]'" in result.stderr


def test_a_model_that_is_not_gpt_oss_is_refused_with_the_way_out(gemma_gguf, tmp_path):
    """A gemma3 GGUF is not "chosen" and loaded as if it were gpt-oss: one line naming it and the flag."""
    import subprocess as sp

    sp.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "exec", "--model", str(gemma_gguf), "hello"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "gemma3" in result.stderr and "--allow-any-model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
