"""The headless faces of the agent: `exec`, `fix` and `resume`, with JSONL or a readable transcript.

This module wires the pieces (settings, workspace, model, backend, sandbox,
tools, session log) and runs the loop; the loop itself knows none of this.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from agent import prompts
from agent.events import (AgentEvent, Committed, ErrorRaised, Notice, ReasoningEmitted, RunFinished, RunStarted,
                          TestsReported, ToolCalled, ToolFinished, key_argument)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
JSONL_TYPES = {"run_started", "plan", "message", "reasoning", "tool_call", "tool_result", "tests", "commit", "error",
               "run_finished"}


class SetupError(Exception):
    """Something the user must fix before a run can start (exit code 2)."""


@dataclass
class RunOptions:
    cwd: str = "."
    model: str | None = None
    backend: str | None = None
    reasoning: str | None = None
    approval: str | None = None
    max_steps: int | None = None
    json: bool = False
    test_cmd: str | None = None
    no_commit: bool = False
    allow_dirty: bool = False
    sandbox: str | None = None
    allow_remote: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- output

class JsonlPrinter:
    """One JSON object per line on stdout, only the documented event types; the rest to stderr."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out, self.err = out, err

    def __call__(self, event: AgentEvent) -> None:
        if event.type in JSONL_TYPES:
            self.out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
            self.out.flush()
        elif isinstance(event, Notice):
            self.err.write(f"gptoss-agent: {event.text}\n")


class TranscriptPrinter:
    """A readable transcript: reasoning dimmed, one line per tool call, coloured diffs on a terminal.

    Every string the model or the repository wrote goes through `agent.safe_text`
    first: a terminal obeys escape sequences wherever they come from, so only our
    own styling codes (`_style`) may reach it raw.
    """

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out, self.err = out, err
        self.color = out.isatty()

    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def __call__(self, event: AgentEvent) -> None:
        from agent.safe_text import block, line

        write = self.out.write
        if isinstance(event, RunStarted):
            write(self._style(f"▶ {line(event.task)}", "1") + f"  ({line(event.backend)}, {line(event.cwd)})\n")
        elif isinstance(event, ReasoningEmitted):
            write(self._style(f"  {block(event.text.strip())}", "2") + "\n")
        elif event.type == "message":
            write(("\n" if event.channel == "final" else "") + block(event.text.strip()) + "\n")
        elif isinstance(event, ToolCalled):
            write(self._style(f"→ {line(event.name)} {line(key_argument(event.arguments, 100))}", "36") + "\n")
        elif isinstance(event, ToolFinished):
            mark = self._style("✓", "32") if event.ok else self._style("✗", "31")
            write(f"  {mark} {line(event.output.splitlines()[0][:120]) if event.output else ''}\n")
            if event.display:
                write(self._diff(event.display))
        elif isinstance(event, TestsReported):
            write(f"  tests: {event.passed} passed, {event.failed} failed, {event.errors} errors\n")
        elif isinstance(event, Committed):
            first = event.message.splitlines()[0] if event.message else ""
            write(self._style(f"● committed {line(event.sha[:12])}", "33") + f" {line(first)}\n")
        elif isinstance(event, ErrorRaised):
            self.err.write(f"gptoss-agent: {block(event.message)}\n")
        elif isinstance(event, Notice):
            self.err.write(f"gptoss-agent: {block(event.text)}\n")
        elif isinstance(event, RunFinished):
            write(self._style(f"■ {line(event.status)}", "1") + f" after {event.steps} steps, {event.seconds:.1f}s"
                  + (f": {line(event.reason)}" if event.reason else "") + "\n")
        self.out.flush()
        self.err.flush()

    def _diff(self, diff: str) -> str:
        from agent.safe_text import line as safe_line

        lines = []
        for line in diff.rstrip("\n").split("\n"):
            line = safe_line(line.removesuffix("\r"))
            if line.startswith("+") and not line.startswith("+++"):
                line = self._style(line, "32")
            elif line.startswith("-") and not line.startswith("---"):
                line = self._style(line, "31")
            lines.append("    " + line)
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- wiring

@dataclass
class Runtime:
    """Everything a run needs, built once."""

    agent: Any
    ctx: Any
    settings: Any
    session: Any
    backend_name: str
    model_name: str
    sink: Any
    backend: Any = None


def workspace_root(cwd: str) -> Path:
    path = Path(cwd).expanduser().resolve()
    if not path.is_dir():
        raise SetupError(f"--cwd {cwd}: no such folder")
    from tools.git import GitError, repository_root

    try:  # found and validated without running git: nothing the repository controls can run here
        return repository_root(path)
    except GitError as exc:
        raise SetupError(str(exc)) from None


@dataclass
class Workspace:
    """The repository side of a run, ready before any model is loaded."""

    root: Path
    settings: Any
    ctx: Any


def prepare_workspace(options: RunOptions, *, count_tokens=None) -> Workspace:
    """Settings, the repository and its sandbox: everything but the model."""
    from agent.config import ConfigError, load_settings
    from tools import git as git_tools
    from tools.context import ToolContext
    from tools.sandbox import Sandbox

    root = workspace_root(options.cwd)
    flags = {"model": options.model, "backend": options.backend, "reasoning": options.reasoning,
             "approval": options.approval, "max_steps": options.max_steps, "test_cmd": options.test_cmd,
             "sandbox": options.sandbox, "allow_remote": options.allow_remote or None, **options.extra}
    try:
        settings = load_settings(root, flags=flags)
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
    sandbox = Sandbox(root, mode=settings.sandbox)
    if sandbox.mechanism is None:
        raise SetupError(sandbox.report.reason)
    ctx = ToolContext(workspace=root, sandbox=sandbox, test_command=settings.test_cmd,
                      baseline_dirty=frozenset(git_tools.dirty_paths(root)))
    return Workspace(root, settings, ctx)


def build_runtime(options: RunOptions, *, task: str, sink, session_path: Path | None = None,
                  workspace: Workspace | None = None, on_progress=None) -> Runtime:
    """Load the vocabulary and the backend, open the session log, and make the agent."""
    from agent import models, vocab
    from agent.backends.factory import BackendSpecError, describe, make_backend
    from agent.harmony import HarmonyCodec
    from agent.loop import Agent, Budgets, policy_approver
    from agent.session import SessionLog
    from tools.catalog import default_registry

    workspace = workspace or prepare_workspace(options)
    settings, ctx = workspace.settings, workspace.ctx
    spec = settings.backend
    model_path = None
    if spec == "llama":
        try:
            model_path = models.find_model(settings.model)
        except models.ModelNotFoundError as exc:
            raise SetupError(str(exc)) from None
        candidates = [model_path]
    else:
        chosen = models.search(settings.model).chosen
        candidates = [chosen] if chosen else []
    try:
        codec = HarmonyCodec.load(vocab.ensure_vocabulary(candidates))
    except vocab.VocabularyError as exc:
        raise SetupError(str(exc)) from None
    ctx.count_tokens = codec.count
    if ctx.sandbox.mechanism == "none":
        sink(Notice("the sandbox is OFF (--sandbox none): commands run unconfined"))
    started = time.monotonic()
    try:
        backend = make_backend(spec, settings=settings, codec=codec, model_path=model_path, on_progress=on_progress)
    except BackendSpecError as exc:
        raise SetupError(str(exc)) from None
    except Exception as exc:  # replay file, server address, model load: all set-up problems
        raise SetupError(f"{type(exc).__name__}: {exc}") from None
    if spec == "llama":
        sink(Notice(f"model loaded in {time.monotonic() - started:.1f}s: {model_path}"))
    session = (SessionLog(session_path) if session_path else
               SessionLog.create(repo=str(workspace.root), task=task, config=dict(vars(settings))))
    budgets = Budgets(max_steps=settings.max_steps, max_tokens_per_step=settings.max_tokens_per_step,
                      context_window=getattr(backend, "n_ctx", settings.n_ctx))
    agent = Agent(backend, codec, default_registry(), ctx, sink=sink,
                  approver=policy_approver(settings.approval or "full-auto"), budgets=budgets, session=session)
    model_name = model_path.name if model_path else describe(spec)
    return Runtime(agent, ctx, settings, session, describe(spec), model_name, sink, backend)


def project_instructions(root: Path, *, repo_map: str = "") -> str:
    """Our instructions, the repository's own (AGENTS.md, .gptoss-agent/instructions.md), then the repo map.

    Repository text is read with bounds and fenced as repository content (agent/repo_instructions.py).
    """
    from agent.repo_instructions import project_instructions_text

    return project_instructions_text(root, repo_map=repo_map)


def start_agent(runtime: "Runtime", focus_text: str, extra_focus=()) -> None:
    """System and developer messages: instructions, project instructions and the repo map for this task."""
    runtime.agent.start(instructions=project_instructions(runtime.ctx.workspace,
                                                          repo_map=repo_map_for(runtime, focus_text, extra_focus)),
                        reasoning=runtime.settings.reasoning)


def repo_map_for(runtime: "Runtime", focus_text: str, extra_focus=()) -> str:
    """The repo map for the developer message, focused on the files the task is about."""
    budget = runtime.settings.map_tokens
    if budget <= 0:
        return ""
    from tools.files import repo_files
    from tools.repomap import build_map, mentioned_files

    files = repo_files(runtime.ctx.workspace)
    focus = mentioned_files(focus_text, files) + list(extra_focus)
    return build_map(runtime.ctx.workspace, files, budget, lambda: runtime.ctx.count_tokens, focus).text


class _CancelOnInterrupt:
    """First Ctrl-C cancels the run (the session is kept); a second one exits at once."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.cancel.is_set():
            raise KeyboardInterrupt
        self.cancel.set()
        print("gptoss-agent: cancelling… (Ctrl-C again to quit)", file=sys.stderr)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _exit_code(status: str) -> int:
    return {"completed": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(status, EXIT_FAILED)


def printer(options: RunOptions):
    return JsonlPrinter() if options.json else TranscriptPrinter()


# ---------------------------------------------------------------------- commands

def run_exec(options: RunOptions, task: str) -> int:
    sink = printer(options)
    runtime = build_runtime(options, task=task, sink=sink)
    agent = runtime.agent
    sink(RunStarted(task, str(runtime.ctx.workspace), runtime.model_name, runtime.backend_name, runtime.session.id))
    start_agent(runtime, task)
    cancel = threading.Event()
    with _CancelOnInterrupt(cancel):
        result = agent.run(task, cancel)
    runtime.session.close()
    return _exit_code(result.status)


def run_fix(options: RunOptions, max_attempts: int = 3) -> int:
    from tools import git as git_tools
    from tools.commit_message import prefixed_subject
    from tools.tests import format_report, run_test_suite

    sink = printer(options)
    task = "Make the failing tests pass."
    workspace = prepare_workspace(options)
    ctx = workspace.ctx
    started = time.monotonic()
    report = run_test_suite(ctx)
    if report.green:
        sink(RunStarted(task, str(ctx.workspace), "(not loaded)", options.backend or workspace.settings.backend))
        sink(TestsReported(report.passed, report.failed, report.errors, report.failing_ids))
        sink(Notice("the test suite already passes; nothing to fix"))
        sink(RunFinished("completed", 0, 0, 0, 0, round(time.monotonic() - started, 3), "tests already pass"))
        return EXIT_OK
    if ctx.baseline_dirty and not options.allow_dirty:
        raise SetupError("the work tree has uncommitted changes (" + ", ".join(sorted(ctx.baseline_dirty)[:5]) +
                         "); commit or stash them, or pass --allow-dirty (they will be left alone)")
    runtime = build_runtime(options, task=task, sink=sink, workspace=workspace)
    agent = runtime.agent
    sink(RunStarted(task, str(ctx.workspace), runtime.model_name, runtime.backend_name, runtime.session.id))
    sink(TestsReported(report.passed, report.failed, report.errors, report.failing_ids))
    failing_files = sorted({f.test_id.split("::")[0] for f in report.failures})
    start_agent(runtime, "", failing_files)
    message = prompts.render("fix", failures=format_report(report))
    best = len(report.failing_ids) + report.errors
    stalled = 0
    cancel = threading.Event()
    with _CancelOnInterrupt(cancel):
        for attempt in range(1, max_attempts + 1):
            result = agent.run(message, cancel)
            if result.status != "completed":
                return _exit_code(result.status)
            report = run_test_suite(ctx)
            sink(TestsReported(report.passed, report.failed, report.errors, report.failing_ids))
            if report.green:
                if options.no_commit:
                    return EXIT_OK
                title = prefixed_subject("Fix failing tests: ", result.final or "")
                try:
                    sha, _, _ = git_tools.commit_changes(
                        ctx, title, tests=f"{report.passed} passed, {report.failed + report.errors} failed")
                except git_tools.GitError as exc:
                    sink(ErrorRaised(str(exc)))
                    return EXIT_FAILED
                sink(Committed(sha, title))
                return EXIT_OK
            remaining = len(report.failing_ids) + report.errors
            stalled = stalled + 1 if remaining >= best else 0
            best = min(best, remaining)
            if stalled >= 2:
                sink(ErrorRaised("no progress: the failing tests did not shrink over two attempts"))
                return EXIT_FAILED
            if runtime.settings.reasoning != "high":
                agent.set_reasoning("high")  # a failed attempt earns more thinking
                sink(Notice("raised reasoning effort to high after a failed attempt"))
            message = "The test suite still fails:\n" + format_report(report)
    sink(ErrorRaised(f"the tests still fail after {max_attempts} attempts"))
    return EXIT_FAILED


def run_resume(options: RunOptions, ident: str | None, message: str | None) -> int:
    from agent.session import SessionError, find_session

    try:
        record = find_session(ident)
    except SessionError as exc:
        raise SetupError(str(exc)) from None
    options.cwd = record.header["repo"]
    sink = printer(options)
    runtime = build_runtime(options, task=record.header["task"], sink=sink, session_path=record.path)
    if record.torn_line:
        sink(Notice("the session log's last line was torn (cut off mid-write) and was dropped"))
    runtime.agent.restore(record)
    sink(RunStarted(record.header["task"], str(runtime.ctx.workspace), runtime.model_name, runtime.backend_name,
                    runtime.session.id))
    cancel = threading.Event()
    with _CancelOnInterrupt(cancel):
        result = runtime.agent.run(message, cancel)
    return _exit_code(result.status)
