"""One editor thread of `gptoss-agent acp`: its runtime, mode and approvals, and the pump that sends its updates.

The loop runs in a worker thread; everything it reports, and every question
it asks the editor (a permission, a file's buffer), goes through one ordered
queue that the event loop drains (`post`), so an editor always sees a tool
call before the permission request for it, and text before the tool call that
follows it. Streamed text is sent once per frame, not once per token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time
from typing import Any, Callable

from acp.schema import AgentMessageChunk, AgentThoughtChunk, ToolCallProgress

from gptoss_agent.agent.frontends.acp.mapping import (PERMISSION_OPTIONS, FileEdit, TextPiece, UpdateMapper, coalesce,
                                                      message, permission_tool_call)
from gptoss_agent.agent.events import AgentEvent, ToolCalled, ToolFinished
from gptoss_agent.agent.runtime import RunOptions
from gptoss_agent.agent.safe_text import block, line

log = logging.getLogger("gptoss-agent.acp")

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

    def __init__(self, server, session_id: str, options: RunOptions, workspace, log_file,
                 mode: str) -> None:
        self.server, self.id, self.options, self.workspace, self.log = server, session_id, options, workspace, log_file
        self.root = str(workspace.root)
        self.mode = mode
        self.runtime = None
        self.files = None  # the editor's file system for the file tools (tools/editor_files.py), when offered
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
        from gptoss_agent.agent.approvals import Refused, approval_for

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
        edits, preview = self._preview(spec.recipient, arguments)
        request = permission_tool_call(call_id, spec.recipient, arguments, self.root, edits, preview)
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
        if choice in ("allow_once", "allow_always") and edits is not None and self.files is not None:
            prefix = self.root.rstrip("/") + "/"  # the edit must write what the dialog showed (tools/editor_files.py)
            self.files.approved = {e.path.removeprefix(prefix): e.new_text for e in edits}
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
        from gptoss_agent.agent.frontends.headless import start_agent

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
        """What the permission request shows: a patch as per-file old/new text, else the call (markdown, fenced).

        A patch is previewed from the same source its edit will use: the
        editor's buffers when the file tools go through the editor now, else
        the disk (read inside the jail either way).
        """
        import json

        from gptoss_agent.agent.frontends.acp.fences import command_preview, fenced_block

        if recipient == "repo_browser.apply_patch" and isinstance(arguments, dict):
            from gptoss_agent.agent.operations import OperationFailed, editor_patch_preview

            patch = str(arguments.get("patch", ""))
            try:
                return [FileEdit(f"{self.root.rstrip('/')}/{name}", old, new)
                        for name, old, new in editor_patch_preview(self.root, self.files, patch)], None
            except OperationFailed as exc:
                return None, fenced_block(f"{patch}\n\n(this patch will not apply: {exc})", "diff")
        if isinstance(arguments, dict) and "cmd" in arguments:
            return None, command_preview(arguments["cmd"])
        return None, fenced_block(json.dumps(arguments, indent=2, ensure_ascii=False, default=str), "json")


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
