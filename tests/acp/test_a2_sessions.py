"""A2 findings 7, 8, 9, 11 through the SDK's client side (and raw bytes for the flood): sessions stay bounded.

A session opened and never prompted holds no descriptor, and one process
serves at most MAX_SESSIONS; a log that cannot be restored leaves no session
behind; an open session is not reloaded from another repository; a prompt too
large to tokenise promptly is refused at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from acp import RequestError

from gptoss_agent.agent.frontends.acp.server import MAX_PROMPT_CHARS, MAX_SESSIONS
from tests.acp.harness import RecordingClient, exchange, prompted_session, replaying, run
from tests.fixtures.repos import final, make_calc_repo, write_replay

pytest.importorskip("acp")


def open_logs(pid: int) -> list[str]:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return [link for link in links if link.endswith(".jsonl")]


def test_sessions_never_prompted_hold_no_descriptor_and_a_prompted_one_still_logs(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [final("Hello.")])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, proc):
            ids = [(await conn.new_session(cwd=str(repo), mcp_servers=[])).session_id for _ in range(20)]
            idle = open_logs(proc.pid)
            answer = await conn.prompt(session_id=ids[-1], prompt=[{"type": "text", "text": "hi"}])
            return ids, idle, open_logs(proc.pid), answer

    ids, idle, prompted, answer = run(scenario(), timeout=120)
    assert idle == [] and answer.stop_reason == "end_turn"
    assert [Path(p).stem for p in prompted] == [ids[-1]]  # the prompted session's log, reopened
    log = next(Path(state["GPTOSS_AGENT_STATE_DIR"]).rglob(f"{ids[-1]}.jsonl")).read_text()
    assert '"kind": "header"' in log and "Hello." in log


def test_past_the_session_cap_session_new_is_a_clear_error_and_the_rest_keep_serving(repo, state):
    msg = lambda **fields: (json.dumps({"jsonrpc": "2.0", **fields}) + "\n").encode()  # noqa: E731
    lines = [msg(id=0, method="initialize", params={"protocolVersion": 1})]
    lines += [msg(id=i, method="session/new", params={"cwd": str(repo), "mcpServers": []})
              for i in range(1, MAX_SESSIONS + 3)]  # pipelined: none is registered before the others start
    replies, stderr, code = exchange(lines, repo, state, timeout=240)
    answers = {r["id"]: r for r in replies if r.get("id") is not None}
    opened = [i for i in range(1, MAX_SESSIONS + 3) if "result" in answers[i]]
    refused = [answers[i]["error"] for i in range(1, MAX_SESSIONS + 3) if "error" in answers[i]]
    assert len(opened) == MAX_SESSIONS and len(refused) == 2, stderr[-2000:]
    assert all(e["code"] == -32003 and "sessions are open" in e["message"] for e in refused)


def test_a_log_that_cannot_be_restored_leaves_no_session_to_prompt(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [final("One."), final("Two.")])
    client = RecordingClient()

    async def first():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            return (await prompted_session(conn, repo, "hi"))[0]

    session_id = run(first(), timeout=120)
    path = next(Path(state["GPTOSS_AGENT_STATE_DIR"]).rglob(f"{session_id}.jsonl"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    user = next(r for r in records if r["kind"] == "segment" and r["segment"] == "user")
    user["tokens"][3] = 10 ** 12  # a token id no model has: passes the log check, fails the restore
    path.write_text("".join(json.dumps(r) + "\n" for r in records))

    async def tampered():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            outcomes = []
            for _ in range(2):
                with pytest.raises(RequestError) as failed:
                    await conn.load_session(cwd=str(repo), session_id=session_id, mcp_servers=[])
                outcomes.append(failed.value.code)
            with pytest.raises(RequestError) as prompted:
                await conn.prompt(session_id=session_id, prompt=[{"type": "text", "text": "again"}])
            return outcomes, prompted.value

    outcomes, prompted = run(tampered(), timeout=120)
    assert outcomes == [-32002, -32002]  # the second load fails the same way: nothing half-loaded answers it
    assert prompted.code == -32602 and "no session" in str(prompted)


def test_an_open_session_is_not_reloaded_from_another_repository(repo, tmp_path, state):
    other = make_calc_repo(tmp_path / "other")
    replay = write_replay(tmp_path / "replay.json", [final("One."), final("Two.")])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            session_id, _ = await prompted_session(conn, repo, "hi")
            with pytest.raises(RequestError) as refused:
                await conn.load_session(cwd=str(other), session_id=session_id, mcp_servers=[])
            again = await conn.load_session(cwd=str(repo / "tests"), session_id=session_id, mcp_servers=[])
            return refused.value, again

    refused, again = run(scenario(), timeout=120)
    assert refused.code == -32602 and str(repo) in str(refused.data or "") + str(refused)
    assert again.modes.current_mode_id == "ask"  # its own repository (from a folder inside it) still loads


def test_a_prompt_over_the_cap_is_refused_at_once_and_the_session_keeps_serving(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [final("Small one.")])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            with pytest.raises(RequestError) as refused:
                await conn.prompt(session_id=session.session_id,
                                  prompt=[{"type": "text", "text": "x" * (MAX_PROMPT_CHARS + 1)}])
            answer = await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "hi"}])
            return refused.value, answer

    refused, answer = run(scenario(), timeout=120)
    assert refused.code == -32602 and "the limit is" in str(refused)  # refused before any tokenising
    assert answer.stop_reason == "end_turn"
    log = next(Path(state["GPTOSS_AGENT_STATE_DIR"]).rglob("*.jsonl")).read_text()
    assert "x" * 1000 not in log  # the refused prompt never reached the conversation
