"""`gptoss-agent batch PLAN.toml`: many tasks, each in its own git worktree and branch.

Tasks never see each other's edits and the user's checkout is never touched:
every task starts from HEAD in a worktree on `gptoss/BATCH/TASK`. A manifest
(JSONL beside the plan) records each task as it finishes, so an interrupted
batch resumes with only what is left. Generation on the embedded model is
serialised (one llama.cpp context) while other tasks' tool work overlaps it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

PLAN_KEYS = {"defaults", "tasks"}
DEFAULT_KEYS = {"reasoning", "test_cmd", "max_steps", "approval", "commit_message", "backend", "model"}
TASK_KEYS = {"id", "instruction", "files", "per_file", "test_cmd", "max_steps", "reasoning", "commit_message"}
DEFAULT_COMMIT = "{task_id}: {instruction}"


class PlanError(ValueError):
    """The plan cannot run; the message names the problem in one line."""


@dataclass(frozen=True)
class BatchTask:
    id: str
    instruction: str
    test_cmd: str | None = None
    max_steps: int | None = None
    reasoning: str | None = None
    commit_message: str = DEFAULT_COMMIT
    file: str | None = None


@dataclass
class TaskOutcome:
    task: str
    status: str  # done | failed | error
    branch: str
    commit: str | None = None
    files: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    tests: str = ""
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    reason: str = ""


# ---------------------------------------------------------------------- plan

def load_plan(path: Path, repo_files: list[str]) -> tuple[dict[str, Any], list[BatchTask]]:
    """Parse and check the plan; fan `per_file` tasks out over their globs."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plan not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: {exc}") from None
    _unknown(data, PLAN_KEYS, f"{path}")
    defaults = data.get("defaults", {})
    _unknown(defaults, DEFAULT_KEYS, f"{path} [defaults]")
    raw_tasks = data.get("tasks", [])
    if not raw_tasks:
        raise PlanError(f"{path}: no [[tasks]]")
    tasks: list[BatchTask] = []
    for number, raw in enumerate(raw_tasks, 1):
        _unknown(raw, TASK_KEYS, f"{path} task {number}")
        if not raw.get("id") or not raw.get("instruction"):
            raise PlanError(f"{path} task {number}: needs an id and an instruction")
        common = dict(test_cmd=raw.get("test_cmd", defaults.get("test_cmd")),
                      max_steps=raw.get("max_steps", defaults.get("max_steps")),
                      reasoning=raw.get("reasoning", defaults.get("reasoning")),
                      commit_message=raw.get("commit_message", defaults.get("commit_message", DEFAULT_COMMIT)))
        globs = raw.get("files", [])
        matched = sorted({f for g in globs for f in repo_files if fnmatch.fnmatch(f, g)})
        if globs and not matched:
            raise PlanError(f"{path} task {raw['id']!r}: the glob(s) {', '.join(globs)} match no file")
        if raw.get("per_file"):
            if not globs:
                raise PlanError(f"{path} task {raw['id']!r}: per_file needs files = [globs]")
            for name in matched:
                tasks.append(BatchTask(f"{raw['id']}-{_slug(name)}", _with_file(raw["instruction"], name), file=name,
                                       **common))
        else:
            instruction = raw["instruction"] + (f"\n\nFiles: {', '.join(matched)}" if matched else "")
            tasks.append(BatchTask(raw["id"], instruction, **common))
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise PlanError(f"{path}: task id {task.id!r} is used twice")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", task.id):
            raise PlanError(f"{path}: task id {task.id!r} may only hold letters, digits, '.', '_' and '-'")
        seen.add(task.id)
    return defaults, tasks


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise PlanError(f"{where}: unknown key(s) {', '.join(extra)} (known: {', '.join(sorted(allowed))})")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _with_file(instruction: str, name: str) -> str:
    return instruction.replace("{file}", name) if "{file}" in instruction else f"{instruction}\n\nFile: {name}"


# ---------------------------------------------------------------------- manifest and report

class Manifest:
    """JSONL beside the plan: one record per task outcome, appended as it happens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> tuple[str | None, dict[str, dict]]:
        if not self.path.exists():
            return None, {}
        batch_id, finished = None, {}
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            batch_id = record.get("batch", batch_id)
            if record.get("status") in ("done", "failed", "error"):
                finished[record["task"]] = record
        return batch_id, finished

    def write(self, batch_id: str, record: dict) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"batch": batch_id, **record}) + "\n")
            handle.flush()


def merge_command(outcomes: list[TaskOutcome]) -> str:
    branches = [o.branch for o in outcomes if o.status == "done"]
    return f"git merge {' '.join(branches)}" if branches else ""


def report_markdown(batch_id: str, outcomes: list[TaskOutcome]) -> str:
    lines = [f"# Batch {batch_id}", "", "| task | status | branch | commit | files | +/- | tests | steps | tokens | time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.task} | {o.status} | {o.branch} | {(o.commit or '')[:10]} | {len(o.files)} | "
                     f"+{o.added}/-{o.removed} | {o.tests} | {o.steps} | {o.tokens} | {o.seconds:.1f}s |")
    done = sum(o.status == "done" for o in outcomes)
    lines += ["", f"**{done} done, {len(outcomes) - done} not** — {sum(o.tokens for o in outcomes)} tokens, "
                  f"{sum(o.seconds for o in outcomes):.1f}s of task time."]
    command = merge_command(outcomes)
    if command:
        lines += ["", "Merge the successful branches (gptoss-agent never merges by itself):", "", f"    {command}"]
    for o in outcomes:
        if o.reason:
            lines.append(f"- {o.task}: {o.reason}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- running

TaskRunner = Callable[[BatchTask, Path, str], TaskOutcome]


def run_batch(plan_path: Path, root: Path, tasks: list[BatchTask], run_task: TaskRunner, *, jobs: int = 1,
              resume: bool = False, on_progress: Callable[[str], None] = print) -> tuple[str, list[TaskOutcome]]:
    """Run every task not finished yet, `jobs` at a time; returns (batch id, outcomes in plan order)."""
    manifest = Manifest(plan_path.with_suffix(".manifest.jsonl"))
    batch_id, finished = manifest.read() if resume else (None, {})
    batch_id = batch_id or time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
    pending = [t for t in tasks if t.id not in finished]
    if resume and finished:
        on_progress(f"resuming batch {batch_id}: {len(finished)} task(s) already finished, {len(pending)} to run")
    done_count = [len(finished)]
    lock = threading.Lock()

    def one(task: BatchTask) -> TaskOutcome:
        branch = f"gptoss/{batch_id}/{task.id}"
        on_progress(f"[{task.id}] started on {branch}")
        outcome = run_task(task, root, branch)
        manifest.write(batch_id, asdict(outcome))
        with lock:
            done_count[0] += 1
            on_progress(f"[{task.id}] {outcome.status} ({done_count[0]}/{len(tasks)})"
                        + (f": {outcome.reason}" if outcome.reason else ""))
        return outcome

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        fresh = {o.task: o for o in pool.map(one, pending)}
    known = set(TaskOutcome.__dataclass_fields__)
    outcomes = [fresh[t.id] if t.id in fresh else TaskOutcome(**{k: v for k, v in finished[t.id].items() if k in known})
                for t in tasks]
    report = report_markdown(batch_id, outcomes)
    plan_path.with_suffix(".report.md").write_text(report)
    plan_path.with_suffix(".report.json").write_text(json.dumps(
        {"batch": batch_id, "tasks": [asdict(o) for o in outcomes], "merge": merge_command(outcomes)}, indent=2))
    return batch_id, outcomes
