"""The Python API drives the same loop as `exec` and hands back the events."""

from __future__ import annotations

import json

from gptoss_agent.agent.frontends.api import run_task
from tests.fixtures.repos import FIX_PATCH, call, final, make_calc_repo


def test_run_task_returns_status_final_answer_and_events(tmp_path, vocab_dir):
    repo = make_calc_repo(tmp_path / "project")
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps([call("repo_browser.apply_patch", {"patch": FIX_PATCH}), final("Fixed add().")]))
    seen = []
    result = run_task(repo, "Fix add", backend=f"replay:{replay}", on_event=seen.append)
    assert (result.status, result.final, result.steps) == ("completed", "Fixed add().", 2)
    assert [e.type for e in result.events] == [e.type for e in seen]
    assert "a + b" in (repo / "calc.py").read_text()
    assert any(e.type == "tool_result" and e.ok for e in result.events)
