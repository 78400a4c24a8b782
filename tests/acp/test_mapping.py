"""The pure mapping from agent events to ACP updates, and the JSON-RPC line checks (no process)."""

from __future__ import annotations

import pytest

pytest.importorskip("acp")

from gptoss_agent.agent.frontends.acp.mapping import (UpdateMapper, coalesce, message, stop_reason, thought,  # noqa: E402
                                                      tool_title)
from gptoss_agent.agent.frontends.acp.wire import handshake, problem  # noqa: E402
from gptoss_agent.agent.events import (ErrorRaised, MessageEmitted, PlanUpdated, ReasoningEmitted, RunFinished,  # noqa: E402
                                       TextStreamed, ToolCalled, ToolFinished)


@pytest.mark.parametrize("status, reason, expected", [
    ("completed", "", "end_turn"),
    ("cancelled", "cancelled by the user", "cancelled"),
    ("max_steps", "reached the limit of 50 steps", "max_turn_requests"),
    ("failed", "reached the time limit of 3600s", "max_turn_requests"),
    ("failed", "reached the limit of 200000 generated tokens", "max_tokens"),
    ("failed", "truncated answer", "max_tokens"),
    ("error", "3 unusable replies in a row", "end_turn"),
])
def test_each_run_status_has_the_stop_reason_an_editor_expects(status, reason, expected):
    assert stop_reason(status, reason) == expected


def test_titles_name_the_tool_and_its_subject_on_one_safe_line():
    assert tool_title("repo_browser.open_file", {"path": "src/a.py"}) == "Read src/a.py"
    assert tool_title("container.exec", {"cmd": ["pytest", "-q"]}) == "Run pytest -q"
    patch = "*** Begin Patch\n*** Update File: a.py\n@@\n*** Add File: b.py\n+x\n*** End Patch"
    assert tool_title("repo_browser.apply_patch", {"patch": patch}) == "Edit a.py, b.py"
    hostile = tool_title("repo_browser.open_file", {"path": "a\x1b]52;c;ZXZpbA==\x07.py"})
    assert "\x1b" not in hostile and "\x07" not in hostile and "\\x1b" in hostile


def test_live_text_streams_once_and_a_replayed_log_shows_the_whole_messages():
    live, replay = UpdateMapper("/repo"), UpdateMapper("/repo", live=False)
    streamed = coalesce(live(TextStreamed("analysis", "think")) + live(TextStreamed("analysis", "ing"))
                        + live(TextStreamed("final", "answer")))
    assert [(u.session_update, u.content.text) for u in streamed] == [
        ("agent_thought_chunk", "thinking"), ("agent_message_chunk", "answer")]
    assert live(MessageEmitted("final", "answer")) == []  # already streamed
    assert replay(TextStreamed("final", "answer")) == []  # never recorded; here for completeness
    assert replay(MessageEmitted("final", "answer"))[0].content.text == "answer"
    assert replay(ReasoningEmitted("why"))[0].content.text.startswith("why")


def test_a_tool_call_and_its_result_become_a_tool_call_and_its_update():
    mapper = UpdateMapper("/repo")
    start = mapper(ToolCalled("call_1", "container.exec", {"cmd": ["ls", "\x1b[2J"]}))[0]
    assert (start.tool_call_id, start.kind, start.status) == ("call_1", "execute", "pending")
    assert start.raw_input == {"cmd": ["ls", "\\x1b[2J"]}
    done = mapper(ToolFinished("call_1", "container.exec", False, "boom\x1b[31m"))[0]
    assert done.status == "failed" and "\\x1b[31m" in done.content[0].content.text


def test_plan_errors_and_failed_runs_are_shown():
    mapper = UpdateMapper("/repo")
    plan = mapper(PlanUpdated([{"step": "a", "status": "completed"}, {"step": "b", "status": "weird"}]))[0]
    assert [(e.content, e.status) for e in plan.entries] == [("a", "completed"), ("b", "pending")]
    assert "boom" in mapper(ErrorRaised("boom"))[0].content.text
    assert "loop" in mapper(RunFinished("failed", 3, 0, 0, 0, 1.0, "loop"))[0].content.text
    assert mapper(RunFinished("completed", 3, 0, 0, 0, 1.0, "")) == []


def test_waiting_text_chunks_merge_with_their_neighbours_only():
    items = [thought("a"), thought("b"), message("c"), message("d"), "other", message("e")]
    merged = coalesce(items)
    assert [getattr(getattr(m, "content", None), "text", m) for m in merged] == ["ab", "cd", "other", "e"]


@pytest.mark.parametrize("message, code", [
    ([1], -32600), (5, -32600), ({"jsonrpc": "2.0"}, -32600), ({"id": 1, "method": "x"}, -32600),
    ({"jsonrpc": "2.0", "id": True, "method": "x"}, -32600),
    ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": 3}, -32600),
    ({"jsonrpc": "2.0", "id": 1, "result": 1, "error": {}}, -32600),
])
def test_lines_that_are_not_json_rpc_are_named(message, code):
    assert problem(message)[0] == code


def test_valid_messages_pass_and_only_a_proper_initialize_is_answered_early():
    assert problem({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}) is None
    assert problem({"jsonrpc": "2.0", "method": "session/cancel", "params": {}}) is None
    assert problem({"jsonrpc": "2.0", "id": 1, "result": None}) is None
    reply, capabilities = handshake(b'{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":1,'
                                    b'"clientCapabilities":{"fs":{"readTextFile":true}}}}\n')
    assert b'"id":7' in reply and capabilities == {"fs": {"readTextFile": True}}
    assert handshake(b'{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"1"}}') is None
    assert handshake(b'{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":1}}') is None


def test_the_early_initialize_answer_is_a_valid_sdk_initialize_response():
    import json

    from acp.schema import InitializeResponse

    reply, _ = handshake(b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}')
    response = InitializeResponse.model_validate(json.loads(reply)["result"])
    assert response.protocol_version == 1 and response.agent_capabilities.load_session
    assert response.agent_capabilities.prompt_capabilities.embedded_context


def test_an_over_long_line_is_refused_without_being_kept_and_the_next_line_is_read(monkeypatch):
    import asyncio
    import json

    from gptoss_agent.agent.frontends.acp import wire as acp_wire

    monkeypatch.setattr(acp_wire, "MAX_MESSAGE_BYTES", 4096)

    class Written:
        def __init__(self):
            self.lines = []

        def write(self, data):
            self.lines.append(json.loads(data))

        async def drain(self):
            return None

    async def scenario():
        reader = asyncio.StreamReader(limit=1024)  # smaller than the line: read in pieces, as in production
        reader.feed_data(b"x" * 10_000 + b"\n" + b'{"jsonrpc":"2.0","method":"session/cancel","params":{}}\n')
        reader.feed_eof()
        written = Written()
        transport = acp_wire.CheckedTransport(reader, written)
        message = await transport.receive()
        return message, await transport.receive(), written.lines

    message, end, replies = asyncio.run(scenario())
    assert message["method"] == "session/cancel" and end is None
    assert replies == [{"jsonrpc": "2.0", "id": None,
                        "error": {"code": -32600, "message": "Invalid request: larger than 4096 bytes"}}]
