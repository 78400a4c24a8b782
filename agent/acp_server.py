"""`gptoss-agent acp`: the agent inside an editor, over the Agent Client Protocol (JSON-RPC 2.0 on stdio).

One process serves one editor: the model loads once, in the background, when
the editor says `initialize`; every session (one per editor thread) is built
through agent/runtime.py like exec and the TUI, runs the same loop in a worker
thread, and shares the loaded model with the others (generation serialised).
The loop's events become `session/update`s (agent/acp_mapping.py), approvals
become `session/request_permission`, approval modes become session modes, and
the editor's file system is used for the file tools when it offers it
(agent/acp_files.py), inside our checks. The process around it (descriptors,
the instant handshake) is agent/acp_main.py; the checked wire, agent/acp_wire.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import acp
from acp import RequestError
from acp.schema import (AgentMessageChunk, AgentThoughtChunk, AvailableCommand, AvailableCommandsUpdate,
                        EmbeddedResourceContentBlock, InitializeResponse, ListSessionsResponse, LoadSessionResponse,
                        NewSessionResponse, PromptResponse, ResourceContentBlock, SessionInfo, SessionMode,
                        SessionModeState, SetSessionModeResponse, TextContentBlock, TextResourceContents,
                        ToolCallProgress, UserMessageChunk)

from agent.acp_mapping import (PERMISSION_OPTIONS, FileEdit, TextPiece, UpdateMapper, coalesce, message,
                               permission_tool_call, stop_reason, thought)
from agent.events import AgentEvent, ToolCalled, ToolFinished
from agent.acp_model import ModelLoader
from agent.runtime import RunOptions, SetupError
from agent.safe_text import block, line

log = logging.getLogger("gptoss-agent.acp")

BUSY = -32001  # a server error (JSON-RPC leaves -32000..-32099 to implementations): the session is answering
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
STREAM_FRAME_S = 0.016  # text chunks sampled within one frame travel as one update


class ClientGone(Exception):
    """The editor closed the connection (or the turn was cancelled) while we waited for its answer."""


# ---------------------------------------------------------------------- one editor session

@dataclasses.dataclass
class _Request:
    """A call to the client made from the agent's thread, sent in order with the updates."""

    start: Callable[[], Any]  # () -> coroutine
    future: concurrent.futures.Future


@dataclasses.dataclass
class _Flush:
    done: asyncio.Future


class EditorSession:
    """One editor thread: its workspace, session log, runtime, mode and the pump that sends its updates."""

    def __init__(self, server: "AcpServer", session_id: str, options: RunOptions, workspace, log_file,
                 mode: str) -> None:
        self.server, self.id, self.options, self.workspace, self.log = server, session_id, options, workspace, log_file
        self.root = str(workspace.root)
        self.mode = mode
        self.runtime = None
        self.fresh = log_file is not None  # its log was created by this process (session/new), not loaded
        self.started = False
        self.busy = False
        self.cancel = threading.Event()
        self.always: set[str] = set()
        self.never: set[str] = set()
        self.notes: list[str] = []  # said before the first prompt (a refused repository setting, the sandbox off)
        self.mapper = UpdateMapper(self.root)
        self._seen: dict[str, tuple] = {}
        self._last_call: ToolCalled | None = None
        self._loop = asyncio.get_running_loop()
        self._pending: list[Any] = []  # posted, not yet sent (any thread appends, the pump takes)
        self._pending_lock = threading.Lock()
        self._woken = False  # a wake-up for the pump is on its way: later text need not send another
        self._urgent_sent = False  # so is one that ends the text's frame early (something other than text came)
        self._ready = asyncio.Event()
        self._urgent = asyncio.Event()
        self._pump = asyncio.ensure_future(self._run_pump())
        self.worker: threading.Thread | None = None

    # -- from the agent's thread

    def post(self, item: Any) -> None:
        """Queue an update (or a client call) for the pump; safe from any thread."""
        text = isinstance(item, (TextPiece, AgentMessageChunk, AgentThoughtChunk))
        with self._pending_lock:
            self._pending.append(item)
            if self._woken and (text or self._urgent_sent):
                return
            self._woken = True
            self._urgent_sent = self._urgent_sent or not text
        try:
            self._loop.call_soon_threadsafe(self._ready.set if text else self._wake_now)
        except RuntimeError:  # the loop is closed: the process is ending and nobody is listening
            if isinstance(item, _Request):
                item.future.cancel()

    def _wake_now(self) -> None:
        self._ready.set()
        self._urgent.set()

    def sink(self, event: AgentEvent) -> None:
        """The loop's event sink: events become updates, in order."""
        if isinstance(event, ToolCalled):
            self._last_call = event
        edits = self._new_edits() if isinstance(event, ToolFinished) else []
        for update in self.mapper(event, edits if event.type == "tool_result" and
                                  event.name == "repo_browser.apply_patch" else None):
            self.post(update)

    def call_client(self, start: Callable[[], Any], cancel: threading.Event | None = None) -> Any:
        """Ask the client something and wait for its answer; ClientGone when the turn is cancelled or it left."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.post(_Request(start, future))
        while True:
            try:
                return future.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                if (cancel is not None and cancel.is_set()) or self.server.closed:
                    future.cancel()
                    raise ClientGone("cancelled while waiting for the editor") from None

    def approve(self, call, spec) -> None:
        """The approver: the session mode's rule, the 'always' answers, then the editor's permission dialog.

        An allowed call is marked in_progress: it runs now (a refusal is the call's failed update).
        """
        self._decide(call, spec)
        if self._last_call is not None:
            self.post(ToolCallProgress(session_update="tool_call_update", tool_call_id=self._last_call.id,
                                       status="in_progress"))

    def _decide(self, call, spec) -> None:
        from agent.loop import Refused, approval_for

        decision = approval_for(self.mode, spec)
        if decision == "refuse":
            raise Refused(f"{spec.recipient} can change files (it writes or runs code), and this session is in "
                          f"{self.mode} mode")
        if decision == "allow" or spec.recipient in self.always:
            return
        if spec.recipient in self.never:
            raise Refused(f"the user rejects every {spec.recipient} call in this session")
        called = self._last_call
        call_id = called.id if called is not None else f"call_{time.monotonic_ns()}"
        arguments = called.arguments if called is not None else {}
        request = permission_tool_call(call_id, spec.recipient, arguments, self.root,
                                       *self._preview(spec.recipient, arguments))
        try:
            answer = self.call_client(lambda: self.server.conn.request_permission(
                session_id=self.id, tool_call=request, options=PERMISSION_OPTIONS), self.cancel)
        except ClientGone:
            raise Refused("the user cancelled") from None
        except Exception as exc:  # noqa: BLE001 - a broken answer is a refusal, never a crash
            raise Refused(f"the editor did not answer the permission request ({type(exc).__name__})") from None
        outcome = answer.outcome
        if outcome.outcome != "selected":
            raise Refused("the user cancelled")
        choice = outcome.option_id
        reason = _reason(answer) or _reason(outcome)
        if choice == "allow_once":
            return
        if choice == "allow_always":
            self.always.add(spec.recipient)
            return
        if choice == "reject_always":
            self.never.add(spec.recipient)
        elif choice != "reject_once":
            raise Refused(f"the editor answered with an unknown option {line(choice)!r}")
        raise Refused(reason or "no")

    def run_turn(self, text: str) -> tuple[str, str]:
        """(worker thread) One prompt through the loop: (status, reason)."""
        from agent.headless import start_agent

        try:
            agent = self.runtime.agent
            if not self.started:
                start_agent(self.runtime, text)
                self.started = True
            result = agent.run(text, self.cancel)
            return result.status, result.reason
        except BaseException as exc:  # noqa: BLE001 - a bug (or a native panic) ends the turn, not the server
            log.exception("the turn failed")
            self.post(message(f"\n\n**error:** {block(f'{type(exc).__name__}: {exc}')}\n"))
            return "error", f"{type(exc).__name__}: {exc}"

    # -- on the event loop

    async def flush(self) -> None:
        """Wait until every update queued so far was written."""
        done = self._loop.create_future()
        self.post(_Flush(done))
        await done

    async def close(self) -> None:
        self.post(None)
        try:
            await asyncio.wait_for(self._pump, 2.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    async def _run_pump(self) -> None:
        """Send the session's updates in order; adjacent text chunks that waited are sent as one.

        A text chunk waits up to STREAM_FRAME_S for the ones sampled after it
        (an editor repaints at about that pace anyway): one notification per
        frame instead of one per token, which is most of the protocol's cost.
        """
        while True:
            await self._ready.wait()
            with self._pending_lock:
                first = self._pending[0] if self._pending else None
            if isinstance(first, (TextPiece, AgentMessageChunk, AgentThoughtChunk)) and not self._urgent.is_set():
                with contextlib.suppress(asyncio.TimeoutError):  # the frame ends early when anything else comes
                    await asyncio.wait_for(self._urgent.wait(), STREAM_FRAME_S)
            with self._pending_lock:
                items, self._pending = self._pending, []
                self._woken = self._urgent_sent = False
                self._ready.clear()
                self._urgent.clear()
            for item in coalesce(items):
                if item is None:
                    return
                try:
                    await self._deliver(item)
                except Exception as exc:  # noqa: BLE001 - the client left: stop the turn, drain the rest
                    log.warning("could not send to the editor: %s", exc)
                    self.server.client_gone()

    async def _deliver(self, item: Any) -> None:
        if isinstance(item, _Flush):
            if not item.done.done():
                item.done.set_result(None)
        elif isinstance(item, _Request):
            if item.future.cancelled() or self.server.closed:
                item.future.cancel()
                return
            task = asyncio.ensure_future(item.start())
            task.add_done_callback(lambda t, f=item.future: _settle(f, t))
            item.future.add_done_callback(
                lambda f, t=task: self._loop.call_soon_threadsafe(t.cancel) if f.cancelled() else None)
            await asyncio.sleep(0)  # the request goes out before the next update
        elif not self.server.closed:
            await self.server.conn.session_update(session_id=self.id, update=item)

    # -- helpers

    def _new_edits(self) -> list[FileEdit]:
        """Files the last tool changed (ctx.changes entries that moved since the previous call)."""
        ctx = self.runtime.ctx if self.runtime else None
        edits = []
        for relative, change in list(ctx.changes.items()) if ctx else []:
            key = (change.before_last, change.after)
            if self._seen.get(relative) != key:
                self._seen[relative] = key
                edits.append(FileEdit(f"{self.root.rstrip('/')}/{relative}", _text(change.before_last),
                                      _text(change.after)))
        return edits

    def _preview(self, recipient: str, arguments: Any) -> tuple[list[FileEdit] | None, str | None]:
        """What the permission request shows: a patch as per-file old/new text (read inside the jail), else the call."""
        import json

        if recipient == "repo_browser.apply_patch" and isinstance(arguments, dict):
            from tools.patch import PatchError, apply_patch, parse_patch
            from tools.paths import PathRefused, Workspace

            patch = str(arguments.get("patch", ""))
            try:
                with Workspace(self.root) as space:
                    def read(name: str) -> str | None:
                        try:
                            return space.read(name)[0].decode("utf-8", errors="replace")
                        except FileNotFoundError:
                            return None

                    outcome = apply_patch(parse_patch(patch), read)
                    return [FileEdit(f"{self.root.rstrip('/')}/{name}", read(name), text)
                            for name, text in outcome.writes.items()], None
            except (PatchError, OSError, PathRefused) as exc:
                return None, f"{patch}\n\n(this patch will not apply: {exc})"
        if isinstance(arguments, dict) and "cmd" in arguments:
            cmd = arguments["cmd"]
            return None, "$ " + (" ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd))
        return None, json.dumps(arguments, indent=2, ensure_ascii=False, default=str)


def _mcp_note(servers) -> list[str]:
    """The editor's MCP servers are not used: the model's tools are ours, offline and sandboxed; say so once."""
    if not servers:
        return []
    names = ", ".join(line(getattr(s, "name", "?")) for s in servers[:5])
    return [f"the editor's MCP servers ({names}) are not used: gptoss-agent's tools run offline, in its sandbox"]


def _settle(future: concurrent.futures.Future, task: asyncio.Task) -> None:
    if future.done():
        return
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


def _reason(model: Any) -> str:
    """A reason the editor gave with a rejection (in `_meta.reason`, the protocol's extension point)."""
    meta = getattr(model, "field_meta", None)
    reason = meta.get("reason") if isinstance(meta, dict) else None
    return line(reason)[:500] if isinstance(reason, str) else ""


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


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
        from agent.acp_wire import initialize_result

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
            options, workspace, notes = await self._workspace(cwd)
            from agent.runtime import create_session_log

            log_file = await asyncio.to_thread(create_session_log, options, workspace, task="(editor session)",
                                               session_config={"command": "acp"})
            session = self._open(log_file.id, options, workspace, notes + _mcp_note(mcp_servers), log_file)
            return NewSessionResponse(session_id=session.id, modes=self._modes(session))

    async def load_session(self, cwd: str, session_id: str, mcp_servers=None, additional_directories=None,
                           **kwargs: Any) -> LoadSessionResponse:
        async with self._request():
            from agent.session import SessionError, WrongRepository, find_session

            self._require_initialized()
            if session_id in self.sessions:  # open in this process already: its history again, nothing rebuilt
                return await self._reopen(self.sessions[session_id])
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
            session = self._open(record.id, options, workspace, notes + _mcp_note(mcp_servers), None)
            session.busy = True  # a prompt that arrives while the history is replayed waits its turn (refused)
            try:
                await asyncio.to_thread(self._restore, session, record, model)
            except Exception as exc:  # noqa: BLE001 - a log that cannot be restored is the editor's one-line error
                del self.sessions[session.id]
                await session.close()
                text = str(exc) if isinstance(exc, SetupError) else f"cannot restore the session: {exc}"
                raise RequestError(-32603, text) from None
            finally:
                session.busy = False
            await session.flush()
            return LoadSessionResponse(modes=self._modes(session))

    async def _reopen(self, session: EditorSession) -> LoadSessionResponse:
        from agent.session import SessionError, read_session

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
            from agent.headless import workspace_root
            from agent.session import scan_sessions

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
            session.busy = True
            session.cancel = threading.Event()
            try:
                text = prompt_text(prompt, session.root)
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
                    except SetupError as exc:
                        raise RequestError(-32603, str(exc)) from None
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
        from agent.runtime import prepare_workspace

        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise RequestError(-32602, f"cwd must be an absolute path, not {line(cwd)!r}")
        options = dataclasses.replace(self.options, cwd=cwd, extra=dict(self.options.extra))
        notes: list[str] = []  # a refused repository setting, the sandbox off: said in the first turn
        try:
            workspace = await asyncio.to_thread(prepare_workspace, options, notify=lambda n: notes.append(n.text))
        except SetupError as exc:
            raise RequestError(-32602, str(exc)) from None
        return options, workspace, notes

    def _open(self, session_id: str, options: RunOptions, workspace, notes: list[str], log_file) -> EditorSession:
        mode = workspace.settings.approval if workspace.settings.approval in MODES else "ask"
        if self.options.approval in MODES:
            mode = self.options.approval
        session = EditorSession(self, session_id, options, workspace, log_file, mode)
        session.notes.extend(notes)
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
        from agent.runtime import build_runtime

        runtime = build_runtime(session.options, task="(editor session)", sink=session.sink,
                                workspace=session.workspace, model=model, session_log=session.log,
                                session_path=session_path, session_config={"command": "acp"})
        runtime.agent.approver = session.approve
        files = self._editor_files(session)
        if files is not None:
            from agent.acp_files import editor_registry

            runtime.agent.registry = editor_registry(runtime.agent.registry, files)
        session.log = runtime.session
        session.runtime = runtime

    def _editor_files(self, session: EditorSession):
        fs = self.client_fs
        if fs is None or not (fs.read_text_file or fs.write_text_file):
            return None
        from agent.acp_files import EditorFiles

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

        return EditorFiles(read_text=read_text if fs.read_text_file else None,
                           write_text=write_text if fs.write_text_file else None)

    def _restore(self, session: EditorSession, record, model) -> None:
        """(worker thread) A recorded session: its runtime, its conversation, and its history as updates."""
        self._build(session, model, session_path=record.path)
        session.runtime.agent.restore(record)
        session.started = True
        for update in history_updates(record, session.runtime.agent.codec, session.root):
            session.post(update)

    def _command(self, session: EditorSession, name: str) -> tuple[str, str]:
        """(worker thread) A slash command: its result as a message."""
        from tools import git as git_tools

        ctx = session.runtime.ctx
        if name == "compact":
            done = session.runtime.agent.compact(session.cancel)
            text = "Context compacted." if done else "Compaction failed (the conversation is unchanged)."
        elif name == "undo":
            try:
                text = git_tools.undo(ctx)
            except git_tools.GitError as exc:
                text = f"undo: {exc}"
        elif name == "diff":
            diff = git_tools.diff_text(ctx.workspace)
            text = f"```diff\n{diff.rstrip()}\n```" if diff.strip() else "No changes."
        else:
            from tools.tests import format_report, run_test_suite

            report = run_test_suite(ctx)
            text = f"```\n{format_report(report)}\n```"
        session.post(message(block(text) + "\n"))
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


def prompt_text(blocks: list, root: str) -> str:
    """The user's message from a prompt's content blocks (text, file links, embedded files)."""
    parts: list[str] = []
    for item in blocks:
        if isinstance(item, TextContentBlock):
            parts.append(item.text)
        elif isinstance(item, ResourceContentBlock):
            uri = item.uri.removeprefix("file://")
            parts.append("@" + (os.path.relpath(uri, root) if uri.startswith(root.rstrip("/") + "/") else item.uri))
        elif isinstance(item, EmbeddedResourceContentBlock) and isinstance(item.resource, TextResourceContents):
            uri = item.resource.uri.removeprefix("file://")
            name = os.path.relpath(uri, root) if uri.startswith(root.rstrip("/") + "/") else item.resource.uri
            parts.append(f"Attached {name}:\n```\n{item.resource.text}\n```")
        else:
            parts.append(f"({getattr(item, 'type', 'content')} attached; this model reads text only)")
    return "\n\n".join(p for p in parts if p)


def history_updates(record, codec, root: str) -> list[Any]:
    """A recorded session as the updates an editor shows: user messages, then what the agent said and did."""
    from agent.compaction import split_messages

    mapper = UpdateMapper(root, live=False)
    updates: list[Any] = []
    for entry in record.records:
        if entry["kind"] == "segment" and entry["segment"] == "user":
            views = split_messages(entry["tokens"], codec.decode)
            text = "\n".join(codec.decode(v.content) for v in views)
            updates.append(UserMessageChunk(session_update="user_message_chunk",
                                            content=TextContentBlock(type="text", text=block(text))))
        elif entry["kind"] == "event":
            event = _event_from_json(entry["event"])
            if event is not None:
                updates.extend(mapper(event))
    return updates


def _event_from_json(data: dict[str, Any]) -> AgentEvent | None:
    """An event record back as the event it was; a record whose fields do not fit is left out (logs are data)."""
    from agent import events

    kinds = {cls.type: cls for cls in (events.ReasoningEmitted, events.MessageEmitted, events.ToolCalled,
                                       events.ToolFinished, events.PlanUpdated, events.Committed,
                                       events.ErrorRaised, events.RunFinished)}
    cls = kinds.get(data.get("type"))
    if cls is None:
        return None
    values = {}
    for spec in dataclasses.fields(cls):
        if spec.name not in data:
            continue
        value, wanted = data[spec.name], str(spec.type)
        allowed = tuple(t for name, t in (("str", str), ("bool", bool), ("int", int), ("float", (int, float)),
                                          ("list", list), ("dict", dict), ("Any", object)) if name in wanted)
        if not (isinstance(value, allowed) or (value is None and "None" in wanted)) or (
                isinstance(value, bool) and "bool" not in wanted):
            return None
        values[spec.name] = value
    try:
        return cls(**values)
    except TypeError:  # a required field is missing
        return None


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
    from agent.acp_wire import CheckedTransport, open_pipes

    reader, writer = await open_pipes(protocol_in, protocol_out, prefix=pending)
    server = AcpServer(options, loader=loader)
    if capabilities is not None:
        server.handshake_done(capabilities)
    try:
        await acp.run_agent(server, CheckedTransport(reader, writer, on_end=server.input_ended))
    finally:
        await server.shutdown()
    return 0
