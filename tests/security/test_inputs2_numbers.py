"""Integers past Python's 4300-digit conversion limit are bad data, never a crash.

Python's int(str) raises ValueError past `sys.get_int_max_str_digits()` digits, and json/tomllib
convert integers with it. Every parser of untrusted text must treat that as malformed input:
the model gets a format error, a test summary becomes unknown, a repository settings file is
ignored with a warning, a session log or batch manifest line is skipped with a warning.
"""

from __future__ import annotations

import json

from gptoss_agent.agent.frontends.batch import Manifest
from tests.fixtures.repos import call, final, write_replay
from tests.security.settings_helpers import cli, events, repo  # noqa: F401 (fixture)
from gptoss_agent.tools.test_summaries import parse_summary

HUGE = "9" * 5000


def test_a_tool_call_with_a_5000_digit_integer_is_a_format_error_the_model_reads(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [
        call("repo_browser.open_file", '{"path": "calc.py", "line_start": ' + "1" * 5000 + "}"), final("done")])
    done = cli("exec", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [e for e in events(done.stdout) if e["type"] == "tool_result"]
    assert len(results) == 1 and not results[0]["ok"]
    assert "number too long" in results[0]["output"]
    assert events(done.stdout)[-1]["status"] == "completed"


def test_a_digit_string_past_the_limit_for_an_integer_parameter_is_refused_not_raised(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [
        call("repo_browser.open_file", {"path": "calc.py", "line_start": HUGE}), final("done")])
    done = cli("exec", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [e for e in events(done.stdout) if e["type"] == "tool_result"]
    assert len(results) == 1 and not results[0]["ok"]


def test_a_test_summary_with_a_5000_digit_count_is_unknown():
    assert parse_summary(f"===== {HUGE} passed in 0.1s =====\n") is None
    assert parse_summary(f"Ran {HUGE} tests in 0.1s\n\nOK\n") is None
    assert parse_summary("===== 3 passed in 0.1s =====\n").passed == 3  # an ordinary one still counts


def test_a_repository_settings_file_with_a_5000_digit_value_is_ignored_with_a_warning(repo, tmp_path):
    (repo / ".gptoss-agent.toml").write_text(f"max_steps = {HUGE}\n")
    replay = write_replay(tmp_path / "r.json", [final("done")])
    done = cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not valid TOML" in done.stdout + done.stderr
    assert "completed" in done.stdout


def test_a_session_log_line_with_a_5000_digit_integer_is_skipped_with_a_warning(repo, tmp_path, isolated_state):
    replay = write_replay(tmp_path / "r.json", [final("done")])
    assert cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo).returncode == 0
    logs = sorted((isolated_state / "state" / "sessions").glob("*.jsonl"))
    lines = logs[-1].read_text().splitlines(keepends=True)
    lines.insert(2, '{"kind": "segment", "t": ' + HUGE + "}\n")
    logs[-1].write_text("".join(lines))
    done = cli("sessions", "--all", cwd=repo)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{logs[-1]} line 3: skipped" in done.stderr
    assert logs[-1].stem in done.stdout


def test_a_manifest_line_with_a_5000_digit_integer_is_skipped_with_a_warning(tmp_path):
    manifest = tmp_path / "plan.manifest.jsonl"
    good = {"batch": "b1", "task": "a", "status": "failed", "branch": "", "commit": None}
    manifest.write_text('{"batch": "b1", "task": "z", "added": ' + HUGE + "}\n" + json.dumps(good) + "\n")
    batch, finished, warnings = Manifest(manifest).read()
    assert any(f"{manifest} line 1: record skipped" in w for w in warnings), warnings
    assert batch == "b1" and list(finished) == ["a"]
