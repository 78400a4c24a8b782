"""The one composition root: options → settings, workspace, model, sandbox, tools, agent.

Every front-end (exec, fix, resume, batch, the Python API and the TUI) builds
its runtime here from one `RunOptions`, so a flag cannot be honoured in one
place and ignored in another. Batch adds only what is its own: a worktree per
task and a backend shared between tasks.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gptoss_agent.agent.events import Notice
from gptoss_agent.agent.user_error import UserError


class SetupError(UserError):
    """Something the user must fix before a run can start (exit code 2)."""


class LoadCancelled(SetupError):
    """The user cancelled the model load (Esc in the TUI): nothing is loaded, and a later load may start."""


@dataclass
class RunOptions:
    """What a front-end asks for. None means "not given": the settings layers decide."""

    cwd: str = "."
    model: str | None = None
    backend: str | None = None
    server_model: str | None = None  # the model an http:// server is asked for
    reasoning: str | None = None
    approval: str | None = None
    max_steps: int | None = None
    json: bool = False
    test_cmd: str | None = None
    test_timeout: float | None = None  # seconds the test suite may run (the test_timeout setting)
    no_commit: bool = False
    allow_dirty: bool = False
    sandbox: str | None = None
    allow_remote: bool = False
    allow_any_model: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # any other setting (map_tokens, max_tokens_per_step, …)
    flag_origin: Callable[[str], str] | None = None  # how messages name an option (default: the CLI flag)

    def flags(self) -> dict[str, Any]:
        """The settings this front-end sets explicitly (the highest layer)."""
        return {"model": self.model, "backend": self.backend, "server_model": self.server_model,
                "reasoning": self.reasoning,
                "approval": self.approval, "max_steps": self.max_steps, "test_cmd": self.test_cmd,
                "test_timeout": self.test_timeout, "sandbox": self.sandbox, "allow_remote": self.allow_remote or None,
                "allow_any_model": self.allow_any_model or None, **self.extra}


@dataclass
class Workspace:
    """The repository side of a run, ready before any model is loaded."""

    root: Path
    settings: Any
    ctx: Any
    origins: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadedModel:
    """The codec and backend a run talks to; batch shares one between tasks."""

    codec: Any
    backend: Any
    backend_name: str
    model_name: str


@dataclass
class Runtime:
    """Everything a run needs, built once."""

    agent: Any
    ctx: Any
    settings: Any
    session: Any
    backend_name: str
    model_name: str
    backend: Any = None

    @property
    def operations(self):
        """/diff, /undo, /commit, /test and the file list on this run's tool context (agent/operations.py)."""
        from gptoss_agent.agent.operations import WorkspaceOperations

        return WorkspaceOperations(self.ctx)

    def use_editor_files(self, files) -> None:
        """The model's file tools read the editor's unsaved buffers and write through the editor (ACP), after
        the same checks as on disk (tools/editor_files.py); every other tool holds the tree's lock."""
        from gptoss_agent.tools.editor_files import editor_registry

        self.agent.registry = editor_registry(self.agent.registry, files)


NO_COMMIT_TOOLS = ("functions.git_commit",)


def resolve_settings(root: Path, options: RunOptions, notify: Callable[[Notice], None] | None = None):
    """The settings for `root` with where each came from; the repository file's refusals reported once."""
    from gptoss_agent.agent.config import ConfigError, cli_flag, load_settings_with_origins

    try:
        loaded = load_settings_with_origins(root, flags=options.flags(), flag_origin=options.flag_origin or cli_flag)
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
    if loaded.repo_report is not None and notify is not None:
        notify(Notice(loaded.repo_report.message()))
    return loaded


def make_workspace(root: Path, settings, *, origins: dict[str, str] | None = None,
                   notify: Callable[[Notice], None] | None = None, baseline_dirty=None) -> Workspace:
    """The sandbox and tool context for `root`; says so first when the sandbox is off."""
    from gptoss_agent.tools import attribution, git as git_tools
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.host_git import HostGitError
    from gptoss_agent.tools.sandbox import Sandbox

    sandbox = Sandbox(root, mode=settings.sandbox, python=settings.python)
    if sandbox.mechanism is None:
        raise SetupError(sandbox.report.reason)
    origins = origins or {}
    if sandbox.mechanism == "none" and notify is not None:
        notify(Notice(sandbox_off_warning(origins.get("sandbox", "the default"))))
    dirty = git_tools.dirty_paths(root) if baseline_dirty is None else baseline_dirty
    ctx = ToolContext(workspace=root, sandbox=sandbox, test_command=settings.test_cmd,
                      test_timeout_s=settings.test_timeout, baseline_dirty=frozenset(dirty))
    try:
        attribution.start_session(ctx)  # pins the git directory: a repointed `.git` stops host git
    except HostGitError as exc:
        raise SetupError(str(exc)) from None
    return Workspace(root, settings, ctx, origins)


def sandbox_off_warning(origin: str) -> str:
    """The warning names where `sandbox = "none"` came from, never a flag the user did not pass."""
    return (f"the sandbox is OFF (sandbox \"none\" from {origin}): the repository's code, its tests and every "
            "command the model runs will run unconfined on this machine")


def workspace_root(cwd: str) -> Path:
    """The repository that holds CWD, found and validated without running anything the repository controls."""
    path = Path(cwd).expanduser().resolve()
    if not path.is_dir():
        raise SetupError(f"--cwd {cwd}: no such folder")
    # tools.host_git, not tools.git: this runs before the TUI's first frame, and tools.git's imports (the tool
    # registry, the sandbox, attribution) can wait for the model's loading worker.
    from gptoss_agent.tools.host_git import HostGitError, find_root, validate

    try:  # found and validated without running git: nothing the repository controls can run here
        return validate(find_root(path)).root
    except HostGitError as exc:
        raise SetupError(str(exc)) from None


def prepare_workspace(options: RunOptions, *, notify: Callable[[Notice], None] | None = None) -> Workspace:
    """Settings, the repository and its sandbox: everything but the model."""
    root = workspace_root(options.cwd)
    loaded = resolve_settings(root, options, notify)
    return make_workspace(root, loaded.settings, origins=loaded.origins, notify=notify)


def load_codec(settings) -> tuple[Any, Path | None]:
    """The Harmony codec (its vocabulary derived from the GGUF) and, for the llama backend, the model file."""
    from gptoss_agent.agent.model import discovery as models, vocab
    from gptoss_agent.agent.model.harmony import HarmonyCodec

    spec = settings.backend
    model_path = None
    if spec == "llama":
        try:
            model_path = models.find_model(settings.model, allow_any_model=settings.allow_any_model)
        except models.ModelNotFoundError as exc:
            raise SetupError(models.not_found_line(exc.search)) from None
        candidates = [model_path]
    else:
        chosen = models.search(settings.model, allow_any_model=settings.allow_any_model).chosen
        candidates = [chosen] if chosen else []
    try:
        codec = HarmonyCodec.load(vocab.ensure_vocabulary(candidates))
    except vocab.VocabularyError as exc:
        raise SetupError(str(exc)) from None
    return codec, model_path


def load_model(settings, *, sink: Callable[[Notice], None], on_progress=None,
               cancel_load: threading.Event | None = None) -> LoadedModel:
    """Find the model, derive the vocabulary and start the backend the settings ask for.

    Setting `cancel_load` stops a llama load at llama.cpp's next progress callback (LoadCancelled)."""
    from gptoss_agent.agent.model.backends.factory import describe

    codec, model_path = load_codec(settings)
    started = time.monotonic()
    backend = start_backend(settings, codec, model_path, on_progress=on_progress, cancel_load=cancel_load)
    if settings.backend == "llama":
        sink(Notice(f"model loaded in {time.monotonic() - started:.1f}s: {model_path}"))
    return LoadedModel(codec, backend, describe(settings.backend),
                       model_path.name if model_path else describe(settings.backend))


def start_backend(settings, codec, model_path: Path | None, *, on_progress=None,
                  cancel_load: threading.Event | None = None):
    """The backend the settings name (remote servers only with allow_remote, which only the user can set)."""
    from gptoss_agent.agent.model.backends.factory import BackendSpecError, make_backend

    spec = settings.backend
    try:
        backend = make_backend(spec, settings=settings, codec=codec, model_path=model_path, on_progress=on_progress,
                               cancel_load=cancel_load)
    except BackendSpecError as exc:
        raise SetupError(str(exc)) from None
    except Exception as exc:  # replay file, server address, model load: all set-up problems
        if cancel_load is not None and cancel_load.is_set():  # the load stopped because the user asked
            raise LoadCancelled("model loading cancelled") from None
        raise SetupError(f"{type(exc).__name__}: {exc}") from None
    return backend


def tool_registry(*, no_commit: bool):
    """The tools the model sees; with --no-commit there is no git_commit to call."""
    from gptoss_agent.tools.catalog import default_registry
    from gptoss_agent.tools.registry import Registry

    registry = default_registry()
    if not no_commit:
        return registry
    return Registry(tools={name: tool for name, tool in registry.tools.items() if name not in NO_COMMIT_TOOLS},
                    aliases={alias: name for alias, name in registry.aliases.items() if name not in NO_COMMIT_TOOLS})


def create_session_log(options: RunOptions, workspace: Workspace, *, task: str,
                       session_config: dict[str, Any] | None = None):
    """A new session log for a run in `workspace` (the ACP server needs its id before the model is loaded)."""
    from gptoss_agent.agent.session import SessionLog

    return SessionLog.create(repo=str(workspace.root), task=task,
                             config={**dataclasses.asdict(workspace.settings), "no_commit": options.no_commit,
                                     **(session_config or {})})


def build_runtime(options: RunOptions, *, task: str, sink, session_path: Path | None = None,
                  workspace: Workspace | None = None, on_progress=None, model: LoadedModel | None = None,
                  session_config: dict[str, Any] | None = None, session_log: Any = None,
                  cancel_load: threading.Event | None = None, approver=None) -> Runtime:
    """Workspace, model, session log, tools and agent, from one options object.

    `workspace`, `model` and `session_log` may be built beforehand (fix runs the
    tests before loading the model; batch shares one model between tasks; the
    ACP server answers session/new with the log's id while the model loads).
    `approver` answers approvals (the editor asks its user); by default the
    approval setting decides alone, as nobody is there to ask.
    """
    from gptoss_agent.agent.approvals import policy_approver
    from gptoss_agent.agent.loop import Agent, Budgets
    from gptoss_agent.agent.session import SessionLog

    workspace = workspace or prepare_workspace(options, notify=sink)
    settings, ctx = workspace.settings, workspace.ctx
    model = model or load_model(settings, sink=sink, on_progress=on_progress, cancel_load=cancel_load)
    ctx.count_tokens = model.codec.count
    session = session_log or (SessionLog(session_path) if session_path else
                              create_session_log(options, workspace, task=task, session_config=session_config))
    budgets = Budgets(max_steps=settings.max_steps, max_tokens_per_step=settings.max_tokens_per_step,
                      context_window=getattr(model.backend, "n_ctx", None) or settings.n_ctx)
    agent = Agent(model.backend, model.codec, tool_registry(no_commit=options.no_commit), ctx, sink=sink,
                  approver=approver or policy_approver(settings.approval or "full-auto"), budgets=budgets,
                  session=session)
    if settings.map_tokens > 0:  # the repo map follows the run's edits and failing tests
        from gptoss_agent.tools.repomap_refresh import map_refresher

        agent.map_refresher = map_refresher(ctx.workspace, settings.map_tokens // 2, model.codec.count)
    return Runtime(agent, ctx, settings, session, model.backend_name, model.model_name, model.backend)


def token_counter(settings) -> Callable[[], Callable[[str], int]]:
    """A factory for the model's token counter: the vocabulary derived from the GGUF the settings find.

    A factory, so a repo map reused from its cache never loads the vocabulary."""
    def counter() -> Callable[[str], int]:
        from gptoss_agent.agent.model import discovery as models, vocab
        from gptoss_agent.agent.model.harmony import HarmonyCodec

        chosen = models.search(settings.model).chosen
        try:
            return HarmonyCodec.load(vocab.ensure_vocabulary([chosen] if chosen else [])).count
        except vocab.VocabularyError as exc:
            raise SetupError(str(exc)) from None

    return counter


def missing_model(settings) -> tuple[str, str, str | None] | None:
    """For the llama backend with no model file to load: where it looked, the fetch command, and the file the
    user named that was refused ("<file>: <why>", else None). None when there is a model (or another backend)."""
    if settings.backend != "llama":
        return None
    from gptoss_agent.agent.model import discovery as models

    found = models.search(settings.model, allow_any_model=settings.allow_any_model)
    if found.chosen is not None:
        return None
    named = next((f"{place.path.name}: {place.note}" for place in found.places  # the file the user named
                  if place.label in ("--model", "GPTOSS_AGENT_MODEL") and place.path and place.note), None)
    return found.describe(), models.PULL_COMMAND, named
