"""`gptoss-agent acp` as a subprocess, driven by the ACP SDK's client side on a real repository.

The model is the replay backend; git, the sandbox, the tests and the session
logs are real. What is asserted is what an editor shows and what the user's
repository ends up holding.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptoss_agent.agent.session import read_session
from tests.acp.harness import (RecordingClient, agent_env, exchange, prompt_once, replaying, run, running_agent,
                               start, streaming_prompt)
from tests.fixtures.repos import FIX_PATCH, call, final, git, write_replay
from gptoss_agent.tools.sandbox import overlay as sandbox_overlay

pytest.importorskip("acp")

FIX = [
    call("functions.update_plan", {"plan": [{"step": "Fix add()", "status": "in_progress"}]},
         analysis="The add test fails."),
    call("repo_browser.open_file", {"path": "calc.py"}, analysis="Look at calc.py."),
    call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="add subtracts. Fix it."),
    call("functions.run_tests", {}),
    call("functions.git_commit", {"message": "Fix add() to add"}),
    final("Fixed `add` in calc.py; the suite passes and the fix is committed."),
]
SLOW_TOKENS = {"GPTOSS_AGENT_REPLAY_TOKEN_DELAY": "0.01"}  # a turn long enough to act on while it streams


def tool_updates(client: RecordingClient, call_id: str) -> list:
    return [u for _, u in client.updates if getattr(u, "tool_call_id", None) == call_id]


def test_a_replayed_fix_streams_plan_reasoning_tool_calls_and_the_answer_and_commits(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", FIX)
    client = RecordingClient(answers=["allow_once", "allow_always", "allow_once"])

    async def scenario():
        async with running_agent(client, "--backend", f"replay:{replay}", cwd=repo, env=state) as (conn, _):
            hello = await start(conn)
            assert hello.protocol_version == 1 and hello.agent_info.name == "gptoss-agent"
            assert hello.agent_capabilities.load_session is True
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            assert session.modes.current_mode_id == "ask"
            assert [m.id for m in session.modes.available_modes] == ["read-only", "ask", "auto-edit", "full-auto"]
            answer = await conn.prompt(session_id=session.session_id,
                                       prompt=[{"type": "text", "text": "Fix the failing test"}])
            return session.session_id, answer

    session_id, answer = run(scenario())
    assert answer.stop_reason == "end_turn"
    kinds = client.kinds()
    assert kinds[0] == "available_commands_update" and "plan" in kinds
    plan = next(u for _, u in client.updates if u.session_update == "plan")
    assert [(e.content, e.status) for e in plan.entries] == [("Fix add()", "in_progress")]
    assert "look at calc.py" in client.text("agent_thought_chunk").lower()
    starts = [u for _, u in client.updates if u.session_update == "tool_call"]
    assert [(s.title, s.kind) for s in starts] == [
        ("Update the plan", "think"), ("Read calc.py", "read"), ("Edit calc.py", "edit"),
        ("Run the tests", "execute"), ("Commit Fix add() to add", "other")]
    assert starts[1].locations[0].path == f"{repo}/calc.py"
    # the edit asked first, showing the diff; then its update carries old and new text
    asked = client.permissions[0]
    assert asked.tool_call_id == starts[2].tool_call_id and asked.kind == "edit"
    assert "a - b" in asked.content[0].old_text and "a + b" in asked.content[0].new_text
    assert [u.status for u in tool_updates(client, starts[2].tool_call_id)] == ["pending", "in_progress", "completed"]
    edit_done = tool_updates(client, starts[2].tool_call_id)[-1]
    assert edit_done.status == "completed" and edit_done.content[0].type == "diff"
    assert edit_done.content[0].path == f"{repo}/calc.py" and "return a + b" in edit_done.content[0].new_text
    tests_done = tool_updates(client, starts[3].tool_call_id)[-1]
    assert tests_done.status == "completed" and "2 passed" in tests_done.content[0].content.text
    assert len(client.permissions) == 3  # edit, tests, commit: read and plan never ask
    assert client.text("agent_message_chunk").strip().endswith("the fix is committed.")
    # the repository: fixed and committed
    assert git(repo, "log", "-1", "--format=%s").strip() == "Fix add() to add"
    assert "a + b" in (repo / "calc.py").read_text() and git(repo, "status", "--porcelain").strip() == ""
    # the session log is ours, as for exec
    log = Path(state["GPTOSS_AGENT_STATE_DIR"]) / "sessions" / f"{session_id}.jsonl"
    assert read_session(log).status == "completed"


def test_a_rejected_permission_with_a_reason_reaches_the_model_and_nothing_is_written(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Understood, I left calc.py alone.")])
    client = RecordingClient(answers=["reject_once"], reason="do not touch calc.py today")

    answer = run(prompt_once(client, repo, replay, env=state, text="Fix add"))
    assert answer.stop_reason == "end_turn"
    assert "a - b" in (repo / "calc.py").read_text()
    call_id = client.permissions[0].tool_call_id
    done = tool_updates(client, call_id)[-1]
    assert done.status == "failed"
    assert "The user declined this call: do not touch calc.py today" in done.content[0].content.text


def test_cancel_stops_the_stream_and_the_session_keeps_serving(repo, tmp_path, state):
    long_answer = " ".join(f"word{i}" for i in range(400))
    replay = write_replay(tmp_path / "replay.json", [final(long_answer), final("Still here.")])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env={**state, **SLOW_TOKENS}) as (conn, _):
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            turn = await streaming_prompt(client, conn, session.session_id, "Explain")
            await conn.cancel(session_id=session.session_id)
            first = await turn
            shown = client.text("agent_message_chunk")
            second = await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "Again"}])
            return first, shown, second

    first, shown, second = run(scenario())
    assert first.stop_reason == "cancelled"
    assert "word0" in shown and "word399" not in shown
    assert second.stop_reason == "end_turn" and client.text("agent_message_chunk").endswith("Still here.")


def test_load_session_replays_the_conversation_and_continues_it(repo, tmp_path, state):
    first = write_replay(tmp_path / "one.json", [call("repo_browser.open_file", {"path": "calc.py"}),
                                                 final("add() subtracts.")])
    client = RecordingClient()

    async def record():
        async with replaying(client, first, cwd=repo, env=state) as (conn, _):
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "What is wrong?"}])
            listed = await conn.list_sessions(cwd=str(repo))
            before = len(client.updates)
            await conn.load_session(cwd=str(repo), session_id=session.session_id, mcp_servers=[])  # same process
            return session.session_id, listed, [u for _, u in client.updates[before:]]

    session_id, listed, again = run(record())
    assert session_id in [s.session_id for s in listed.sessions]
    assert again[0].session_update == "user_message_chunk" and again[0].content.text == "What is wrong?"
    second = write_replay(tmp_path / "two.json", [final("It should return a + b.")])
    later = RecordingClient()

    async def reopen():
        async with replaying(later, second, cwd=repo, env=state) as (conn, _):
            loaded = await conn.load_session(cwd=str(repo), session_id=session_id, mcp_servers=[])
            history = list(later.kinds())
            answer = await conn.prompt(session_id=session_id, prompt=[{"type": "text", "text": "And the fix?"}])
            return loaded, history, answer

    loaded, history, answer = run(reopen())
    assert loaded.modes.current_mode_id == "ask"
    replayed = [u for _, u in later.updates[:len(history)] if u.session_update != "available_commands_update"]
    assert replayed[0].session_update == "user_message_chunk" and replayed[0].content.text == "What is wrong?"
    assert any(u.session_update == "tool_call" and u.title == "Read calc.py" for u in replayed)
    assert "add() subtracts." in "".join(u.content.text for u in replayed if u.session_update == "agent_message_chunk")
    assert answer.stop_reason == "end_turn" and later.text("agent_message_chunk").endswith("It should return a + b.")
    log = read_session(Path(state["GPTOSS_AGENT_STATE_DIR"]) / "sessions" / f"{session_id}.jsonl")
    assert [r["event"]["status"] for r in log.records if r["kind"] == "event"
            and r["event"]["type"] == "run_finished"] == ["completed", "completed"]


def test_with_editor_file_system_the_model_reads_the_unsaved_buffer_and_edits_land_in_the_editor(repo, tmp_path,
                                                                                                 state):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the repository\n")
    replay = write_replay(tmp_path / "replay.json", [
        call("repo_browser.open_file", {"path": "calc.py"}),
        call("repo_browser.open_file", {"path": "calc.py", "line_start": 9, "line_numbers": True}),
        call("repo_browser.open_file", {"path": str(outside)}),
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
        final("Done.")])
    calc = f"{repo}/calc.py"
    unsaved = (repo / "calc.py").read_text() + "\n\n# an unsaved note in the editor\n"
    client = RecordingClient(buffers={calc: unsaved})

    answer = run(prompt_once(client, repo, replay, "--approval", "full-auto", fs=True, env=state, text="Fix add"))
    assert answer.stop_reason == "end_turn"
    reads = [u for _, u in client.updates if u.session_update == "tool_call_update" and u.status != "in_progress"]
    assert "an unsaved note in the editor" in reads[0].content[0].content.text
    assert "9 # an unsaved note in the editor\n[lines 9-9 of 9]" in reads[1].content[0].content.text  # buffer lines
    assert reads[2].status == "failed" and str(outside) not in client.reads  # our jail first, never the editor
    assert client.writes and client.writes[-1][0] == calc
    written = client.writes[-1][1]
    assert "return a + b" in written and "an unsaved note in the editor" in written  # patched the buffer
    assert (repo / "calc.py").read_text() == written


def test_without_editor_file_system_the_disk_is_used_and_the_editor_is_never_asked(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.open_file", {"path": "calc.py"}),
                                                     call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Done.")])
    client = RecordingClient(buffers={f"{repo}/calc.py": "def add(a, b):\n    return 0  # buffer\n"})

    answer = run(prompt_once(client, repo, replay, "--approval", "full-auto", fs=False, env=state, text="Fix add"))
    assert answer.stop_reason == "end_turn"
    assert client.reads == [] and client.writes == []
    assert "return a + b" in (repo / "calc.py").read_text()
    first = next(u for _, u in client.updates if u.session_update == "tool_call_update")
    assert "return a - b" in first.content[0].content.text and "# buffer" not in first.content[0].content.text


def test_a_second_prompt_on_a_busy_session_is_refused_and_two_sessions_share_the_model_in_turn(repo, tmp_path,
                                                                                               state):
    slow = " ".join(f"a{i}" for i in range(120))
    replay = write_replay(tmp_path / "replay.json", [final(slow), final("Second session answer.")])
    client = RecordingClient()

    async def scenario():
        from acp import RequestError

        async with replaying(client, replay, cwd=repo, env={**state, **SLOW_TOKENS}) as (conn, _):
            one = await conn.new_session(cwd=str(repo), mcp_servers=[])
            two = await conn.new_session(cwd=str(repo), mcp_servers=[])
            first = await streaming_prompt(client, conn, one.session_id, "Long")
            with pytest.raises(RequestError) as busy:
                await conn.prompt(session_id=one.session_id, prompt=[{"type": "text", "text": "Again"}])
            second = await conn.prompt(session_id=two.session_id, prompt=[{"type": "text", "text": "Other"}])
            return one.session_id, two.session_id, await first, second, busy.value

    one, two, first, second, busy = run(scenario())
    assert busy.code == -32001 and "already answering a prompt" in str(busy)
    assert first.stop_reason == second.stop_reason == "end_turn"
    texts = {sid: "".join(u.content.text for s, u in client.updates if s == sid
                          and u.session_update == "agent_message_chunk") for sid in (one, two)}
    assert texts[one] == slow and texts[two] == "Second session answer."
    order = [sid for sid, u in client.updates if u.session_update == "agent_message_chunk"]
    assert order.index(two) > max(i for i, sid in enumerate(order) if sid == one)  # generation in turn


def test_a_client_that_disappears_ends_the_process_and_leaves_a_resumable_session(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [final(" ".join(f"w{i}" for i in range(2000)))])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env={**state, **SLOW_TOKENS}) as (conn, proc):
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            await streaming_prompt(client, conn, session.session_id, "Talk")
            began = time.monotonic()
            proc.stdin.close()  # the editor crashed
            code = await asyncio.wait_for(proc.wait(), 20)
            return session.session_id, code, time.monotonic() - began

    session_id, code, took = run(scenario())
    assert code == 0 and took < 15
    record = read_session(Path(state["GPTOSS_AGENT_STATE_DIR"]) / "sessions" / f"{session_id}.jsonl")
    assert record.status in ("cancelled", "interrupted")
    resumed = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "resume", session_id, "--json", "--backend",
                              f"replay:{write_replay(tmp_path / 'more.json', [final('Back.')])}",
                              "--message", "continue", "--cwd", str(repo)],
                             capture_output=True, text=True, timeout=60, env=agent_env(state))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["status"] == "completed"


# ---------------------------------------------------------------------- raw bytes: malformed and out of order

def test_malformed_unknown_and_out_of_order_messages_get_json_rpc_errors_and_the_server_keeps_serving(
        repo, tmp_path, state):
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    msg = lambda **fields: (json.dumps({"jsonrpc": "2.0", **fields}) + "\n").encode()  # noqa: E731
    lines = [
        b"this is not json\n",
        msg(id=1, method="session/prompt", params={"sessionId": "x", "prompt": []}),  # before initialize
        b"[1, 2, 3]\n",
        b"\xff\xfe\x00 not utf-8\n",
        b'{"jsonrpc": "1.0", "id": 2, "method": "initialize"}\n',
        b'{"jsonrpc": "2.0", "id": {"nested": true}, "method": "initialize"}\n',
        b'{"jsonrpc": "2.0", "id": 3, "method": 42}\n',
        b'{"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": "one"}\n',
        b'{"jsonrpc": "2.0"}\n',
        b"[" * 100_000 + b"\n",
        msg(id=5, method="session/new", params={"cwd": 5, "mcpServers": []}),
        msg(id=6, method="no/such/method", params={}),
        msg(method="no/such/notification", params={}),  # a notification: no answer, by the spec
        msg(id=7, method="initialize", params={"protocolVersion": 1}),
        msg(id=8, method="session/new", params={"cwd": str(plain), "mcpServers": []}),
        msg(id=9, method="session/new", params={"cwd": "relative/path", "mcpServers": []}),
        msg(id=10, method="session/prompt", params={"sessionId": "nope", "prompt": []}),
        msg(id=11, method="session/set_mode", params={"sessionId": "nope", "modeId": "ask"}),
        msg(id=12, method="session/load", params={"sessionId": "nope", "cwd": str(repo), "mcpServers": []}),
        msg(method="session/cancel", params={"sessionId": "nope"}),
        msg(id=13, method="session/new", params={"cwd": str(repo), "mcpServers": []}),
    ]
    replies, stderr, code = exchange(lines, repo, state)
    assert code == 0
    assert all(r["jsonrpc"] == "2.0" for r in replies)
    answers = [r for r in replies if "result" in r or "error" in r]
    by_id = {json.dumps(r["id"]): r for r in answers if r["id"] is not None}
    nulls = [r["error"]["code"] for r in answers if r["id"] is None]
    assert nulls.count(-32700) == 3  # not JSON, not UTF-8, nested too deep
    assert nulls.count(-32600) == 3  # a batch, an object id, an empty message
    assert by_id["1"]["error"]["code"] == -32600 and "initialize first" in by_id["1"]["error"]["message"]
    assert by_id["2"]["error"]["code"] == -32600 and by_id["3"]["error"]["code"] == -32600
    assert by_id["4"]["error"]["code"] == -32600
    assert by_id["5"]["error"]["code"] == -32602
    assert by_id["6"]["error"]["code"] == -32601
    assert by_id["7"]["result"]["protocolVersion"] == 1
    assert by_id["8"]["error"]["code"] == -32602 and "git" in by_id["8"]["error"]["message"]
    assert by_id["9"]["error"]["code"] == -32602 and "absolute" in by_id["9"]["error"]["message"]
    for ident in ("10", "11"):
        assert by_id[ident]["error"]["code"] == -32602 and "no session 'nope'" in by_id[ident]["error"]["message"]
    assert by_id["12"]["error"]["code"] in (-32002, -32602)
    assert by_id["13"]["result"]["sessionId"]  # still serving after all of it
    assert len(answers) == len(lines) - 2  # every request answered, once (the two notifications are not)


def test_nothing_but_protocol_messages_reach_standard_output(repo, tmp_path, state):
    """A print anywhere in the process (or a native library writing to descriptor 1) lands on stderr."""
    probe = tmp_path / "probe.py"
    probe.write_text("import os, sys, runpy\n"
                     "sys.argv = ['gptoss-agent', 'acp', '--backend', 'replay:/nonexistent.json']\n"
                     "import gptoss_agent.agent.frontends.acp.wire as wire\n"
                     "real = wire.initialize_result\n"
                     "def noisy():\n"
                     "    print('stray print')\n"
                     "    os.write(1, b'native log line\\n')\n"
                     "    return real()\n"
                     "wire.initialize_result = noisy\n"
                     "from gptoss_agent.agent.frontends.cli import main\n"
                     "sys.exit(main())\n")
    done = subprocess.run([sys.executable, str(probe)], input=(json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}) + "\n").encode(),
        capture_output=True, timeout=60, cwd=repo, env=agent_env(state))
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["result"]["protocolVersion"] == 1
    assert b"stray print" in done.stderr and b"native log line" in done.stderr


def test_session_modes_decide_what_asks_and_the_editor_can_switch_them(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("I cannot edit in read-only mode."),
                                                     call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Fixed.")])
    client = RecordingClient()

    async def scenario():
        from acp import RequestError

        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            sid = session.session_id
            with pytest.raises(RequestError) as bad:
                await conn.set_session_mode(session_id=sid, mode_id="yolo")
            await conn.set_session_mode(session_id=sid, mode_id="read-only")
            await conn.prompt(session_id=sid, prompt=[{"type": "text", "text": "Fix add"}])
            untouched = (repo / "calc.py").read_text()
            await conn.set_session_mode(session_id=sid, mode_id="full-auto")
            await conn.prompt(session_id=sid, prompt=[{"type": "text", "text": "Now fix it"}])
            return bad.value, untouched

    bad, untouched = run(scenario())
    assert bad.code == -32602 and "read-only, ask, auto-edit, full-auto" in str(bad)
    assert "a - b" in untouched and "a + b" in (repo / "calc.py").read_text()
    assert client.permissions == []  # read-only refuses by itself, full-auto allows by itself
    updates = [u for _, u in client.updates if u.session_update == "tool_call_update" and u.status != "in_progress"]
    assert updates[0].status == "failed" and "read-only mode" in updates[0].content[0].content.text
    assert updates[1].status == "completed"


def test_always_answers_hold_for_the_rest_of_the_session(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [
        call("container.exec", {"cmd": ["echo", "one"]}), call("container.exec", {"cmd": ["echo", "two"]}),
        call("functions.run_tests", {}), call("functions.run_tests", {"paths": ["tests"]}), final("Done.")])
    client = RecordingClient(answers=["allow_always", "reject_always"])

    assert run(prompt_once(client, repo, replay, env=state)).stop_reason == "end_turn"
    assert [p.title for p in client.permissions] == ["Run echo one", "Run the tests"]
    done = [u for _, u in client.updates if u.session_update == "tool_call_update" and u.status != "in_progress"]
    assert [u.status for u in done] == ["completed", "completed", "failed", "failed"]
    assert "two" in done[1].content[0].content.text
    assert "rejects every functions.run_tests call" in done[3].content[0].content.text


def test_slash_commands_are_announced_and_run_without_the_model(repo, tmp_path, state):
    (repo / "calc.py").write_text((repo / "calc.py").read_text() + "# a change of the user's\n")
    replay = write_replay(tmp_path / "replay.json", [])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            from acp.schema import McpServerStdio

            editor_tool = McpServerStdio(name="editor-fs", command="/usr/bin/false", args=[], env=[])
            session = await conn.new_session(cwd=str(repo), mcp_servers=[editor_tool])
            return await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "/diff"}])

    assert run(scenario()).stop_reason == "end_turn"
    assert "MCP servers (editor-fs) are not used" in client.text("agent_thought_chunk")
    announced = next(u for _, u in client.updates if u.session_update == "available_commands_update")
    assert {c.name for c in announced.available_commands} == {"compact", "undo", "diff", "test"}
    assert "+# a change of the user's" in client.text("agent_message_chunk")


def test_the_editor_file_system_is_never_a_way_around_our_path_checks(repo, tmp_path, state):
    """A hostile model aims the file tools outside the repository, into .git, at a secret and through a link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("do not touch\n")
    (repo / "linked").symlink_to(outside)
    (repo / ".env").write_text("TOKEN=s3cr3t-value\n")
    attacks = [
        call("repo_browser.open_file", {"path": ".git/config"}),
        call("repo_browser.open_file", {"path": ".env"}),
        call("repo_browser.open_file", {"path": "linked/victim.txt"}),
        call("repo_browser.apply_patch", {"patch": "*** Begin Patch\n*** Add File: ../escape.txt\n+pwned\n"
                                                   "*** End Patch"}),
        call("repo_browser.apply_patch", {"patch": "*** Begin Patch\n*** Update File: linked/victim.txt\n"
                                                   "-do not touch\n+pwned\n*** End Patch"}),
        call("repo_browser.apply_patch", {"patch": "*** Begin Patch\n*** Add File: .git/hooks/post-commit\n"
                                                   "+#!/bin/sh\n*** End Patch"}),
        call("repo_browser.apply_patch", {"patch": "*** Begin Patch\n*** Update File: .env\n@@\n+MORE=1\n"
                                                   "*** End Patch"}),
        call("repo_browser.open_file", {"path": "calc.py"}),  # allowed: shows the editor's fs is really in use
        final("Done.")]
    replay = write_replay(tmp_path / "replay.json", attacks)
    client = RecordingClient()

    answer = run(prompt_once(client, repo, replay, "--approval", "full-auto", fs=True, env=state))
    assert answer.stop_reason == "end_turn"
    results = [u for _, u in client.updates if u.session_update == "tool_call_update" and u.status != "in_progress"]
    assert [u.status for u in results] == ["failed"] * 7 + ["completed"]
    # The editor was asked about the allowed file only (where commands run on the overlay, the only case
    # in which the editor's fs is used at all), never about any of the attacks.
    editor_in_use = sandbox_overlay.probe(repo)[0]
    assert client.reads == ([str(repo / "calc.py")] if editor_in_use else []) and client.writes == []
    assert (outside / "victim.txt").read_text() == "do not touch\n" and not (tmp_path / "escape.txt").exists()
    assert (repo / ".env").read_text() == "TOKEN=s3cr3t-value\n" and not (repo / ".git/hooks/post-commit").exists()
    assert "s3cr3t" not in json.dumps([u.model_dump() for _, u in client.updates])


def test_cancel_while_a_permission_request_is_open_ends_the_turn_and_changes_nothing(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Not reached.")])
    client = RecordingClient()

    async def scenario():
        client.hold_permission = asyncio.Event()
        async with replaying(client, replay, cwd=repo, env=state) as (conn, _):
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            turn = asyncio.ensure_future(conn.prompt(session_id=session.session_id,
                                                     prompt=[{"type": "text", "text": "Fix add"}]))
            while not client.permissions:
                await asyncio.sleep(0.02)
            await conn.cancel(session_id=session.session_id)
            answer = await asyncio.wait_for(turn, 20)  # our side stops waiting, whatever the dialog does
            client.hold_permission.set()
            return answer

    assert run(scenario()).stop_reason == "cancelled"
    assert "a - b" in (repo / "calc.py").read_text()


def test_a_session_opened_and_never_prompted_leaves_no_log(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [final("Hi.")])
    client = RecordingClient()

    async def scenario():
        async with replaying(client, replay, cwd=repo, env=state) as (conn, proc):
            idle = await conn.new_session(cwd=str(repo), mcp_servers=[])
            used = await conn.new_session(cwd=str(repo), mcp_servers=[])
            await conn.prompt(session_id=used.session_id, prompt=[{"type": "text", "text": "Hello"}])
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 20)
            return idle.session_id, used.session_id

    idle, used = run(scenario())
    logs = {p.stem for p in (Path(state["GPTOSS_AGENT_STATE_DIR"]) / "sessions").glob("*.jsonl")}
    assert logs == {used}
