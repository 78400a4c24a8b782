"""Wiring for `gptoss-agent batch`: worktrees, per-task agents, the shared model, the report.

The plan, manifest and scheduling live in agent/batch.py; this module holds
the side effects (git worktrees and branches, backends, printing).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.batch import BatchTask, PlanError, TaskOutcome, load_plan, merge_command, run_batch
from agent.events import AgentEvent
from agent.headless import (EXIT_FAILED, EXIT_OK, JSONL_TYPES, RunOptions, SetupError, prepare_workspace,
                            project_instructions)


class SerializedBackend:
    """One llama.cpp context shared by several tasks: generation takes turns, tool work overlaps."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self.n_ctx = getattr(backend, "n_ctx", None)

    def generate(self, prompt, **kwargs):
        with self._lock:
            return self._backend.generate(prompt, **kwargs)

    def close(self) -> None:
        self._backend.close()


class _TaggedSink:
    """JSONL events with the task id added; plain mode prints nothing per event (progress lines instead)."""

    def __init__(self, task: str, json_mode: bool, lock: threading.Lock) -> None:
        self.task, self.json_mode, self.lock = task, json_mode, lock

    def __call__(self, event: AgentEvent) -> None:
        if not self.json_mode or event.type not in JSONL_TYPES:
            return
        with self.lock:
            sys.stdout.write(json.dumps({**event.to_json(), "task": self.task}, ensure_ascii=False) + "\n")
            sys.stdout.flush()


def run_batch_command(options: RunOptions, plan: str, *, jobs: int, resume: bool, dry_run: bool,
                      force: bool) -> int:
    from agent import models, vocab
    from agent.config import load_settings
    from agent.harmony import HarmonyCodec
    from tools import git as git_tools
    from tools.files import repo_files

    plan_path = Path(plan).resolve()
    workspace = prepare_workspace(options)
    root = workspace.root
    try:
        defaults, tasks = load_plan(plan_path, repo_files(root))
    except PlanError as exc:
        raise SetupError(str(exc)) from None
    dirty = git_tools.dirty_paths(root) - {_relative(plan_path, root), *_batch_files(plan_path, root)}
    if dirty and not options.allow_dirty:
        raise SetupError("the repository has uncommitted changes (" + ", ".join(sorted(dirty)[:5]) +
                         "); tasks start from HEAD and never include them. Commit or stash them, or pass --allow-dirty")
    flags = {k: defaults[k] for k in ("backend", "model", "approval") if k in defaults}
    settings = load_settings(root, flags={**flags, **{k: v for k, v in {
        "backend": options.backend, "model": options.model, "approval": options.approval,
        "reasoning": options.reasoning, "max_steps": options.max_steps}.items() if v is not None}})
    if dry_run:
        for task in tasks:
            print(f"{task.id}: {task.instruction.splitlines()[0][:100]}")
        print(f"{len(tasks)} task(s); nothing was run (--dry-run)")
        return EXIT_OK

    model_path = models.find_model(settings.model) if settings.backend == "llama" else None
    chosen = model_path or models.search(settings.model).chosen
    try:
        codec = HarmonyCodec.load(vocab.ensure_vocabulary([chosen] if chosen else []))
    except vocab.VocabularyError as exc:
        raise SetupError(str(exc)) from None
    backends = _backends(settings, codec, model_path, tasks)
    lock = threading.Lock()
    progress = (lambda line: print(f"gptoss-agent: {line}", file=sys.stderr)) if options.json else \
        (lambda line: print(line, flush=True))

    def run_one(task: BatchTask, root: Path, branch: str) -> TaskOutcome:
        return _run_task(task, root, branch, settings=settings, defaults=defaults, codec=codec,
                         backend=backends(task), json_mode=options.json, lock=lock, force=force or resume)

    started = time.monotonic()
    batch_id, outcomes = run_batch(plan_path, root, tasks, run_one, jobs=jobs, resume=resume, on_progress=progress)
    report = plan_path.with_suffix(".report.md").read_text()
    if options.json:
        print(json.dumps({"type": "batch_finished", "batch": batch_id, "done": sum(o.status == "done" for o in outcomes),
                          "tasks": len(outcomes), "merge": merge_command(outcomes),
                          "seconds": round(time.monotonic() - started, 3)}))
    else:
        print(report)
    return EXIT_OK if all(o.status == "done" for o in outcomes) else EXIT_FAILED


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _batch_files(plan_path: Path, root: Path) -> set[str]:
    """The batch's own manifest and reports beside the plan are not the user's pending work."""
    return {_relative(plan_path.with_suffix(s), root) for s in (".manifest.jsonl", ".report.md", ".report.json")}


def _backends(settings, codec, model_path, tasks: list[BatchTask]):
    """A backend per task: one shared, serialised llama.cpp; a stream per task for replay and LAN servers."""
    from agent.backends.factory import make_backend

    spec = settings.backend
    if spec == "llama":
        shared = SerializedBackend(make_backend(spec, settings=settings, codec=codec, model_path=model_path))
        return lambda task: shared
    if spec.startswith("replay:"):
        from agent.backends.replay import ReplayBackend, ReplayError

        path = Path(spec[len("replay:"):])
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SetupError(f"replay file {path}: {exc}") from None
        if isinstance(data, dict):  # per-task scripts: the same result whatever the order
            missing = [t.id for t in tasks if t.id not in data]
            if missing:
                raise SetupError(f"replay file {path} has no completions for task(s) {', '.join(missing)}")
            return lambda task: ReplayBackend(data[task.id], codec, source=f"{path}[{task.id}]")
        shared = SerializedBackend(ReplayBackend.from_file(path, codec))
        return lambda task: shared
    return lambda task: make_backend(spec, settings=settings, codec=codec)


def _run_task(task: BatchTask, root: Path, branch: str, *, settings, defaults: dict[str, Any], codec, backend,
              json_mode: bool, lock: threading.Lock, force: bool) -> TaskOutcome:
    from agent.loop import Agent, Budgets, policy_approver
    from agent.session import SessionLog, sessions_dir
    from tools import git as git_tools
    from tools.catalog import default_registry
    from tools.context import ToolContext
    from tools.sandbox import Sandbox, run_trusted
    from tools.tests import run_test_suite

    started = time.monotonic()
    branch = _free_branch(root, branch, force)
    if branch is None:
        return TaskOutcome(task.id, "error", branch or "", reason="its branch already exists (use --force)")
    worktree = sessions_dir().parent / "worktrees" / branch.replace("/", "_")
    made = run_trusted(["git", "worktree", "add", "-q", "-b", branch, str(worktree), "HEAD"], cwd=root)
    if made.returncode != 0:
        return TaskOutcome(task.id, "error", branch, reason=made.stderr.decode(errors="replace").strip())
    base = run_trusted(["git", "rev-parse", "HEAD"], cwd=worktree).stdout.decode().strip()
    outcome = TaskOutcome(task.id, "failed", branch)
    try:
        ctx = ToolContext(workspace=worktree, sandbox=Sandbox(worktree, mode=settings.sandbox),
                          test_command=task.test_cmd, count_tokens=codec.count)
        session = SessionLog.create(repo=str(worktree), task=task.instruction, config={"batch_task": task.id})
        agent = Agent(backend, codec, default_registry(), ctx, sink=_TaggedSink(task.id, json_mode, lock),
                      approver=policy_approver(settings.approval or "full-auto"),
                      budgets=Budgets(max_steps=task.max_steps or settings.max_steps,
                                      context_window=getattr(backend, "n_ctx", None) or settings.n_ctx),
                      session=session)
        agent.start(instructions=project_instructions(worktree), reasoning=task.reasoning or settings.reasoning)
        result = agent.run(task.instruction)
        session.close()
        outcome = replace(outcome, steps=result.steps, tokens=result.completion_tokens)
        problem = "" if result.status == "completed" else f"the agent stopped: {result.status} {result.reason}".strip()
        if task.test_cmd:
            report = run_test_suite(ctx)
            outcome = replace(outcome, tests=f"{report.passed} passed, {report.failed + report.errors} failed")
            if not report.green and not problem:
                problem = "tests fail: " + (", ".join(report.failing_ids[:5]) or f"exit code {report.exit_code}")
        outcome = replace(outcome, status="failed" if problem else "done", reason=problem)
        message = task.commit_message.format(task_id=task.id, instruction=task.instruction.splitlines()[0][:72],
                                             file=task.file or "")
        if outcome.status != "done":
            message = f"[gptoss-agent: {outcome.status}] {message}"
        try:
            git_tools.commit_changes(ctx, message)
        except git_tools.GitError:
            pass  # nothing changed: the branch stays at HEAD
        head = run_trusted(["git", "rev-parse", "HEAD"], cwd=worktree).stdout.decode().strip()
        if head != base:
            stat = run_trusted(["git", "diff", "--numstat", base, head], cwd=worktree).stdout.decode()
            rows = [line.split("\t") for line in stat.splitlines() if line.count("\t") == 2]
            outcome = replace(outcome, commit=head, files=[r[2] for r in rows],
                              added=sum(int(r[0]) for r in rows if r[0].isdigit()),
                              removed=sum(int(r[1]) for r in rows if r[1].isdigit()))
        elif outcome.status == "done":
            outcome = replace(outcome, reason="no changes")
    except Exception as exc:  # one task's failure must not end the batch
        outcome = replace(outcome, status="error", reason=f"{type(exc).__name__}: {exc}")
    finally:
        run_trusted(["git", "worktree", "remove", "--force", str(worktree)], cwd=root)
    return replace(outcome, seconds=round(time.monotonic() - started, 2))


def _free_branch(root: Path, branch: str, force: bool) -> str | None:
    from tools.sandbox import run_trusted

    def exists(name: str) -> bool:
        return run_trusted(["git", "rev-parse", "--verify", "-q", f"refs/heads/{name}"], cwd=root).returncode == 0

    if not exists(branch):
        return branch
    if not force:
        return None
    for suffix in range(2, 100):
        if not exists(f"{branch}-{suffix}"):
            return f"{branch}-{suffix}"
    return None
