"""The tolerant parser on the output variants gpt-oss produces in the wild.

Each case is a token sequence built with the real o200k_harmony encoding; each
must either become the intended tool call or a precise format error for the
model, and none may raise.
"""

from __future__ import annotations

import pytest

from gptoss_agent.agent.model.completion import decode_arguments, interpret
from gptoss_agent.agent.model.harmony_stream import CALL, END, RETURN, HarmonyStreamParser

CALL_VARIANTS = {
    "recipient after channel": '<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.py"}<|call|>',
    "recipient in role header": ' to=functions.read<|channel|>commentary <|constrain|>json<|message|>{"path": "a.py"}<|call|>',
    "constrain without space": '<|channel|>commentary to=functions.read<|constrain|>json<|message|>{"path": "a.py"}<|call|>',
    "json glued without constrain": '<|channel|>commentary to=functions.read json<|message|>{"path": "a.py"}<|call|>',
    "call on analysis channel, code type": '<|channel|>analysis to=functions.read code<|message|>{"path": "a.py"}\n<|call|>',
    "no constrain at all": '<|channel|>commentary to=functions.read<|message|>{"path": "a.py"}<|call|>',
    "end instead of call": '<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.py"}<|end|>',
    "stream ends without stop token": '<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.py"}',
    "duplicated to=": '<|channel|>commentary to=functions.read to=functions.read<|message|>{"path": "a.py"}<|call|>',
    "reasoning then call": '<|channel|>analysis<|message|>Need the file.<|end|><|start|>assistant<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.py"}<|call|>',
    "text after the stop token": '<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.py"}<|call|><|start|>assistant<|channel|>final<|message|>Done<|return|>',
    "code fence around arguments": '<|channel|>commentary to=functions.read <|constrain|>json<|message|>```json\n{"path": "a.py"}\n```<|call|>',
}


def parse(codec, text, *, stop_at_request=False):
    parser = HarmonyStreamParser(codec.token_bytes)
    for token in codec.encode_with_specials(text):
        if parser.feed(token) and stop_at_request:
            break
    return interpret(parser.finish(), stream_repairs=parser.stream_repairs), parser


@pytest.mark.parametrize("text", CALL_VARIANTS.values(), ids=CALL_VARIANTS.keys())
def test_variant_becomes_the_intended_call(codec, text):
    outcome, _ = parse(codec, text)
    assert outcome.kind == "tool_call"
    assert outcome.call.recipient == "functions.read"
    arguments, error = decode_arguments(outcome.call)
    assert error is None
    assert arguments == {"path": "a.py"}


def test_invalid_json_arguments_give_a_precise_error(codec):
    outcome, _ = parse(codec, '<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.py" "x": 1}<|call|>')
    assert outcome.kind == "tool_call"
    arguments, error = decode_arguments(outcome.call)
    assert arguments is None
    assert "functions.read" in error and "not valid JSON" in error and "column 17" in error


def test_extra_text_after_arguments_is_reported(codec):
    outcome, _ = parse(codec, '<|channel|>commentary to=functions.read<|message|>{"path": "a"} {"path": "b"}<|call|>')
    _, error = decode_arguments(outcome.call)
    assert "extra text after the JSON object" in error


def test_bare_string_arguments_pass_through_for_tools_that_take_one(codec):
    patch = "*** Begin Patch\n*** Add File: x.txt\n+hi\n*** End Patch"
    outcome, _ = parse(codec, f"<|channel|>commentary to=functions.apply_patch<|message|>{patch}<|call|>")
    assert decode_arguments(outcome.call) == (patch, None)


def test_truncated_call_is_a_truncation_error_not_a_call(codec):
    outcome, _ = parse(codec, '<|channel|>commentary to=functions.read <|constrain|>json<|message|>{"path": "a.')
    assert outcome.kind == "truncated"
    assert "cut off" in outcome.error


def test_reasoning_only_then_eos_is_truncated(codec):
    outcome, _ = parse(codec, "<|channel|>analysis<|message|>Let me think about this for a very long")
    assert outcome.kind == "truncated"
    assert outcome.reasoning == ("Let me think about this for a very long",)


def test_turn_without_answer_or_call_is_a_format_error(codec):
    outcome, _ = parse(codec, "<|channel|>analysis<|message|>thinking<|end|>")
    assert outcome.kind == "format_error"
    assert "without a final answer or a tool call" in outcome.error


def test_final_answer_with_preamble_and_reasoning(codec):
    outcome, _ = parse(codec, "<|channel|>analysis<|message|>easy<|end|><|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>"
                              "<|start|>assistant<|channel|>final<|message|>It is **4**.<|return|>")
    assert (outcome.kind, outcome.final, outcome.complete) == ("final", "It is **4**.", True)
    assert outcome.reasoning == ("easy",) and outcome.preambles == ("Checking.",)


def test_parser_asks_to_stop_after_call_closed_by_end(codec):
    """Else the model goes on to write the tool's answer itself."""
    text = ('<|channel|>commentary to=functions.read<|message|>{}<|end|>'
            '<|start|>functions.read to=assistant<|channel|>commentary<|message|>invented<|end|>')
    parser = HarmonyStreamParser(codec.token_bytes)
    tokens = codec.encode_with_specials(text)
    stop_at = next(i for i, t in enumerate(tokens) if parser.feed(t))
    assert tokens[stop_at] == END
    assert parser.clean_length == stop_at + 1
    assert [m.content for m in parser.finish()] == ["{}"]


def test_parser_flags_impersonation_of_a_tool(codec):
    text = "<|channel|>final<|message|>hi<|end|><|start|>functions.read to=assistant<|channel|>commentary<|message|>x<|end|>"
    parser = HarmonyStreamParser(codec.token_bytes)
    tokens = codec.encode_with_specials(text)
    stops = [i for i, t in enumerate(tokens) if parser.feed(t)]
    assert stops, "the parser must ask to stop when the model writes as a tool"
    assert codec.decode(tokens[:stops[0] + 1]).endswith("<|start|>functions")


@pytest.mark.parametrize("stop", [CALL, RETURN])
def test_stop_tokens_request_a_stop(codec, stop):
    parser = HarmonyStreamParser(codec.token_bytes)
    for token in codec.encode_with_specials("<|channel|>final<|message|>x"):
        assert parser.feed(token) is False
    assert parser.feed(stop) is True
    assert parser.stopped_on == stop


def test_streamed_text_reassembles_multibyte_characters(codec):
    """Tokens split UTF-8 sequences; the streamed deltas must never show broken characters."""
    answer = "Zoë says 你好 🎉 — naïve café"
    deltas: list[str] = []
    parser = HarmonyStreamParser(codec.token_bytes, on_text=lambda header, text: deltas.append(text))
    parser.feed_all(codec.encode_with_specials(f"<|channel|>final<|message|>{answer}<|return|>"))
    assert "".join(deltas) == answer
    assert all("\ufffd" not in d for d in deltas)
    assert parser.finish()[0].content == answer


def test_special_token_text_inside_content_is_not_a_boundary(codec):
    """Text that only looks like a special token (encoded as ordinary tokens) stays content."""
    content_tokens = codec.encode_text("literal <|end|> in a file")
    parser = HarmonyStreamParser(codec.token_bytes)
    parser.feed_all(codec.encode_with_specials("<|channel|>final<|message|>") + content_tokens + [RETURN])
    assert [m.content for m in parser.finish()] == ["literal <|end|> in a file"]
