"""update_plan: the model keeps a visible plan, which the tool reports as an event for people to see."""

from __future__ import annotations

from typing import Any

from gptoss_agent.agent.events import PlanUpdated
from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.registry import ToolError, tool

STATUSES = ("pending", "in_progress", "completed")
MAX_STEPS = 50
MAX_STEP_CHARS = 500


@tool("functions.update_plan")
def update_plan(ctx: ToolContext, plan: list[dict], explanation: str | None = None) -> ToolResult:
    """Record the plan for this task and each step's status (pending, in_progress, completed).

    Args:
        plan: the steps, each {"step": "...", "status": "pending" | "in_progress" | "completed"}
        explanation: why the plan changed, if it did
    """
    if len(plan) > MAX_STEPS:
        raise ToolError(f"a plan has at most {MAX_STEPS} steps; this one has {len(plan)}")
    steps = [_step(index, item) for index, item in enumerate(plan, 1)]
    if sum(s["status"] == "in_progress" for s in steps) > 1:
        raise ToolError("only one step can be in_progress at a time")
    ctx.plan = steps
    ctx.emitter.emit(PlanUpdated(steps, explanation))
    return ToolResult(True, "Plan updated.", data={"plan": steps, "explanation": explanation})


def _step(index: int, item: Any) -> dict[str, str]:
    """Plan step `index` as {"step", "status"}, forgiving what models write; a ToolError says what is wrong."""
    if isinstance(item, str):
        item = {"step": item}
    if not isinstance(item, dict):
        raise ToolError(f'plan step {index} must be an object like {{"step": "...", "status": "pending"}}')
    step = str(item.get("step") or item.get("description") or item.get("title") or "").strip()
    if len(step) > MAX_STEP_CHARS:
        raise ToolError(f"plan step {index} is {len(step)} characters; keep each step under {MAX_STEP_CHARS}")
    status = str(item.get("status", "pending")).strip().lower().replace(" ", "_").replace("-", "_")
    if status in ("done", "complete"):
        status = "completed"
    if not step:
        raise ToolError(f"plan step {index} has no 'step' text")
    if status not in STATUSES:
        raise ToolError(f"plan step {index}: status must be one of {', '.join(STATUSES)}, not {status!r}")
    return {"step": step, "status": status}
