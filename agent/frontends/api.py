"""A small Python API for scripts: the same path `gptoss-agent exec` takes, without the printing.

    from gptoss_agent.agent.frontends.api import run_task

    result = run_task("/path/to/repo", "Add type hints to utils.py", backend="llama")
    print(result.status, result.final)
    for event in result.events:
        print(event.to_json())
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gptoss_agent.agent.events import AgentEvent


@dataclass
class TaskResult:
    status: str  # completed | failed | max_steps | cancelled | error
    final: str | None
    steps: int
    session: str
    events: list[AgentEvent] = field(default_factory=list)


def run_task(repo: str | Path, task: str, *, backend: str | None = None, model: str | None = None,
             reasoning: str | None = None, approval: str = "full-auto", max_steps: int | None = None,
             test_cmd: str | None = None, sandbox: str | None = None, allow_remote: bool = False,
             no_commit: bool = False, settings: dict[str, Any] | None = None,
             on_event: Callable[[AgentEvent], None] | None = None,
             cancel: threading.Event | None = None) -> TaskResult:
    """Run one task on a repository and return its outcome and every event.

    The arguments are the `exec` flags (`sandbox="none"` turns the sandbox off,
    `no_commit=True` takes git_commit away from the model); `settings` sets any
    other setting by name, e.g. `{"map_tokens": 0, "max_tokens_per_step": 4096}`.
    It builds the run through the same composition root as the command line.

    Raises `agent.runtime.SetupError` for what the user must fix first (no
    model, not a git repository, a bad setting).
    """
    from gptoss_agent.agent.frontends.headless import start_agent
    from gptoss_agent.agent.runtime import RunOptions, build_runtime

    events: list[AgentEvent] = []

    def sink(event: AgentEvent) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    options = RunOptions(cwd=str(repo), model=model, backend=backend, reasoning=reasoning, approval=approval,
                         max_steps=max_steps, test_cmd=test_cmd, sandbox=sandbox, allow_remote=allow_remote,
                         no_commit=no_commit, extra=dict(settings or {}),
                         flag_origin=lambda key: f"the run_task() argument {key}")
    runtime = build_runtime(options, task=task, sink=sink)
    start_agent(runtime, task)
    result = runtime.agent.run(task, cancel)
    runtime.session.close()
    return TaskResult(result.status, result.final, result.steps, runtime.session.id, events)
