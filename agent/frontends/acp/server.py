"""`gptoss-agent acp`: the agent inside an editor, over the Agent Client Protocol (JSON-RPC 2.0 on stdio).

One process serves one editor: the model loads once, in the background, when
the editor says `initialize`; every session (one per editor thread) is built
through agent/runtime.py like exec and the TUI, runs the same loop in a worker
thread, and shares the loaded model with the others (generation serialised).
The loop's events become `session/update`s (agent/acp_mapping.py), approvals
become `session/request_permission`, approval modes become session modes, and
the editor's file system is used for the file tools when it offers it
(tools/editor_files.py), inside our checks. The process around it (descriptors,
the instant handshake) is agent/acp_main.py; the checked wire, agent/acp_wire.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import acp
from acp import RequestError
from acp.schema import (AvailableCommand, AvailableCommandsUpdate, InitializeResponse, ListSessionsResponse,
                        LoadSessionResponse, NewSessionResponse, PromptResponse, SessionInfo, SessionMode,
                        SessionModeState, SetSessionModeResponse)

from gptoss_agent.agent.frontends.acp.mapping import history_updates, message, prompt_text, stop_reason, thought
from gptoss_agent.agent.frontends.acp.model import ModelLoader
from gptoss_agent.agent.frontends.acp.session import ClientGone, EditorSession
from gptoss_agent.agent.runtime import RunOptions, SetupError
from gptoss_agent.agent.safe_text import block, line

log = logging.getLogger("gptoss-agent.acp")

BUSY = -32001  # a server error (JSON-RPC leaves -32000..-32099 to implementations): the session is answering
TOO_MANY = -32003  # a server error: this process serves MAX_SESSIONS sessions at most
MAX_SESSIONS = 256  # each prompted session holds its log and sandbox descriptors until the process ends
MAX_PROMPT_CHARS = 2_000_000  # past any model's context; tokenising more would hold up a cancel for seconds
MODES = {
    "read-only": ("Read only", "the agent reads and searches; nothing can change files or run code"),
    "ask": ("Ask", "the agent asks before every edit, command, test run and commit"),
    "auto-edit": ("Auto edit", "file edits go ahead; commands, tests and commits ask first"),
    "full-auto": ("Full auto", "everything goes ahead (inside the sandbox)"),
}
COMMANDS = {
    "compact": "summarise the conversation to free context",
    "undo": "revert the agent's last edits or its last commit",
    "diff": "show the uncommitted changes",
    "test": "run the test suite",
}
LOAD_NOTE_EVERY = 0.1  # a progress chunk per tenth of the model loaded
SHUTDOWN_WAIT_S = 10.0


def _mcp_note(servers) -> list[str]:
    """The editor's MCP servers are not used: the model's tools are ours, offline and sandboxed; say so once."""
    if not servers:
        return []
    names = ", ".join(line(getattr(s, "name", "?")) for s in servers[:5])
    return [f"the editor's MCP servers ({names}) are not used: gptoss-agent's tools run offline, in its sandbox"]


# ---------------------------------------------------------------------- the protocol

class AcpServer:
    """The ACP agent: every method an editor calls, checked for order and arguments."""

    def __init__(self, options: RunOptions, *, loader: ModelLoader | None = None) -> None:
        self.options = options
        self.loader = loader or ModelLoader(options)
        self.conn = None
        self.initialized = False
        self.closed = False
        self.client_fs = None
        self.sessions: dict[str, EditorSession] = {}
        self._loading: set[str] = set()  # ids being restored by session/load (registered once complete)
        self._opening = 0  # sessions being opened or loaded: they count against MAX_SESSIONS already
        self._in_flight = 0

    def on_connect(self, conn) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def _request(self):
        """Counts a request in flight: at the end of input, they are answered before the process ends."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    async def input_ended(self) -> None:
        """The editor closed its end: running turns stop; other requests in flight still get their answer."""
        self.client_gone()
        for _ in range(5):  # requests read just before the end start their handlers
            await asyncio.sleep(0)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # the last answers are written by the SDK's request tasks

    def client_gone(self) -> None:
        """The editor left: every turn stops where it is (its session log stays resumable)."""
        self.closed = True
        for session in self.sessions.values():
            session.cancel.set()

    # -- lifecycle

    def handshake_done(self, capabilities: dict[str, Any]) -> None:
        """`initialize` was answered before the SDK loaded (agent/acp_main.py): take its client capabilities."""
        from acp.schema import ClientCapabilities
        from pydantic import ValidationError

        try:
            self.client_fs = ClientCapabilities.model_validate(capabilities).fs
        except ValidationError:
            self.client_fs = None  # capabilities we cannot read: offer nothing of the editor's
        self.initialized = True
        self.loader.start()

    async def initialize(self, protocol_version: int, client_capabilities=None, client_info=None,
                         **kwargs: Any) -> InitializeResponse:
        from gptoss_agent.agent.frontends.acp.wire import initialize_result

        self.initialized = True
        self.client_fs = client_capabilities.fs if client_capabilities is not None else None
        asyncio.get_running_loop().call_soon(self.loader.start)  # after the answer is on its way
        return InitializeResponse.model_validate(initialize_result())

    async def authenticate(self, method_id: str, **kwargs: Any) -> None:
        raise RequestError(-32602, "gptoss-agent needs no authentication (the model runs on this machine)")

    async def new_session(self, cwd: str, mcp_servers=None, additional_directories=None,
                          **kwargs: Any) -> NewSessionResponse:
        async with self._request():
            self._require_initialized()
            from gptoss_agent.agent.runtime import create_session_log

            with self._room():
                options, workspace, notes = await self._workspace(cwd)
                try:
                    log_file = await asyncio.to_thread(create_session_log, options, workspace,
                                                       task="(editor session)", session_config={"command": "acp"})
                except OSError as exc:
                    raise RequestError(-32603, f"cannot create the session log: {exc}") from None
                log_file.close()  # reopened at the first prompt: a session never prompted holds no descriptor
                session = self._open(log_file.id, options, workspace, notes + _mcp_note(mcp_servers), log_file)
            return NewSessionResponse(session_id=session.id, modes=self._modes(session))

    async def load_session(self, cwd: str, session_id: str, mcp_servers=None, additional_directories=None,
                           **kwargs: Any) -> LoadSessionResponse:
        async with self._request():
            self._require_initialized()
            if session_id in self.sessions:  # open in this process already: its history again, nothing rebuilt
                return await self._reopen(self.sessions[session_id], cwd)
            if session_id in self._loading:
                raise RequestError(BUSY, f"session {line(session_id)} is being loaded; wait for that load's answer")
            with self._room():
                self._loading.add(session_id)  # before any await: a second load of it meanwhile is refused
                try:
                    return await self._load(cwd, session_id, mcp_servers)
                finally:
                    self._loading.discard(session_id)

    async def _load(self, cwd: str, session_id: str, mcp_servers) -> LoadSessionResponse:
        """A recorded session, restored; registered only once its history is replayed (a log that cannot be
        restored leaves nothing open)."""
        from gptoss_agent.agent.session import SessionError, WrongRepository, find_session

        options, workspace, notes = await self._workspace(cwd)
        try:
            record = await asyncio.to_thread(find_session, session_id, repo=str(workspace.root))
        except WrongRepository as exc:
            raise RequestError(-32602, str(exc)) from None
        except SessionError as exc:
            raise RequestError(-32002, str(exc)) from None
        if record.id != session_id:
            raise RequestError(-32002, f"no session {line(session_id)} (did you mean {record.id}?)")
        model = await self._model()
        session = self._open(record.id, options, workspace, notes + _mcp_note(mcp_servers), None, register=False)
        try:
            await asyncio.to_thread(self._restore, session, record, model)
            await session.flush()
        except Exception as exc:  # noqa: BLE001 - a log that cannot be restored is the editor's one-line error
            await session.close()
            if session.log is not None:
                session.log.close()
            if isinstance(exc, SetupError):  # ours (the runtime could not be built)
                raise RequestError(-32603, str(exc)) from None
            raise RequestError(-32002, f"cannot restore the session (its log does not fit this model or was "
                                       f"damaged): {line(str(exc))[:500]}") from None
        self.sessions[session.id] = session
        asyncio.get_running_loop().call_soon(self._announce, session)
        return LoadSessionResponse(modes=self._modes(session))

    async def _reopen(self, session: EditorSession, cwd: str) -> LoadSessionResponse:
        from gptoss_agent.agent.frontends.headless import workspace_root
        from gptoss_agent.agent.session import SessionError, read_session

        if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd:
            raise RequestError(-32602, f"cwd must be an absolute path, not {line(cwd)!r}")
        try:
            root = await asyncio.to_thread(workspace_root, cwd)
        except (SetupError, ValueError, OSError) as exc:
            raise RequestError(-32602, str(exc)) from None
        if os.path.realpath(str(root)) != os.path.realpath(session.root):  # as a fresh process would refuse it
            raise RequestError(-32602, f"session {session.id} belongs to the repository at {line(session.root)}, "
                                       f"not {line(str(root))}; open it from there")
        if session.busy:
            raise RequestError(BUSY, f"session {session.id} is answering a prompt; load it when the turn is over")
        if session.runtime is not None and session.log is not None:
            try:
                record = await asyncio.to_thread(read_session, session.log.path)
            except SessionError as exc:
                raise RequestError(-32002, str(exc)) from None
            for update in history_updates(record, session.runtime.agent.codec, session.root):
                session.post(update)
        await session.flush()
        return LoadSessionResponse(modes=self._modes(session))

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None,
                            **kwargs: Any) -> ListSessionsResponse:
        async with self._request():
            from gptoss_agent.agent.frontends.headless import workspace_root
            from gptoss_agent.agent.session import scan_sessions

            repo = None
            if cwd is not None:
                try:
                    repo = str(workspace_root(cwd))
                except SetupError as exc:
                    raise RequestError(-32602, str(exc)) from None
            rows, _ = await asyncio.to_thread(scan_sessions, repo=repo)
            return ListSessionsResponse(sessions=[
                SessionInfo(session_id=r.id, cwd=r.repo, title=line(r.header.get("task", ""))[:80],
                            updated_at=_iso(r.header.get("started"))) for r in rows[:200]])

    async def set_session_mode(self, mode_id: str, session_id: str, **kwargs: Any) -> SetSessionModeResponse:
        session = self._session(session_id)
        if mode_id not in MODES:
            raise RequestError(-32602, f"unknown mode {line(mode_id)!r}; the modes are {', '.join(MODES)}")
        session.mode = mode_id
        return SetSessionModeResponse()

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            session.cancel.set()

    async def prompt(self, prompt: list, session_id: str, **kwargs: Any) -> PromptResponse:
        async with self._request():
            session = self._session(session_id)
            if session.busy:
                raise RequestError(BUSY, f"session {session_id} is already answering a prompt; wait for its stop reason "
                                         "or cancel it (session/cancel) first")
            text = prompt_text(prompt, session.root)
            if len(text) > MAX_PROMPT_CHARS:  # tokenising it could not be cancelled, and no model's context holds it
                raise RequestError(-32602, f"the prompt is {len(text):,} characters; the limit is "
                                           f"{MAX_PROMPT_CHARS:,} (attach fewer or smaller files)")
            session.busy = True
            session.cancel = threading.Event()
            try:
                for note in session.notes:
                    session.post(thought(block(note) + "\n"))
                session.notes.clear()
                if session.runtime is None:
                    model = await self._model(session)
                    if model is None:  # cancelled while the model loaded
                        await session.flush()
                        return PromptResponse(stop_reason="cancelled")
                    try:
                        await asyncio.to_thread(self._build, session, model)
                    except Exception as exc:  # noqa: BLE001 - one line for the editor; the traceback to stderr
                        log.exception("building the session's runtime failed")
                        raise RequestError(-32603, str(exc) if isinstance(exc, SetupError)
                                           else f"{type(exc).__name__}: {exc}") from None
                command = text.strip()[1:].split(None, 1) if text.strip().startswith("/") else []
                if command and command[0] in COMMANDS:
                    status, reason = await _in_thread(self._command, session, command[0])
                else:
                    status, reason = await _in_thread(session.run_turn, text, session=session)
                await session.flush()
                return PromptResponse(stop_reason=stop_reason(status, reason))
            finally:
                session.busy = False

    # -- helpers

    def _require_initialized(self) -> None:
        if not self.initialized:
            raise RequestError(-32600, "initialize first: the client must send `initialize` before any session")

    def _session(self, session_id: str) -> EditorSession:
        self._require_initialized()
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError(-32602, f"no session {line(session_id)!r} in this process; create one with "
                                       "session/new or open a recorded one with session/load")
        return session

    async def _workspace(self, cwd: str):
        from gptoss_agent.agent.runtime import prepare_workspace

        if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd:
            raise RequestError(-32602, f"cwd must be an absolute path, not {line(cwd)[:300]!r}")
        try:  # a name too long, a folder that is not there or we may not enter: the caller's cwd, invalid params
            await asyncio.to_thread(os.stat, cwd)
        except (ValueError, OSError) as exc:
            raise RequestError(-32602, f"cwd {line(cwd)[:300]!r} cannot be used: "
                                       f"{line(exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc))}"
                               ) from None
        options = dataclasses.replace(self.options, cwd=cwd, extra=dict(self.options.extra))
        notes: list[str] = []  # a refused repository setting, the sandbox off: said in the first turn
        try:
            workspace = await asyncio.to_thread(prepare_workspace, options, notify=lambda n: notes.append(n.text))
        except SetupError as exc:
            raise RequestError(-32602, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - git or the sandbox probe failed: said in one line, not "Internal error"
            log.exception("preparing %s failed", cwd)
            raise RequestError(-32603, f"{type(exc).__name__}: {exc}") from None
        return options, workspace, notes

    @contextlib.contextmanager
    def _room(self):
        """A place for one more session (held while it is opened or loaded); TOO_MANY past MAX_SESSIONS."""
        if len(self.sessions) + self._opening >= MAX_SESSIONS:
            raise RequestError(TOO_MANY, f"{MAX_SESSIONS} sessions are open in this agent process, the most it "
                                         "serves; restart the agent (sessions stay resumable with session/load)")
        self._opening += 1
        try:
            yield
        finally:
            self._opening -= 1

    def _open(self, session_id: str, options: RunOptions, workspace, notes: list[str], log_file, *,
              register: bool = True) -> EditorSession:
        mode = workspace.settings.approval if workspace.settings.approval in MODES else "ask"
        if self.options.approval in MODES:
            mode = self.options.approval
        session = EditorSession(self, session_id, options, workspace, log_file, mode)
        session.notes.extend(notes)
        if register:
            self.sessions[session_id] = session
            asyncio.get_running_loop().call_soon(self._announce, session)
        return session

    def _announce(self, session: EditorSession) -> None:
        """After session/new's answer: the slash commands the session understands."""
        session.post(AvailableCommandsUpdate(session_update="available_commands_update", available_commands=[
            AvailableCommand(name=name, description=text) for name, text in COMMANDS.items()]))

    def _modes(self, session: EditorSession) -> SessionModeState:
        return SessionModeState(current_mode_id=session.mode, available_modes=[
            SessionMode(id=mode, name=name, description=text) for mode, (name, text) in MODES.items()])

    async def _model(self, session: EditorSession | None = None):
        """The loaded model; a prompt waiting for it shows 'loading model' and its progress as thoughts."""
        loader = self.loader
        loader.start()
        if not loader.ready.is_set() and session is not None:
            session.post(thought("loading model…\n"))
        shown = 0.0
        while not loader.ready.is_set():
            await asyncio.to_thread(loader.ready.wait, 0.25)
            if session is not None and session.cancel.is_set():
                return None
            if session is not None and loader.fraction - shown >= LOAD_NOTE_EVERY and not loader.ready.is_set():
                shown = loader.fraction
                session.post(thought(f"loading model… {int(shown * 100)}%\n"))
        if loader.error is not None:
            raise RequestError(-32603, f"the model could not be loaded: {loader.error}")
        if session is not None:
            for note in loader.notices:
                session.post(thought(block(note) + "\n"))
        return loader.model

    def _build(self, session: EditorSession, model, session_path: Path | None = None) -> None:
        """(worker thread) The session's runtime, through the one composition root."""
        from gptoss_agent.agent.runtime import build_runtime

        log_file = session.log
        if log_file is not None and session_path is None:  # session/new closed it: reopened for the first turn
            log_file, session_path = None, log_file.path
        runtime = build_runtime(session.options, task="(editor session)", sink=session.sink,
                                workspace=session.workspace, model=model, session_log=log_file,
                                session_path=session_path, session_config={"command": "acp"},
                                approver=session.approve)
        files = self._editor_files(session)
        if files is not None:
            runtime.use_editor_files(files)
            session.files = files
        session.log = runtime.session
        session.runtime = runtime

    def _editor_files(self, session: EditorSession):
        fs = self.client_fs
        if fs is None or not (fs.read_text_file or fs.write_text_file):
            return None
        from gptoss_agent.agent.operations import editor_files

        def read_text(path: str) -> str | None:
            try:
                answer = session.call_client(lambda: self.conn.read_text_file(session_id=session.id, path=path),
                                             session.cancel)
            except ClientGone:
                raise OSError("cancelled while the editor read the file") from None
            except Exception as exc:  # noqa: BLE001 - no buffer for it: the disk is the file
                log.info("the editor could not read %s: %s", path, exc)
                return None
            content = getattr(answer, "content", None)
            return content if isinstance(content, str) else None

        def write_text(path: str, text: str) -> None:
            try:
                session.call_client(lambda: self.conn.write_text_file(session_id=session.id, path=path,
                                                                      content=text), session.cancel)
            except ClientGone:
                raise OSError("cancelled while the editor wrote the file") from None
            except Exception as exc:  # noqa: BLE001 - the tool reports it and rolls back
                raise OSError(f"the editor refused to write {path}: {exc}") from None

        told: set[str] = set()

        def unsafe() -> str | None:
            sandbox = getattr(session.runtime.ctx if session.runtime else None, "sandbox", None)
            if sandbox is not None and getattr(sandbox, "exact_attribution", False):
                return None
            return ("commands here do not run on the copy-on-write overlay (" + line(
                getattr(sandbox, "mechanism", None) or "no sandbox") + "): one could change the work tree's links "
                "while the editor opens a path, so the file tools read and write the disk directly (link-free) and "
                "the editor's unsaved buffers are not used")

        def notify(why: str) -> None:
            if why not in told:
                told.add(why)
                session.post(thought(block(why) + "\n"))

        return editor_files(read_text=read_text if fs.read_text_file else None,
                            write_text=write_text if fs.write_text_file else None, unsafe=unsafe, notify=notify)

    def _restore(self, session: EditorSession, record, model) -> None:
        """(worker thread) A recorded session: its runtime, its conversation, and its history as updates."""
        self._build(session, model, session_path=record.path)
        session.runtime.agent.restore(record)
        session.started = True
        for update in history_updates(record, session.runtime.agent.codec, session.root):
            session.post(update)

    def _command(self, session: EditorSession, name: str) -> tuple[str, str]:
        """(worker thread) A slash command: its result as a message."""
        from gptoss_agent.agent.operations import tree_lock

        if name == "compact":
            return self._run_command(session, name)
        with tree_lock(session.root):  # /undo, /diff, /test: no editor file operation meanwhile
            return self._run_command(session, name)

    def _run_command(self, session: EditorSession, name: str) -> tuple[str, str]:
        from gptoss_agent.agent.frontends.acp.fences import fenced_block
        from gptoss_agent.agent.operations import OperationFailed

        operations = session.runtime.operations
        if name == "compact":
            done = session.runtime.agent.compact(session.cancel)
            text = block("Context compacted." if done else "Compaction failed (the conversation is unchanged).")
        elif name == "undo":
            try:
                text = block(operations.undo())
            except OperationFailed as exc:
                text = block(f"undo: {exc}")
        elif name == "diff":
            diff = operations.diff()
            text = fenced_block(diff.rstrip(), "diff") if diff.strip() else "No changes."
        else:
            report = operations.run_tests()
            text = fenced_block(operations.test_report_text(report))
        session.post(message(text + "\n"))
        return ("cancelled" if session.cancel.is_set() else "completed"), ""

    async def shutdown(self) -> None:
        """End of input: stop every turn, let the workers write their last records, close the logs."""
        self.client_gone()
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        for session in list(self.sessions.values()):
            worker = session.worker
            if worker is not None:
                await asyncio.to_thread(worker.join, max(0.0, deadline - time.monotonic()))
            await session.close()
            if session.log is not None and (session.worker is None or not session.worker.is_alive()):
                session.log.close()
                if session.runtime is None and session.fresh:  # opened, never prompted: no empty log left behind
                    with contextlib.suppress(OSError):
                        os.unlink(session.log.path)


async def _in_thread(function, *args, session: EditorSession | None = None):
    """Run `function` in a daemon thread (never the default executor: exit must not wait for a stuck turn)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(lambda error=exc: future.done() or future.set_exception(error))
        else:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(result))

    thread = threading.Thread(target=run, name="gptoss-acp-turn", daemon=True)
    if session is not None:
        session.worker = thread
    elif args and isinstance(args[0], EditorSession):
        args[0].worker = thread
    thread.start()
    return await future


def _iso(stamp: Any) -> str | None:
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
    except (OverflowError, OSError, ValueError):
        return None


# ---------------------------------------------------------------------- the process

def run(options: RunOptions, protocol_in: int, protocol_out: int, *, pending: bytes = b"",
        loader: ModelLoader | None = None, capabilities: dict[str, Any] | None = None) -> int:
    """Serve until the editor closes its end (agent/acp_main.py did the handshake when it could)."""
    return asyncio.run(_serve(options, protocol_in, protocol_out, pending, loader, capabilities))


async def _serve(options: RunOptions, protocol_in: int, protocol_out: int, pending: bytes,
                 loader: ModelLoader | None, capabilities: dict[str, Any] | None) -> int:
    from gptoss_agent.agent.frontends.acp.wire import CheckedTransport, open_pipes

    reader, writer = await open_pipes(protocol_in, protocol_out, prefix=pending)
    server = AcpServer(options, loader=loader)
    if capabilities is not None:
        server.handshake_done(capabilities)
    try:
        await acp.run_agent(server, CheckedTransport(reader, writer, on_end=server.input_ended))
    finally:
        await server.shutdown()
    return 0
