"""A real ACP client (the SDK's client side) driving `gptoss-agent acp` as a subprocess.

The client records every session/update, answers permission requests from a
script, and, when asked to, offers the editor file system (buffers that may
differ from the disk, writes recorded and saved to disk as Zed does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from acp import PROTOCOL_VERSION, RequestError, spawn_agent_process
from acp.schema import (AllowedOutcome, ClientCapabilities, DeniedOutcome, FileSystemCapabilities,
                        ReadTextFileResponse, RequestPermissionResponse, WriteTextFileResponse)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RecordingClient:
    """An editor: updates in order, permission answers from `answers` (option ids), optional buffers."""

    answers: list[str] = field(default_factory=list)
    reason: str | None = None
    buffers: dict[str, str] = field(default_factory=dict)  # absolute path → unsaved text
    updates: list[tuple[str, Any]] = field(default_factory=list)
    permissions: list[Any] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(default_factory=list)
    on_update: Callable[[Any], None] | None = None
    hold_permission: asyncio.Event | None = None

    async def request_permission(self, options, session_id, tool_call, **kwargs):
        self.permissions.append(tool_call)
        if self.hold_permission is not None:
            await self.hold_permission.wait()
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        choice = self.answers.pop(0) if self.answers else "reject_once"
        meta = {"reason": self.reason} if self.reason and choice.startswith("reject") else None
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=choice),
                                         field_meta=meta)

    async def session_update(self, session_id, update, **kwargs):
        self.updates.append((session_id, update))
        if self.on_update is not None:
            self.on_update(update)

    async def read_text_file(self, path, session_id, limit=None, line=None, **kwargs):
        self.reads.append(path)
        if path in self.buffers:
            return ReadTextFileResponse(content=self.buffers[path])
        try:
            return ReadTextFileResponse(content=Path(path).read_text())
        except OSError:
            raise RequestError.resource_not_found(path) from None

    async def write_text_file(self, content, path, session_id, **kwargs):
        self.writes.append((path, content))
        self.buffers[path] = content
        Path(path).write_text(content)  # Zed saves the buffer it edited
        return WriteTextFileResponse()

    def kinds(self) -> list[str]:
        return [u.session_update for _, u in self.updates]

    def text(self, kind: str) -> str:
        return "".join(u.content.text for _, u in self.updates if u.session_update == kind)


def agent_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@contextlib.asynccontextmanager
async def running_agent(client: RecordingClient, *args: str, cwd: Path, env: dict[str, str] | None = None,
                        stderr_path: Path | None = None):
    """`python -m gptoss_agent.agent.frontends.cli acp ARGS` with the SDK client connected to it: (connection, process).

    The agent's standard error is kept; when the scenario fails, it is shown with the failure.
    """
    import tempfile

    stderr = open(stderr_path, "w+b") if stderr_path else tempfile.TemporaryFile()
    try:
        async with spawn_agent_process(client, sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "acp", *args, cwd=cwd,
                                       env=agent_env(env), transport_kwargs={"stderr": stderr.fileno()}) as (conn,
                                                                                                           proc):
            yield conn, proc
    except BaseException:
        stderr.seek(0)
        sys.stderr.write("--- gptoss-agent acp stderr ---\n" + stderr.read().decode(errors="replace")[-20000:])
        raise
    finally:
        stderr.close()


async def start(conn, *, fs: bool = False):
    caps = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs))
    return await conn.initialize(protocol_version=PROTOCOL_VERSION, client_capabilities=caps)


@contextlib.asynccontextmanager
async def replaying(client: RecordingClient, replay: Path, *flags: str, cwd: Path, env: dict[str, str] | None = None,
                    fs: bool = False):
    """The agent on the replay file `replay`, already initialised (the editor's file system offered if `fs`):
    (connection, process)."""
    async with running_agent(client, "--backend", f"replay:{replay}", *flags, cwd=cwd, env=env) as (conn, proc):
        await start(conn, fs=fs)
        yield conn, proc


def run(coro, timeout: float = 90):
    """Run one scenario to its end; a hung agent fails the test after `timeout` seconds instead of hanging CI."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def prompt_once(client: RecordingClient, repo: Path, replay: Path, *flags: str, fs: bool = False,
                      env: dict[str, str] | None = None, text: str = "Go"):
    """Start the agent on `repo`, open one session and answer one prompt: the prompt's response."""
    async with replaying(client, replay, *flags, cwd=repo, env=env, fs=fs) as (conn, _):
        return (await prompted_session(conn, repo, text))[1]


async def prompted_session(conn, cwd: Path, text: str):
    """Open a session in `cwd` and answer one prompt in it: (the session id, the prompt's response)."""
    session = await conn.new_session(cwd=str(cwd), mcp_servers=[])
    return session.session_id, await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": text}])


async def streaming_prompt(client: RecordingClient, conn, session_id: str, text: str) -> asyncio.Future:
    """Send a prompt and return once its answer has begun to stream: the turn, still running."""
    streaming = asyncio.Event()
    client.on_update = lambda u: streaming.set() if u.session_update == "agent_message_chunk" else None
    turn = asyncio.ensure_future(conn.prompt(session_id=session_id, prompt=[{"type": "text", "text": text}]))
    await asyncio.wait_for(streaming.wait(), 30)
    return turn


def exchange(lines: list[bytes], cwd: Path, env: dict[str, str], timeout: float = 60) -> tuple[list[dict], str, int]:
    """Write raw lines to `gptoss-agent acp`, close its input, read every reply."""
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "acp", "--backend", "replay:/nonexistent.json"],
                          input=b"".join(lines), capture_output=True, timeout=timeout, cwd=cwd,
                          env=agent_env(env))
    replies = [json.loads(line) for line in done.stdout.decode().splitlines()]  # every line is JSON, or this fails
    return replies, done.stderr.decode(), done.returncode
