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

from gptoss_agent.agent.frontends.batch import (BatchTask, Manifest, PlanError, TaskOutcome, load_plan, merge_command,
                                                render_commit_message, run_batch)
from gptoss_agent.agent.events import AgentEvent, Notice
from gptoss_agent.agent.safe_text import block as safe_block, line as safe_line
from gptoss_agent.agent.frontends.headless import (EXIT_FAILED, EXIT_OK, JSONL_TYPES, RunOptions, SetupError,
                                                   start_agent, workspace_root)
from gptoss_agent.agent.runtime import (LoadedModel, build_runtime, load_codec, make_workspace, resolve_settings,
                                        start_backend)


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
            # ASCII escapes: a lone surrogate in the model's text stays an escape, not a crash of stdout
            sys.stdout.write(json.dumps({**event.to_json(), "task": self.task}, ensure_ascii=True) + "\n")
            sys.stdout.flush()


PLAN_SETTINGS = ("backend", "model", "approval")  # [defaults] keys that are settings of the whole batch


def run_batch_command(options: RunOptions, plan: str, *, jobs: int, resume: bool, dry_run: bool,
                      force: bool) -> int:
    """Every task through the one composition root (agent/runtime.py): the same flags, settings and tools as exec."""
    from gptoss_agent.agent.model.backends.factory import describe
    from gptoss_agent.agent.config import cli_flag
    from gptoss_agent.agent.operations import repository_operations

    if options.no_commit:
        raise SetupError("batch keeps each task's work only as a commit on the task's branch, so --no-commit "
                         "does not apply to it (the model's own git_commit is not needed either)")
    plan_path = Path(plan).resolve()
    # every human-facing line holds repository text (file names, task ids, reasons): shown through safe_text
    progress = (lambda line: print(f"gptoss-agent: {safe_line(line)}", file=sys.stderr)) if options.json else \
        (lambda line: print(safe_line(line), flush=True))

    def notify(notice: Notice) -> None:
        print(f"gptoss-agent: {safe_line(notice.text)}", file=sys.stderr, flush=True)

    root = workspace_root(options.cwd)
    operations = repository_operations(root)
    try:
        defaults, tasks = load_plan(plan_path, operations.repo_files())
        Manifest(plan_path.with_suffix(".manifest.jsonl")).check_target()
    except PlanError as exc:
        raise SetupError(str(exc)) from None
    dirty = operations.dirty_paths() - {_relative(plan_path, root), *_batch_files(plan_path, root)}
    if dirty and not options.allow_dirty:
        raise SetupError("the repository has uncommitted changes (" + ", ".join(sorted(dirty)[:5]) +
                         "); tasks start from HEAD and never include them. Commit or stash them, or pass --allow-dirty")
    from_plan = {k: defaults[k] for k in PLAN_SETTINGS if k in defaults and getattr(options, k) is None}
    flag_origin = options.flag_origin or cli_flag
    options = replace(options, **from_plan, flag_origin=lambda key: (
        f"the plan's [defaults] {key}" if key in from_plan else flag_origin(key)))
    loaded = resolve_settings(root, options, notify)
    settings = loaded.settings
    make_workspace(root, settings, origins=loaded.origins, notify=notify, baseline_dirty=dirty)  # sandbox check
    if dry_run:
        for task in tasks:
            first = (task.instruction.splitlines() or [""])[0][:100]
            print(f"{safe_line(task.id)}: {safe_line(first)}")
        print(f"{len(tasks)} task(s); nothing was run (--dry-run)")
        return EXIT_OK

    codec, model_path = load_codec(settings)
    backends = _backends(settings, codec, model_path, tasks)
    model_name = model_path.name if model_path else describe(settings.backend)
    lock = threading.Lock()

    def run_one(task: BatchTask, root: Path, branch: str) -> TaskOutcome:
        model = LoadedModel(codec, backends(task), describe(settings.backend), model_name)
        return _run_task(task, root, branch, options=options, settings=settings, model=model,
                         json_mode=options.json, lock=lock, force=force or resume)

    started = time.monotonic()
    batch_id, outcomes = run_batch(plan_path, root, tasks, run_one, jobs=jobs, resume=resume, on_progress=progress,
                                   check=lambda outcome: _confirmed(root, outcome))
    if options.json:
        print(json.dumps({"type": "batch_finished", "batch": batch_id, "done": sum(o.status == "done" for o in outcomes),
                          "tasks": len(outcomes), "merge": merge_command(outcomes),
                          "seconds": round(time.monotonic() - started, 3)}))
    else:
        from gptoss_agent.agent.frontends.batch import report_markdown

        print(safe_block(report_markdown(batch_id, outcomes)))
    return EXIT_OK if all(o.status == "done" for o in outcomes) else EXIT_FAILED


def task_settings(settings, options: RunOptions, task: BatchTask):
    """A task's settings: flags win over the plan's task and [defaults] values, which win over the config."""
    def pick(name: str):
        flag, planned = getattr(options, name), getattr(task, name)
        return flag if flag is not None else planned if planned is not None else getattr(settings, name)

    return replace(settings, test_cmd=pick("test_cmd"), max_steps=pick("max_steps"), reasoning=pick("reasoning"))


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
    spec = settings.backend
    if spec == "llama":
        shared = SerializedBackend(start_backend(settings, codec, model_path))
        return lambda task: shared
    if spec.startswith("replay:"):
        from gptoss_agent.agent.model.backends.replay import ReplayBackend, ReplayError

        path = Path(spec[len("replay:"):])
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise SetupError(f"replay file {path}: {exc}") from None
        if isinstance(data, dict):  # per-task scripts: the same result whatever the order
            missing = [t.id for t in tasks if t.id not in data]
            if missing:
                raise SetupError(f"replay file {path} has no completions for task(s) {', '.join(missing)}")
            return lambda task: ReplayBackend(data[task.id], codec, source=f"{path}[{task.id}]")
        shared = SerializedBackend(ReplayBackend.from_file(path, codec))
        return lambda task: shared
    start_backend(settings, codec, None).close()  # a bad address or a remote one without --allow-remote stops here
    return lambda task: start_backend(settings, codec, None)


def _run_task(task: BatchTask, root: Path, branch: str, *, options: RunOptions, settings, model: LoadedModel,
              json_mode: bool, lock: threading.Lock, force: bool) -> TaskOutcome:
    from gptoss_agent.agent.locations import batch_worktrees_dir
    from gptoss_agent.agent.operations import OperationFailed, trusted_git

    started = time.monotonic()
    branch = _free_branch(root, branch, force)
    if branch is None:
        return TaskOutcome(task.id, "error", branch or "", reason="its branch already exists (use --force)")
    worktree = batch_worktrees_dir() / branch.replace("/", "_")
    made = trusted_git(["worktree", "add", "-q", "-b", branch, str(worktree), "HEAD"], cwd=root)
    if made.returncode != 0:
        return TaskOutcome(task.id, "error", branch, reason=made.stderr.decode(errors="replace").strip())
    base = trusted_git(["rev-parse", "HEAD"], cwd=worktree).stdout.decode().strip()
    outcome = TaskOutcome(task.id, "failed", branch)
    try:
        workspace = make_workspace(worktree, task_settings(settings, options, task), baseline_dirty=frozenset())
        runtime = build_runtime(options, task=task.instruction, sink=_TaggedSink(task.id, json_mode, lock),
                                workspace=workspace, model=model, session_config={"batch_task": task.id})
        start_agent(runtime, task.instruction, [task.file] if task.file else [])
        result = runtime.agent.run(task.instruction)
        runtime.session.close()
        outcome = replace(outcome, steps=result.steps, tokens=result.completion_tokens)
        problem = "" if result.status == "completed" else f"the agent stopped: {result.status} {result.reason}".strip()
        if workspace.settings.test_cmd:
            report = runtime.operations.run_tests()
            outcome = replace(outcome, tests=f"{report.passed} passed, {report.failed + report.errors} failed")
            if not report.green and not problem:
                problem = "tests fail: " + (", ".join(report.failing_ids[:5]) or f"exit code {report.exit_code}")
        outcome = replace(outcome, status="failed" if problem else "done", reason=problem)
        message = render_commit_message(task.commit_message, task_id=task.id,
                                        instruction=task.instruction.splitlines()[0][:72], file=task.file or "")
        if outcome.status != "done":
            message = f"[gptoss-agent: {outcome.status}] {message}"
        try:
            runtime.operations.commit(message)
        except OperationFailed as exc:
            if not str(exc).startswith("nothing to commit"):  # nothing changed: the branch stays at HEAD
                outcome = replace(outcome, status="error", reason=f"not committed: {exc}")
        head = trusted_git(["rev-parse", "HEAD"], cwd=worktree).stdout.decode().strip()
        if head and head != base:
            stat = trusted_git(["diff", "--numstat", base, head], cwd=worktree).stdout.decode()
            rows = [line.split("\t") for line in stat.splitlines() if line.count("\t") == 2]
            outcome = replace(outcome, commit=head, files=[r[2] for r in rows],
                              added=sum(int(r[0]) for r in rows if r[0].isdigit()),
                              removed=sum(int(r[1]) for r in rows if r[1].isdigit()))
        elif outcome.status == "done":
            outcome = replace(outcome, reason="no changes")
    except Exception as exc:  # one task's failure must not end the batch
        outcome = replace(outcome, status="error", reason=f"{type(exc).__name__}: {exc}")
    finally:
        trusted_git(["worktree", "remove", "--force", str(worktree)], cwd=root)
    return replace(outcome, seconds=round(time.monotonic() - started, 2))


def _confirmed(root: Path, outcome: TaskOutcome) -> TaskOutcome:
    """The outcome if git agrees with it; otherwise an error that keeps its branch out of the merge command.

    A manifest is a file anyone could have edited: its branch must be a valid branch
    name that exists, and its commit must be that branch's tip.
    """
    from gptoss_agent.agent.operations import trusted_git

    if outcome.status != "done" or not outcome.commit:
        return outcome
    valid = trusted_git(["check-ref-format", "--branch", outcome.branch], cwd=root)
    if valid.returncode != 0 or valid.stdout.decode(errors="replace").strip() != outcome.branch:
        return replace(outcome, status="error", commit=None, reason="the manifest names an invalid branch")
    tip = trusted_git(["rev-parse", "--verify", "-q", f"refs/heads/{outcome.branch}^{{commit}}"], cwd=root)
    if tip.returncode != 0:
        return replace(outcome, status="error", commit=None, reason=f"branch {outcome.branch} does not exist")
    if tip.stdout.decode(errors="replace").strip() != outcome.commit:
        return replace(outcome, status="error", commit=None,
                       reason=f"branch {outcome.branch} is not at the recorded commit {outcome.commit[:12]}")
    return outcome


def _free_branch(root: Path, branch: str, force: bool) -> str | None:
    from gptoss_agent.agent.operations import trusted_git

    def exists(name: str) -> bool:
        return trusted_git(["rev-parse", "--verify", "-q", f"refs/heads/{name}"], cwd=root).returncode == 0

    if not exists(branch):
        return branch
    if not force:
        return None
    for suffix in range(2, 100):
        if not exists(f"{branch}-{suffix}"):
            return f"{branch}-{suffix}"
    return None
