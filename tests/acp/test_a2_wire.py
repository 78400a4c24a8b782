"""A2 findings 3 and 12 on the wire (raw bytes): NaN/Infinity and bad cwds are answered, with invalid params.

An editor that sends a non-finite number (Python's json reads NaN, JSON has no
such thing) used to wait forever: the SDK echoed it in its error and the reply
could not be written. Every request gets exactly one answer, with its id.
"""

from __future__ import annotations

import json

import pytest

from tests.acp.harness import exchange

pytest.importorskip("acp")


def test_non_finite_numbers_and_bad_cwds_get_invalid_params_with_their_id_and_serving_goes_on(repo, tmp_path, state):
    new = '{"jsonrpc":"2.0","id":%d,"method":"session/new","params":{"cwd":%s,"mcpServers":[]}}\n'
    lines = [
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":-Infinity}}\n',
        b'{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":1}}\n',
        (new % (3, "NaN")).encode(),
        (new % (4, "Infinity")).encode(),
        b'{"jsonrpc":"2.0","id":5,"method":"session/prompt","params":{"sessionId":"x",'
        b'"prompt":[{"type":"text","text":NaN}]}}\n',
        b'{"jsonrpc":"2.0","id":6,"method":"session/new","params":{"cwd":"/tmp","mcpServers":[{"name":"x",'
        b'"command":"y","args":[],"env":[{"name":"a","value":NaN}]}]}}\n',
        (new % (7, json.dumps(f"{repo}/a\u0000b"))).encode(),
        (new % (8, json.dumps("/" + "x" * 5000))).encode(),
        (new % (9, json.dumps("/" + "/".join(["y" * 200] * 30)))).encode(),
        (new % (10, json.dumps(str(repo)))).encode(),
    ]
    replies, stderr, code = exchange(lines, repo, state)
    assert code == 0
    answers = {r["id"]: r for r in replies if "id" in r and ("result" in r or "error" in r)}
    assert sorted(answers) == list(range(1, 11)), stderr[-2000:]  # every request answered, none twice
    for ident, what in ((1, "-Infinity"), (3, "NaN"), (4, "Infinity"), (5, "NaN"), (6, "NaN")):
        assert answers[ident]["error"]["code"] == -32602
        assert what in answers[ident]["error"]["message"]
    for ident in (7, 8, 9):  # a NUL, an over-long path, an over-long name: the caller's mistake, not ours
        assert answers[ident]["error"]["code"] == -32602, answers[ident]
    assert answers[2]["result"]["protocolVersion"] == 1
    assert answers[10]["result"]["sessionId"]  # still serving


def test_a_reply_holding_a_non_finite_number_is_still_written_as_strict_json():
    import asyncio

    from gptoss_agent.agent.frontends.acp.wire import CheckedTransport

    class Sink:
        data = b""

        def write(self, data: bytes) -> None:
            Sink.data += data

        async def drain(self) -> None:
            return None

    transport = CheckedTransport(None, Sink())
    asyncio.run(transport.send({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "Invalid params",
                                                                     "data": {"input": float("nan")}}}))
    reply = json.loads(Sink.data, parse_constant=lambda name: pytest.fail(f"{name} written"))
    assert reply["id"] == 1 and reply["error"]["data"]["input"] == "nan"
