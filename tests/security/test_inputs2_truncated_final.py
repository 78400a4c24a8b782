"""A final answer cut off by the per-step token limit is not the answer: the model is told and
writes it again; if it keeps being cut off the run ends failed ("truncated answer"), never completed."""

from __future__ import annotations

from tests.fixtures.repos import final, write_replay
from tests.security.settings_helpers import cli, events, repo  # noqa: F401 (fixture)

LONG = "The fix is: do NOT run rm -rf on " + "word " * 200
LIMIT = {"GPTOSS_AGENT_MAX_TOKENS_PER_STEP": "12"}


def test_a_cut_off_final_is_retried_and_the_complete_one_is_the_answer(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [final(LONG), final("Short.")])
    done = cli("exec", "--json", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo, env=LIMIT)
    assert done.returncode == 0, done.stderr[-2000:]
    finished = events(done.stdout)[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "completed" and finished["steps"] == 2
    assert any(e["type"] == "error" and "cut off" in str(e) for e in events(done.stdout)), done.stdout[-2000:]


def test_a_final_that_keeps_being_cut_off_ends_failed_not_completed(repo, tmp_path):
    replay = write_replay(tmp_path / "r.json", [final(LONG)] * 6)
    done = cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo, env=LIMIT)
    assert "completed" not in done.stdout
    assert "truncated answer" in done.stdout + done.stderr
    assert "cut off by the token limit" in done.stdout + done.stderr
