"""Command-line entry point: argument parsing and wiring only, no logic.

Heavy modules (llama_cpp, textual, openai_harmony) are imported inside the
command that needs them, so `gptoss-agent --help` starts instantly.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from gptoss_agent.agent import safe_text
from gptoss_agent.agent.approvals import APPROVAL_MODES
from gptoss_agent.agent.frontends.exit_codes import (EXIT_BROKEN_PIPE, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK,
                                                     EXIT_USAGE)
from gptoss_agent.agent.choices import REASONING_EFFORTS, SANDBOX_MODES
from gptoss_agent.agent.user_error import UserError


class UsageError(UserError):
    """A bad command line; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptoss-agent",
        description="Offline coding agent: gpt-oss in llama.cpp, Harmony tool calls, sandboxed tools.")
    from gptoss_agent.agent import __version__

    parser.add_argument("--version", action="version", version=f"gptoss-agent {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and llama.cpp logs")
    parser.add_argument("--allow-any-model", dest="tui_allow_any_model", action="store_true",
                        help="(interactive) load a GGUF that is not gpt-oss (experiments)")
    parser.add_argument("--model", dest="tui_model", metavar="PATH", help="(interactive) GGUF path")
    parser.add_argument("--backend", dest="tui_backend", metavar="BACKEND",
                        help="(interactive) llama | replay:FILE | http://HOST:PORT")
    parser.add_argument("--server-model", dest="tui_server_model", metavar="NAME",
                        help="(interactive) the model an http:// backend is asked for (default: the server's own)")
    parser.add_argument("--approval", dest="tui_approval", metavar="MODE",
                        choices=APPROVAL_MODES,
                        help=f"(interactive) {' | '.join(APPROVAL_MODES)}: when to ask before a change "
                             "(default ask)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    exec_ = sub.add_parser("exec", help="run one task headless")
    _run_options(exec_)
    exec_.add_argument("task", help="the task, or - to read it from standard input")
    fix = sub.add_parser("fix", help="make the failing tests pass, then commit")
    _run_options(fix)
    fix.add_argument("--allow-dirty", action="store_true", help="start even with uncommitted changes (left alone)")
    batch = sub.add_parser("batch", help="run a TOML plan of tasks, each in its own worktree and branch")
    _run_options(batch)
    batch.add_argument("plan", help="the plan file (TOML)")
    batch.add_argument("--jobs", type=int, default=1, help="tasks at a time")
    batch.add_argument("--resume", action="store_true", help="skip tasks the manifest says are finished")
    batch.add_argument("--dry-run", action="store_true", help="list the tasks and stop")
    batch.add_argument("--allow-dirty", action="store_true", help="run although the checkout has uncommitted changes")
    batch.add_argument("--force", action="store_true", help="if a task's branch exists, use a suffixed name")
    resume = sub.add_parser("resume", help="continue a session")
    _run_options(resume)
    resume.add_argument("session", nargs="?", help="session id (default: --last)")
    resume.add_argument("--last", action="store_true", help="the most recent session")
    resume.add_argument("--message", help="a new user message to continue with")
    acp_ = sub.add_parser("acp", help="serve an editor over the Agent Client Protocol on stdin/stdout (Zed, JetBrains, "
                                       "Neovim, Emacs)")
    _run_options(acp_)
    sessions = sub.add_parser("sessions", help="list this repository's sessions (id, repo, task, status, steps, time)")
    sessions.add_argument("--all", action="store_true", help="every repository's sessions")
    map_ = sub.add_parser("map", help="print the repo map the model sees")
    map_.add_argument("--tokens", type=int, default=None, help="token budget (default: the map_tokens setting)")
    map_.add_argument("--cwd", default=".", help="the repository")
    map_.add_argument("--focus", nargs="*", default=[], help="files (or folders) to show first, then their neighbours")
    map_.add_argument("--model", help="GGUF path (its vocabulary counts the tokens)")
    doctor = sub.add_parser("doctor", help="report the sandbox mechanism, the model and the vocabulary")
    doctor.add_argument("--sandbox", default="auto", choices=SANDBOX_MODES)
    doctor.add_argument("--cwd", default=".", help="the repository whose Python environment to report")

    model = sub.add_parser("model", help="find, inspect or fetch the model")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    where = model_sub.add_parser("where", help="list every place searched for the GGUF and what was found")
    where.add_argument("--model", help="an explicit GGUF path to check first")
    info = model_sub.add_parser("info", help="show the chosen model's metadata (no loading)")
    info.add_argument("--model", help="GGUF path (default: discovery)")
    vocab = model_sub.add_parser("vocab", help="derive the offline o200k vocabulary from a gpt-oss GGUF")
    vocab.add_argument("path", nargs="?", help="GGUF path (default: discovery)")
    pull = model_sub.add_parser("pull", help="download gpt-oss-20b (the only command that uses the network)")
    pull.add_argument("--repo", default=None, help="Hugging Face repository (default ggml-org/gpt-oss-20b-GGUF)")
    pull.add_argument("--file", default=None, help="file in the repository")
    return parser


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cwd", default=".", help="the repository to work in")
    parser.add_argument("--model", help="GGUF path")
    parser.add_argument("--backend", help="llama | replay:FILE | http://HOST:PORT")
    parser.add_argument("--server-model", metavar="NAME",
                        help="the model an http:// backend is asked for (default: the server's own)")
    parser.add_argument("--reasoning", choices=REASONING_EFFORTS)
    parser.add_argument("--approval", choices=APPROVAL_MODES)
    parser.add_argument("--max-steps", type=_positive_int, metavar="N")
    parser.add_argument("--json", action="store_true", help="print one JSON event per line")
    parser.add_argument("--test-cmd", help="the command that runs the tests")
    parser.add_argument("--test-timeout", type=_positive_int, metavar="SECONDS",
                        help="stop the test suite after this long and name the test that was running (default 600)")
    parser.add_argument("--python", metavar="PATH", help="the project's interpreter or environment folder "
                        "(default: detected as your shell would find it; `gptoss-agent doctor` shows which)")
    parser.add_argument("--no-commit", action="store_true", help="never commit")
    parser.add_argument("--sandbox", choices=SANDBOX_MODES)
    parser.add_argument("--allow-remote", action="store_true", help="allow a server outside the local network")
    parser.add_argument("--allow-any-model", action="store_true",
                        help="load a GGUF that is not gpt-oss (experiments; tool calls will likely fail)")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be handled quietly
    except BrokenPipeError:
        return _reader_went_away()


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "model": _model, "exec": _run, "fix": _run, "resume": _run, "batch": _run, "tui": _tui, "acp": _acp, "sessions": _sessions, "doctor": _doctor, "map": _map}
    if args.command is None:
        args.command = "tui"
    try:
        return handlers[args.command](args)
    except UserError as exc:  # SetupError, ConfigError, UsageError: one line, exit 2
        # messages name paths from the environment, the config and the repository: shown, never obeyed
        print(f"gptoss-agent: {safe_text.block(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gptoss-agent: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        raise  # the reader left: `main` ends quietly
    except Exception as exc:  # a clear line for people, the traceback with --debug
        if args.debug:
            raise
        print(f"gptoss-agent: {type(exc).__name__}: {safe_text.block(exc)} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_FAILED


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a bad value is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _reader_went_away() -> int:
    """`gptoss-agent sessions | head`: the reader closed the pipe; stop quietly, as `yes | head` does."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _options_from(args: argparse.Namespace):
    """The RunOptions of every command that takes _run_options' flags (one place: a new flag reaches them all)."""
    from gptoss_agent.agent.runtime import RunOptions

    return RunOptions(
        cwd=args.cwd, model=args.model, backend=args.backend, server_model=args.server_model,
        reasoning=args.reasoning, approval=args.approval,
        max_steps=args.max_steps, json=args.json, test_cmd=args.test_cmd,
        test_timeout=args.test_timeout, no_commit=args.no_commit,
        allow_dirty=getattr(args, "allow_dirty", False), sandbox=args.sandbox, allow_remote=args.allow_remote,
        allow_any_model=args.allow_any_model, extra={"python": args.python} if args.python else {})


def _run(args: argparse.Namespace) -> int:
    from gptoss_agent.agent.frontends import headless

    options = _options_from(args)
    try:
        if args.command == "exec":
            task = (sys.stdin.read() if args.task == "-" else args.task).strip()
            if not task:
                raise UsageError("the task is empty")
            return headless.run_exec(options, task)
        if args.command == "fix":
            return headless.run_fix(options)
        if args.command == "batch":
            from gptoss_agent.agent.frontends.batch_runner import run_batch_command

            return run_batch_command(options, args.plan, jobs=args.jobs, resume=args.resume, dry_run=args.dry_run,
                                     force=args.force)
        return headless.run_resume(options, None if args.last else args.session, args.message)
    except headless.SetupError as exc:
        raise UsageError(str(exc)) from None


def _acp(args: argparse.Namespace) -> int:
    """An editor starts us: the same run options as exec; each session's repository is the editor's cwd."""
    from gptoss_agent.agent.frontends.acp.main import serve

    return serve(_options_from(args))


def _tui(args: argparse.Namespace) -> int:
    """No subcommand: the interactive TUI in the current repository.

    Only the cheap checks run before the first frame (a terminal? a git
    repository? a valid config?); the sandbox probe, the git scan and the model
    load happen in the app's background worker. The terminal leaves line mode
    first of all, so keys typed while Python starts are kept, Enter included.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the interactive UI needs a terminal (standard input and output are not one); "
                         "for scripts and pipes use `gptoss-agent exec \"TASK\"` or `exec --json`")
    from gptoss_agent.agent.frontends.tui.terminal import keys_held

    with keys_held(sys.stdin) as typed:
        return _run_tui(args, typed.text)


def _run_tui(args: argparse.Namespace, type_ahead: str = "") -> int:
    from gptoss_agent.agent.frontends import headless
    from gptoss_agent.agent.config import ConfigError, load_settings
    from gptoss_agent.agent.frontends.tui.app import GptossApp, ModelMissing
    from gptoss_agent.agent.runtime import missing_model

    options = headless.RunOptions(cwd=".", model=args.tui_model, backend=args.tui_backend,
                                  server_model=args.tui_server_model, allow_any_model=args.tui_allow_any_model)
    try:
        root = headless.workspace_root(options.cwd)
        settings = load_settings(root)
    except (headless.SetupError, ConfigError) as exc:
        raise UsageError(str(exc)) from None

    def connect(model_override, progress, sink, cancel_load):
        if model_override:
            options.model = model_override
        workspace = headless.prepare_workspace(options, notify=sink)  # repository settings refused, sandbox off
        missing = missing_model(workspace.settings)
        if missing is not None:
            places, fetch, named = missing
            raise ModelMissing(places, fetch, refused=named)
        return headless.build_runtime(options, task="(interactive session)", sink=sink, workspace=workspace,
                                      on_progress=progress, cancel_load=cancel_load)

    app = GptossApp(connect, approval=args.tui_approval or settings.approval or "ask", repo=root,
                    type_ahead=type_ahead)
    app.run()
    # Textual prints an unhandled exception's traceback after leaving the screen and sets
    # return_code 1: a crash must not look like a clean quit to the shell (A4 #1).
    return EXIT_FAILED if app.return_code else EXIT_OK


def _sessions(args: argparse.Namespace) -> int:
    from gptoss_agent.agent.frontends import headless

    return headless.run_sessions(".", every_repository=args.all)


def _map(args: argparse.Namespace) -> int:
    from gptoss_agent.agent.frontends import headless
    from gptoss_agent.agent.config import ConfigError, load_settings
    from gptoss_agent.agent.operations import repository_operations
    from gptoss_agent.agent.runtime import token_counter

    try:
        root = headless.workspace_root(args.cwd)
        settings = load_settings(root, flags={"model": args.model})
    except (headless.SetupError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    budget = args.tokens if args.tokens is not None else settings.map_tokens
    try:
        result = repository_operations(root).repo_map(budget, token_counter(settings), args.focus)
    except headless.SetupError as exc:  # no vocabulary to count the map's tokens with
        raise UsageError(str(exc)) from None
    from gptoss_agent.agent.safe_text import block

    print(block(result.text))  # names from repository files: shown, never obeyed by the terminal
    print(f"[{result.files} files mapped, {result.parsed} parsed this run"
          f"{', map reused from cache' if result.from_cache else ''}]", file=sys.stderr)
    for note in getattr(result, "not_mapped", []):
        print(f"[skipped {block(note)}]", file=sys.stderr)
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from gptoss_agent.agent.model import discovery as models, vocab
    from gptoss_agent.agent.operations import sandbox_report

    report, properties = sandbox_report(args.sandbox)
    print(f"sandbox: {report.mechanism or 'UNAVAILABLE'}: {report.reason}")
    for check in report.checks:
        print(f"  - {check}")
    for prop in properties:
        print(f"  [{'holds' if prop.holds else 'DOES NOT HOLD'}] {prop.name}" + (f": {prop.detail}" if prop.detail else ""))
    _doctor_python(args.cwd)
    _doctor_llama()
    search = models.search(None)
    print(f"model: {search.chosen or 'not found (gptoss-agent model where)'}")
    cached = vocab.cache_dir() / vocab.O200K_FILENAME
    print(f"vocabulary: {'cached at ' + str(cached) if cached.exists() else 'not derived yet (gptoss-agent model vocab)'}")
    return EXIT_OK if report.mechanism else EXIT_FAILED


def _doctor_python(cwd: str) -> None:
    """The project's Python for the repository at `cwd` (tools/python_env.py), your python setting first."""
    from pathlib import Path

    from gptoss_agent.agent.config import ConfigError, load_settings_with_origins
    from gptoss_agent.agent.frontends.headless import SetupError, workspace_root
    from gptoss_agent.agent.operations import python_env_lines
    from gptoss_agent.agent.safe_text import line

    try:
        root = workspace_root(cwd)
    except SetupError:
        root = Path(cwd).resolve()
    try:
        loaded = load_settings_with_origins(root)
    except ConfigError as exc:
        print(f"python: {line(str(exc))}")
        return
    for text in python_env_lines(root, loaded.settings.python):
        print(line(text))  # folder names come from the repository and the user's disk
    report = loaded.repo_report
    if report is not None and "python" in report.ignored:  # the repository may not choose what runs its code
        print(line(f"  - ignored: python in {report.path} (only you choose the interpreter: --python, your "
                   "config or GPTOSS_AGENT_PYTHON)"))


def _doctor_llama() -> None:
    """What llama.cpp will use on this machine: CPU features, the AMX probe, GPU offload."""
    from gptoss_agent.agent.model.backends.cpu_probe import probe

    print(f"cpu: {probe().describe()}")
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001 - a broken install is what doctor is for
        print(f"llama.cpp: not importable: {type(exc).__name__}: {exc}")
        return
    offload = llama_cpp.llama_supports_gpu_offload()
    print(f"llama.cpp: llama-cpp-python {llama_cpp.__version__}, GPU offload "
          f"{'available (all layers are offloaded)' if offload else 'not in this build (CPU only; see README for a GPU build)'}")
    print(f"  features: {llama_cpp.llama_print_system_info().decode(errors='replace').strip()}")


def _model(args: argparse.Namespace) -> int:
    from gptoss_agent.agent.model import discovery as models

    if args.model_command == "where":
        result = models.search(args.model, config_model=_config_model())
        print(result.report())  # names escaped by the report: file names on disk are untrusted text
        return EXIT_OK  # a report, not a failure: a newcomer's first command ends well
    if args.model_command == "info":
        return _model_info(_find(args.model))
    if args.model_command == "vocab":
        from gptoss_agent.agent.model import vocab

        path = _find(args.path)
        try:
            directory = vocab.install_vocabulary(vocab.derive_from_gguf(path), str(path))
        except vocab.VocabularyError as exc:
            raise UsageError(str(exc)) from None
        print(f"vocabulary derived from {path}, SHA-256 verified, saved in {directory}")
        return EXIT_OK
    if args.model_command == "pull":
        from gptoss_agent.agent.model.pull import PullError, pull_model

        kwargs = {k: v for k, v in (("repo", args.repo), ("filename", args.file)) if v}
        try:
            path = pull_model(**kwargs)
        except PullError as exc:
            raise UsageError(str(exc)) from None
        print(f"saved {path}")
        return EXIT_OK
    raise UsageError(f"unknown model action {args.model_command}")


def _model_info(path) -> int:
    from gptoss_agent.agent.model.discovery import describe_gguf

    from gptoss_agent.agent.safe_text import line

    for key, value in describe_gguf(path).items():  # GGUF metadata is untrusted: escapes made visible
        print(f"{key:<18} {line(value)}")
    return EXIT_OK


def _config_model() -> str | None:
    from gptoss_agent.agent.config import ConfigError, load_settings
    from pathlib import Path

    try:
        return load_settings(Path.cwd()).model
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _find(explicit: str | None):
    from gptoss_agent.agent.model import discovery as models

    try:
        # info and vocab inspect any GGUF (they say when it is not gpt-oss); runs refuse one by default
        return models.find_model(explicit, config_model=_config_model(), allow_any_model=True)
    except models.ModelNotFoundError as exc:
        raise UsageError(models.not_found_line(exc.search)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
