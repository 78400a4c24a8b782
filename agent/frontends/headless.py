"""The headless faces of the agent: `exec`, `fix` and `resume`, with JSONL or a readable transcript.

The pieces (settings, workspace, model, backend, sandbox, tools, session log)
are wired in agent/runtime.py, the one composition root; this module runs the
loop and prints what happens. The loop itself knows none of this.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from gptoss_agent.agent import prompts
from gptoss_agent.agent.safe_text import line as safe_line
from gptoss_agent.agent.events import (AgentEvent, AttemptFinished, Committed, ErrorRaised, Notice, ReasoningEmitted,
                                       RunFinished, RunStarted, RunStatus, TestsReported, ToolCalled, ToolFinished,
                                       key_argument, printed_types)
# The composition root lives in agent/runtime.py; these names stay importable from here.
from gptoss_agent.agent.runtime import (LoadedModel, RunOptions, Runtime, SetupError, Workspace,  # noqa: F401
                                        build_runtime, prepare_workspace, workspace_root)
from gptoss_agent.agent.frontends.exit_codes import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_USAGE

# Every type `--json` can print on stdout (README, "JSONL events"; batch adds BATCH_JSONL_TYPES).
JSONL_TYPES = printed_types()
BATCH_JSONL_TYPES = {"batch_finished"}


# ---------------------------------------------------------------------- output

class JsonlPrinter:
    """One JSON object per line on stdout, only the documented event types; the rest to stderr."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out, self.err = out, err

    def __call__(self, event: AgentEvent) -> None:
        if event.type in JSONL_TYPES:
            # ASCII-only JSON: control, C1, bidi and zero-width characters from the model or
            # the repository travel as \u escapes, so a person tailing the stream sees text,
            # and a terminal never receives them raw. Any JSON reader decodes them back.
            self.out.write(json.dumps(event.to_json(), ensure_ascii=True) + "\n")
            self.out.flush()
        elif isinstance(event, Notice):
            self.err.write(f"gptoss-agent: {safe_line(event.text)}\n")


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
        from gptoss_agent.agent.safe_text import block, line

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
        from gptoss_agent.agent.safe_text import line as safe_line

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

def project_instructions(root: Path, *, repo_map: str = "") -> str:
    """Our instructions, the repository's own (AGENTS.md, .gptoss-agent/instructions.md), then the repo map.

    Repository text is read with bounds and fenced as repository content (agent/repo_instructions.py).
    """
    from gptoss_agent.agent.repo_instructions import project_instructions_text

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
    return runtime.operations.focused_map(budget, focus_text, extra_focus)


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


def _exit_code(status: RunStatus) -> int:
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
    environment = runtime.ctx.probes.get("environment")  # the last test run failed only for the environment
    if result.status == "completed" and environment is not None:
        sink(Notice(runtime.operations.environment_message(environment)))  # run_finished stays the stream's last
        return EXIT_USAGE
    return _exit_code(result.status)


class _AttemptsOnlyLog:
    """fix's view of the session log: the loop's end of a run is the end of one attempt, not of the run.

    The loop logs a `run_finished` after each attempt; fix logs an `attempt_finished`
    for it instead and one `run_finished` at the very end, so `sessions` shows the
    true outcome (and a run that dies half-way shows as interrupted, not completed).
    """

    def __init__(self, log) -> None:
        self._log = log

    def write(self, kind: str, **fields: Any) -> None:
        event = fields.get("event")
        if kind == "event" and isinstance(event, dict) and event.get("type") == "run_finished":
            return
        self._log.write(kind, **fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def run_fix(options: RunOptions, max_attempts: int = 3) -> int:
    """Run the suite; if red, let the agent fix it attempt by attempt; commit when green.

    Events: run_started, tests, then per attempt the agent's events, tests and
    attempt_finished; commit; exactly one run_finished with the true outcome, last.
    """
    from gptoss_agent.agent.operations import (OperationFailed, WorkspaceOperations, commit_subject,
                                               environment_model_note)

    sink = printer(options)
    task = "Make the failing tests pass."
    workspace = prepare_workspace(options, notify=sink)  # says first if the repository's tests will run unconfined
    if workspace.settings.approval == "read-only":  # the suite is the repository's code: it can write
        raise SetupError("fix runs the tests and edits files, which read-only approval forbids; "
                         "use --approval ask, auto-edit or full-auto")
    ctx = workspace.ctx
    operations = WorkspaceOperations(ctx)
    started = time.monotonic()
    check_before_fix(ctx, options.allow_dirty)  # refusals come before the suite runs, never after
    report = operations.run_tests()
    if report.green and _no_results(report):  # exit 0 and nothing run: no proof the suite passes
        sink(RunStarted(task, str(ctx.workspace), "(not loaded)", options.backend or workspace.settings.backend))
        sink(TestsReported.from_report(report))
        reason = _no_results_message(ctx, report)
        sink(ErrorRaised(reason))
        sink(RunFinished("failed", 0, 0, 0, 0, round(time.monotonic() - started, 3), reason))
        return EXIT_USAGE
    if report.green:
        sink(RunStarted(task, str(ctx.workspace), "(not loaded)", options.backend or workspace.settings.backend))
        sink(TestsReported.from_report(report))
        sink(Notice("the test suite already passes; nothing to fix"))
        sink(RunFinished("completed", 0, 0, 0, 0, round(time.monotonic() - started, 3), "tests already pass"))
        return EXIT_OK
    environment = operations.environment_diagnosis(report)
    if environment.only_environment:  # no edit can make these pass: the user's to fix, told once, model unloaded
        sink(RunStarted(task, str(ctx.workspace), "(not loaded)", options.backend or workspace.settings.backend))
        sink(TestsReported.from_report(report))
        sink(ErrorRaised(operations.environment_message(environment)))
        kinds = ", ".join(dict.fromkeys(problem.kind for problem in environment.problems))
        sink(RunFinished("failed", 0, 0, 0, 0, round(time.monotonic() - started, 3),
                         f"environment problem ({kinds}): the model was not asked; the error message says what to run"))
        return EXIT_USAGE
    attempt_runs: list[RunFinished] = []

    def agent_sink(event: AgentEvent) -> None:
        if isinstance(event, RunFinished):
            attempt_runs.append(event)  # reported as attempt_finished, after the attempt's tests
        else:
            sink(event)

    runtime = build_runtime(options, task=task, sink=agent_sink, workspace=workspace,
                            session_config={"command": "fix"})
    agent, log = runtime.agent, runtime.session
    agent.session = _AttemptsOnlyLog(log)

    def emit(event: AgentEvent) -> None:
        log.write("event", event=event.to_json())
        sink(event)

    def attempt_finished(attempt: int, status: str, reason: str = "") -> None:
        run = attempt_runs[-1]
        emit(AttemptFinished(attempt, status, run.steps, run.prompt_tokens, run.cached_tokens,
                             run.completion_tokens, run.seconds, reason or run.reason))

    def finish(status: str, reason: str) -> int:
        emit(RunFinished(status, sum(r.steps for r in attempt_runs), sum(r.prompt_tokens for r in attempt_runs),
                         sum(r.cached_tokens for r in attempt_runs), sum(r.completion_tokens for r in attempt_runs),
                         round(time.monotonic() - started, 3), reason))
        log.close()
        return _exit_code(status)

    sink(RunStarted(task, str(ctx.workspace), runtime.model_name, runtime.backend_name, runtime.session.id))
    emit(TestsReported.from_report(report))
    failing_files = sorted({f.test_id.split("::")[0] for f in report.failures})
    start_agent(runtime, "", failing_files)
    message = prompts.render("fix", failures=operations.test_report_text(report))
    if environment.problems:  # some failures are environmental: the user is told, the model leaves them
        sink(Notice(operations.environment_message(environment)))
        message += "\n\n" + prompts.render("fix_environment", note=environment_model_note(environment))
    best = len(report.failing_ids) + report.errors
    stalled = 0
    cancel = threading.Event()
    with _CancelOnInterrupt(cancel):
        for attempt in range(1, max_attempts + 1):
            result = agent.run(message, cancel)
            if result.status != "completed":
                attempt_finished(attempt, result.status)
                return finish(result.status, result.reason or f"attempt {attempt} ended: {result.status}")
            report = operations.run_tests()
            if cancel.is_set():  # Ctrl-C stopped the check run: its result says nothing about the fix
                attempt_finished(attempt, "cancelled", "cancelled by the user while the tests ran")
                return finish("cancelled", "cancelled by the user while the tests ran; the agent's changes are "
                                           "left in the work tree, uncommitted")
            emit(TestsReported.from_report(report))
            left = _only_known_environment(operations, report, environment)
            done = (report.green and not _no_results(report)) or left is not None
            attempt_finished(attempt, "passed" if done else "failed",
                             "the test suite passes" if report.green else
                             "only the environment's failures are left" if done else "the test suite still fails")
            if done:
                if left is not None:  # committed like a pass; exit 2 says the user still has to act
                    return _fix_with_environment_left(ctx, left, options=options, result=result, report=report,
                                                      emit=emit, finish=finish)
                if options.no_commit:
                    return finish("completed", "the test suite passes; not committed (--no-commit)")
                title = commit_subject("Fix failing tests: ", result.final or "")
                try:
                    left_out = {path: why for path, why in operations.left_out_of_commit().items()
                                if not why.startswith("ignored")}  # .gitignore'd files are never committed
                    if left_out:  # committing the rest would record a commit that does not hold the fix
                        reason = ("the test suite passes, but the fix is not committed: " +
                                  "; ".join(f"{path} {why}" for path, why in sorted(left_out.items())) +
                                  ". The agent's changes are in the work tree for you to review and commit")
                        emit(ErrorRaised(reason))
                        return finish("failed", reason)
                    sha, _ = operations.commit(title, tests=_tests_line(report))
                except OperationFailed as exc:
                    emit(ErrorRaised(str(exc)))
                    return finish("failed", f"the test suite passes, but the commit failed: {exc}")
                emit(Committed(sha, title))
                return finish("completed", "the test suite passes; the fix is committed")
            remaining = len(report.failing_ids) + report.errors
            stalled = stalled + 1 if remaining >= best else 0
            best = min(best, remaining)
            if stalled >= 2:
                reason = "no progress: the failing tests did not shrink over two attempts"
                emit(ErrorRaised(reason))
                return finish("failed", reason)
            if runtime.settings.reasoning != "high":
                agent.set_reasoning("high")  # a failed attempt earns more thinking
                sink(Notice("raised reasoning effort to high after a failed attempt"))
            message = prompts.render("fix_again", failures=operations.test_report_text(report))
    reason = f"the tests still fail after {max_attempts} attempts"
    emit(ErrorRaised(reason))
    return finish("failed", reason)


def check_before_fix(ctx, allow_dirty: bool) -> None:
    """What makes `fix` pointless, checked before anything long runs: a `python` setting that names no
    interpreter, and a work tree holding the user's uncommitted work (untracked environments, caches and
    build outputs are not work: tools/untracked_noise.py)."""
    from gptoss_agent.agent.operations import OperationFailed, WorkspaceOperations

    env = getattr(ctx.sandbox, "python_env", None)
    if env is not None and env.problems:
        raise SetupError("; ".join(env.problems) + " (set python with --python, your config or GPTOSS_AGENT_PYTHON)")
    if allow_dirty:
        return
    inside = []
    if env is not None and env.prefix is not None:
        try:  # the folder as named, never where a link leads (`.venv -> src` must not make src/ noise)
            inside = [str(Path(os.path.normpath(env.prefix)).relative_to(ctx.workspace))]
        except ValueError:
            inside = []
    try:
        work = WorkspaceOperations(ctx).user_changes(inside)
    except OperationFailed as exc:
        raise SetupError(str(exc)) from None
    if work:  # file names are the repository's (or a command's): escaped, never raw terminal text
        raise SetupError("the work tree has uncommitted changes (" + ", ".join(safe_line(p) for p in sorted(work)[:5])
                         + "); commit or stash them, or pass --allow-dirty (they will be left alone)")


def _no_results(report) -> bool:
    """No test ran: a known runner (pytest, unittest, …) that printed no summary, or a summary of 0 tests.
    An exit code of 0 alone says nothing (an interpreter that does nothing exits 0). A custom test_cmd
    without a summary is judged by its exit code."""
    if report.passed:
        return False
    if report.results == "unknown":
        return report.runner != "custom"
    return not (report.failed or report.errors or report.skipped)


def _no_results_message(ctx, report) -> str:
    env = getattr(ctx.sandbox, "python_env", None)
    used = f"; the project's Python: {safe_line(env.describe())}" if env is not None else ""
    return (f"the test runner ({report.runner}) exited 0 but no test ran (no summary, or a summary of 0 tests), "
            f"so nothing says the suite passes{used}. Check that it runs your tests, or set test_cmd")


def _only_known_environment(operations, report, baseline):
    """The diagnosis when every failure left is one the first run already called environmental, else None."""
    if report.green or not baseline.explained or report.results == "unknown":
        return None
    now = operations.environment_diagnosis(report)
    if now.only_environment and now.explained <= baseline.explained:
        return now
    return None


def _fix_with_environment_left(ctx, left, *, options, result, report, emit, finish):
    """Commit a fix whose only remaining failures are environmental, then exit 2: the user must still act."""
    from gptoss_agent.agent.operations import OperationFailed, WorkspaceOperations, commit_subject

    operations = WorkspaceOperations(ctx)
    still = (f"{len(left.explained)} test(s) still fail for an environment reason: "
             + "; ".join(problem.message() for problem in left.problems))
    if options.no_commit:
        finish("completed", "the other tests pass; not committed (--no-commit); " + still)
        return EXIT_USAGE
    title = commit_subject("Fix failing tests: ", result.final or "")
    try:
        left_out = {path: why for path, why in operations.left_out_of_commit().items()
                    if not why.startswith("ignored")}
        if left_out:
            reason = ("the fix is not committed: " + "; ".join(f"{p} {why}" for p, why in sorted(left_out.items()))
                      + ". The agent's changes are in the work tree for you to review and commit")
            emit(ErrorRaised(reason))
            return finish("failed", reason)
        sha, _ = operations.commit(title, tests=_tests_line(report) + " (the failures left are environmental)")
    except OperationFailed as exc:
        emit(ErrorRaised(str(exc)))
        return finish("failed", f"the commit failed: {exc}")
    emit(Committed(sha, title))
    finish("completed", "the other tests pass and the fix is committed; " + still)
    return EXIT_USAGE


def _tests_line(report) -> str:
    """The commit body's test result; counts only when a runner's summary was read."""
    if report.results == "unknown":
        return f"result unknown (exit code {report.exit_code})"
    return f"{report.passed} passed, {report.failed + report.errors} failed"


def run_resume(options: RunOptions, ident: str | None, message: str | None) -> int:
    """Continue a session of this repository; a log is data, so its recorded repository is checked, not obeyed."""
    import shlex

    from gptoss_agent.agent.session import SessionError, WrongRepository, find_session

    root = workspace_root(options.cwd)
    try:
        record = find_session(ident, repo=str(root))
    except WrongRepository as exc:
        raise SetupError(f"{exc}; to continue it there, pass --cwd {shlex.quote(exc.record.repo)}") from None
    except SessionError as exc:
        raise SetupError(str(exc)) from None
    options.cwd = str(root)
    sink = printer(options)
    runtime = build_runtime(options, task=record.header["task"], sink=sink, session_path=record.path)
    if record.torn_line:
        sink(Notice("the session log's last line was torn (cut off mid-write) and was dropped"))
    runtime.agent.restore(record)
    if not runtime.agent.conversation.segments:  # cleared (/clear) or never started: nothing to continue from
        if message is None:
            runtime.session.close()
            raise SetupError(f"session {record.id} has no conversation to continue (it was cleared or never "
                             "started); pass --message to start one in it")
        start_agent(runtime, message)  # system and developer messages first, as in any new conversation
    sink(RunStarted(record.header["task"], str(runtime.ctx.workspace), runtime.model_name, runtime.backend_name,
                    runtime.session.id))
    cancel = threading.Event()
    with _CancelOnInterrupt(cancel):
        result = runtime.agent.run(message, cancel)
    runtime.session.close()
    return _exit_code(result.status)


def run_sessions(cwd: str = ".", *, every_repository: bool = False, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> int:
    """List sessions: this repository's by default, every repository's with --all; damaged logs never stop it."""
    from gptoss_agent.agent.session import scan_sessions

    repo = None
    if not every_repository:
        try:
            repo = str(workspace_root(cwd))
        except SetupError:
            err.write("gptoss-agent: not in a git repository; listing every repository's sessions\n")
    rows, problems = scan_sessions(repo=repo)
    for problem in problems:
        err.write(f"gptoss-agent: {_one_line(problem)}\n")
    if not rows:
        out.write("no sessions yet" + (f" in {repo} (--all lists every repository's)" if repo else "") + "\n")
    else:
        out.write(f"{'session':<22}  {'started':<16}  {'status':<11} {'steps':>9}  repository  task\n")
    for record in rows:
        for warning in record.warnings:
            err.write(f"gptoss-agent: {_one_line(warning)}\n")
        started_at = record.header.get("started", 0)
        started_at = started_at if isinstance(started_at, (int, float)) and not isinstance(started_at, bool) else 0
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(started_at))
        task = session_task(record, 50)
        damaged = " (damaged log)" if record.damaged else ""
        out.write(f"{record.id}  {stamp}  {_one_line(record.status):<11} {record.steps:>3} steps  "
                  f"{_one_line(record.repo)}  {task}{damaged}\n")
    return EXIT_OK


def session_task(record, width: int = 50) -> str:
    """What a session is about, as one escaped line of at most `width` characters.

    The header's task, except where the session logged a `run_started` event (the
    TUI does, for its first message, since its header only says "(interactive
    session)"): then that event's task, the first thing the user asked.
    """
    task = record.header["task"]
    for entry in record.records:
        event = entry["event"] if entry["kind"] == "event" else {}
        if event.get("type") == "run_started" and isinstance(event.get("task"), str) and event["task"].strip():
            task = event["task"]
            break
    text = _one_line(" ".join(task.split()))  # newlines and runs of spaces become one space, then escaped
    return text if len(text) <= width else text[:width - 1] + "…"


def _one_line(text: str) -> str:
    """A log is untrusted data: no control characters (escape sequences, newlines) reach the terminal."""
    from gptoss_agent.agent.safe_text import line

    return line(text)
