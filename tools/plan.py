"""update_plan: the model keeps a visible plan; the loop turns it into events."""

from __future__ import annotations

from typing import Any

from agent.types import ToolResult
from tools.context import ToolContext
from tools.registry import tool

STATUSES = ("pending", "in_progress", "completed")


@tool("functions.update_plan")
def update_plan(ctx: ToolContext, plan: list[dict], explanation: str | None = None) -> ToolResult:
    """Record the plan for this task and each step's status (pending, in_progress, completed).

    Args:
        plan: the steps, each {"step": "...", "status": "pending" | "in_progress" | "completed"}
        explanation: why the plan changed, if it did
    """
    steps: list[dict[str, Any]] = []
    for index, item in enumerate(plan, 1):
        step = str(item.get("step") or item.get("description") or item.get("title") or "").strip()
        status = str(item.get("status", "pending")).strip().lower().replace(" ", "_").replace("-", "_")
        if status in ("done", "complete"):
            status = "completed"
        if not step:
            return ToolResult.error(f"plan step {index} has no 'step' text")
        if status not in STATUSES:
            return ToolResult.error(f"plan step {index}: status must be one of {', '.join(STATUSES)}, not {status!r}")
        steps.append({"step": step, "status": status})
    if sum(s["status"] == "in_progress" for s in steps) > 1:
        return ToolResult.error("only one step can be in_progress at a time")
    ctx.plan = steps
    return ToolResult(True, "Plan updated.", data={"plan": steps, "explanation": explanation})
