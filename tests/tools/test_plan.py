"""update_plan through the registry, as the model calls it: forgiving about shape, bounded in size."""

from __future__ import annotations

import json
from pathlib import Path

from gptoss_agent.agent.model.completion import ToolCallRequest
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext


def call_plan(arguments) -> tuple[object, ToolContext]:
    ctx = ToolContext(workspace=Path("."))
    tool, args, error = default_registry().prepare(ToolCallRequest("functions.update_plan", json.dumps(arguments)))
    if error:
        return error, ctx
    return tool(ctx, **args), ctx


def test_the_plan_is_recorded_with_normalised_statuses():
    result, ctx = call_plan({"plan": [{"step": "read calc.py", "status": "done"},
                                      {"step": "fix add", "status": "In progress"}]})
    assert result.ok and ctx.plan == [{"step": "read calc.py", "status": "completed"},
                                      {"step": "fix add", "status": "in_progress"}]


def test_an_oversized_plan_is_refused_with_a_reason():
    result, ctx = call_plan({"plan": [{"step": "x" * 5000}]})
    assert not result.ok and "under 500" in result.output and ctx.plan == []
    result, ctx = call_plan({"plan": [{"step": f"step {i}"} for i in range(200)]})
    assert not result.ok and "at most 50 steps" in result.output


def test_two_steps_in_progress_are_refused():
    result, _ = call_plan({"plan": [{"step": "a", "status": "in_progress"}, {"step": "b", "status": "in_progress"}]})
    assert not result.ok and "only one step" in result.output
