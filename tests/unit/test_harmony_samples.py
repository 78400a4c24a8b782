"""Every real gpt-oss completion in shared/harmony-samples parses to what its source says.

The samples come from the public test suites of openai/harmony, llama.cpp,
vLLM and Ollama; their expected parses are stated in each source's own terms,
so each is compared through the matching projection. Where we deliberately
read a sample differently from its source, the reason is written down in
DEVIATIONS and the test checks our reading instead.
"""

from __future__ import annotations

import json

import pytest

from gptoss_agent.agent.model.completion import interpret
from gptoss_agent.agent.model.harmony_stream import HarmonyStreamParser
from tests.conftest import SHARED

SAMPLES_DIR = SHARED / "harmony-samples"
INDEX = json.loads((SAMPLES_DIR / "index.json").read_text()) if (SAMPLES_DIR / "index.json").exists() else []

# Where our parse intentionally differs from the source's, and what we produce instead.
DEVIATIONS = {
    # vLLM gives up on a final header with no <|message|> and returns the raw text; the
    # text after the channel name is the answer the model meant, so we recover it.
    "vllm_malformed_final_header_no_message": {"content": 'thinking\n{"answer": "hi"}'},
}


def _parse(sample, codec):
    text = (SAMPLES_DIR / sample["file"]).read_text(encoding="utf-8")
    tokens = codec.encode_with_specials(text)
    parser = HarmonyStreamParser(codec.token_bytes, after_assistant_start=sample["start"] == "assistant_completion")
    parser.feed_all(tokens)
    return parser, parser.finish()


def _as_harmony(messages):
    return [{"role": m.header.role, "name": m.header.name, "channel": m.header.channel,
             "recipient": m.header.recipient, "content_type": m.header.content_type, "content": m.content}
            for m in messages]


def _as_llamacpp(messages):
    """llama.cpp's common_chat_msg view: reasoning, visible content, function calls."""
    reasoning = [m.content for m in messages if not m.is_tool_call and m.channel == "analysis"]
    content = [m.content for m in messages if not m.is_tool_call and m.channel in ("commentary", "final")]
    calls = [{"name": m.recipient.removeprefix("functions."), "arguments": m.content}
             for m in messages if m.is_tool_call and m.recipient.startswith("functions.")]
    return "\n".join(reasoning), "\n".join(content), calls


@pytest.mark.skipif(not INDEX, reason="shared/harmony-samples is not beside this checkout")
@pytest.mark.parametrize("sample", INDEX, ids=[s["name"] for s in INDEX])
def test_sample_parses_as_its_source_says(sample, codec):
    parser, messages = _parse(sample, codec)
    expected = sample.get("expected") or {}
    fmt = expected.get("format", "")
    deviation = DEVIATIONS.get(sample["name"], {})

    if "messages" in expected:
        got = _as_harmony(messages)
        want = [{k: m[k] for k in ("role", "name", "channel", "recipient", "content_type", "content")}
                for m in expected["messages"]]
        assert got == want
    elif "message" in expected:  # llama.cpp common_chat_msg
        reasoning, content, calls = _as_llamacpp(messages)
        want = expected["message"]
        assert reasoning == want["reasoning_content"]
        assert content == want["content"]
        assert calls == want["tool_calls"]
    elif fmt.startswith("vLLM HarmonyParser"):
        reasoning, content, calls = _as_llamacpp(messages)
        assert (reasoning or None) == expected["reasoning"]
        assert (content or None) == deviation.get("content", expected["content"])
        want_calls = [{"name": n, "arguments": a} for n, a in (expected["tool_calls"] or [])]
        assert calls == want_calls
    elif fmt == "ollama first HarmonyHeader":
        first = messages[0].header
        assert (first.role, first.channel, first.recipient or "") == (
            expected["role"], expected["channel"], expected["recipient"])
    elif fmt == "ollama events":
        header = expected["events"][1]["HeaderComplete"]
        assert len(messages) == 1
        assert (messages[0].header.role, messages[0].channel, messages[0].recipient) == (
            header["role"], header["channel"], header["recipient"])
        assert messages[0].content == expected["events"][2]["ContentEmitted"]
    elif fmt == "count only":
        assert len(messages) == expected["n_messages"]
    elif fmt == "GptOssReasoningParser.is_reasoning_end":
        assert messages[-1].channel == "final" and messages[-1].content == "This is the rest"
        assert messages[-1].header.content_type == "<|constrain|>ReplyAction"
    else:
        # Samples whose source states no parse (grammar admission, prompt renders, pasted
        # outputs): every message must come back with text that really is in the sample,
        # nothing invented and nothing lost to an error.
        raw = (SAMPLES_DIR / sample["file"]).read_text(encoding="utf-8")
        assert messages, "nothing parsed"
        assert all(m.content.strip() in raw for m in messages)
        assert sum(len(m.content) for m in messages) > 0

    _assert_outcome_follows_the_messages(messages, interpret(messages, stream_repairs=parser.stream_repairs))


def _assert_outcome_follows_the_messages(messages, outcome):
    """What the loop does next is what the completion asked for: its first assistant tool
    call, else its final answer, else a message to the model saying what was wrong."""
    assistant = [m for m in messages if m.header.role == "assistant"]
    calls = [m for m in assistant if m.is_tool_call]
    finals = [m for m in assistant if not m.is_tool_call and (m.channel == "final" or m.terminator == "return")]
    if calls:
        assert outcome.kind in ("tool_call", "truncated") and outcome.call.recipient == calls[0].recipient
    elif finals:
        assert outcome.kind == "final" and finals[-1].content in outcome.final
    else:
        assert outcome.kind in ("format_error", "truncated") and outcome.error


def test_every_sample_is_covered():
    """The index lists 49 samples; a sample silently dropped from the run would hide a regression."""
    if not INDEX:
        pytest.skip("shared/harmony-samples is not beside this checkout")
    assert len(INDEX) == 49
    assert all((SAMPLES_DIR / s["file"]).exists() for s in INDEX)


def test_repeated_to_clause_becomes_the_intended_call(codec):
    sample = next((s for s in INDEX if s["name"] == "vllm_repeated_to_clause"), None)
    if sample is None:
        pytest.skip("shared/harmony-samples is not beside this checkout")
    parser, messages = _parse(sample, codec)
    outcome = interpret(messages, stream_repairs=parser.stream_repairs)
    assert outcome.kind == "tool_call"
    assert outcome.call.recipient == "functions.get_weather"
    assert any("repeated" in r for r in outcome.repairs)
