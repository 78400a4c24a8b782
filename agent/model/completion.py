"""What one sampled completion asks for: a tool call, a final answer, or a repair.

The stream parser recovers messages; this module decides what they mean for
the loop. It is pure, and every way a completion can be unusable ends in a
`format_error` whose text is written for the model, so it can correct itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from gptoss_agent.agent.model.harmony_stream import ParsedMessage

OutcomeKind = Literal["tool_call", "final", "format_error", "truncated"]

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
_EXCERPT = 200
MAX_ARGUMENT_CHARS = 1_000_000
"""Longest argument text decoded: far above any real call (a step's token budget is smaller)."""
MAX_ARGUMENT_DEPTH = 32
"""Deepest nesting of JSON arguments: tools take flat objects; deeper is never a real call."""


@dataclass(frozen=True)
class ToolCallRequest:
    """A call as the model wrote it, before any tool looks at it."""

    recipient: str
    raw_arguments: str
    channel: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class StepOutcome:
    """The meaning of one completion.

    `reasoning` holds the analysis messages, `preambles` the commentary the user
    should see, `final` the answer (with `complete=False` when the token limit
    cut it off), `call` the tool call, and `error` the message for the model when
    `kind` is "format_error" or "truncated".
    """

    kind: OutcomeKind
    reasoning: tuple[str, ...] = ()
    preambles: tuple[str, ...] = ()
    final: str | None = None
    complete: bool = True
    call: ToolCallRequest | None = None
    error: str | None = None
    repairs: tuple[str, ...] = ()


def interpret(messages: Sequence[ParsedMessage], *, stream_repairs: Sequence[str] = ()) -> StepOutcome:
    """Decide what a completion's messages ask the loop to do."""
    reasoning: list[str] = []
    preambles: list[str] = []
    repairs: list[str] = list(stream_repairs)
    finals: list[ParsedMessage] = []
    ignored: list[ParsedMessage] = []
    call_message: ParsedMessage | None = None

    for message in messages:
        if call_message is not None:
            ignored.append(message)
            continue
        repairs.extend(message.repairs)
        if message.header.role != "assistant":
            ignored.append(message)
            repairs.append(f"model wrote a message as {message.header.name or message.header.role!r}; ignored")
            continue
        if message.is_tool_call:
            call_message = message
        elif message.channel == "final":
            finals.append(message)
        elif message.channel == "commentary" and message.terminator == "return":
            finals.append(message)
            repairs.append("answer sent on the commentary channel with `<|return|>`: read as the final answer")
        elif message.channel == "commentary":
            preambles.append(message.content)
        else:  # analysis, or no channel at all
            reasoning.append(message.content)
    if ignored and call_message is not None:
        repairs.append(f"{len(ignored)} message(s) after the tool call ignored")

    common = dict(reasoning=tuple(reasoning), preambles=tuple(preambles))
    if call_message is not None:
        call = ToolCallRequest(call_message.recipient, call_message.content,
                               call_message.channel, call_message.header.content_type)
        if call_message.terminator == "eos":
            arguments, error = decode_arguments(call)
            if error is not None:
                return StepOutcome("truncated", call=call, repairs=tuple(repairs), **common,
                                   error=f"Your call to {call.recipient} was cut off before it ended "
                                         f"(token limit). Send the call again, complete and shorter.")
            repairs.append("tool call ended without `<|call|>`")
        elif call_message.terminator != "call":
            repairs.append(f"tool call closed by {call_message.terminator!r} instead of `<|call|>`")
        return StepOutcome("tool_call", call=call, repairs=tuple(repairs), **common)
    if finals:
        last = finals[-1]
        text = "\n".join(m.content for m in finals if m.content) if len(finals) > 1 else last.content
        return StepOutcome("final", final=text, complete=last.terminator != "eos",
                           repairs=tuple(repairs), **common)
    if messages and messages[-1].terminator == "eos":
        return StepOutcome("truncated", repairs=tuple(repairs), **common,
                           error="Your reply was cut off by the token limit before a final answer or a tool call. "
                                 "Think more briefly, then answer or call a tool.")
    return StepOutcome("format_error", repairs=tuple(repairs), **common,
                       error="Your turn ended without a final answer or a tool call. Answer on the final channel, "
                             "or call a tool on the commentary channel (`to=functions.NAME`).")


def decode_arguments(call: ToolCallRequest) -> tuple[dict[str, Any] | str | None, str | None]:
    """Read a call's arguments: a JSON object, a bare string for tools that take one, or an error.

    Tolerates what gpt-oss really writes: a trailing newline, a Markdown code
    fence, empty arguments for a tool with none. Returns (arguments, error).
    """
    if len(call.raw_arguments) > MAX_ARGUMENT_CHARS:
        return None, (f"The arguments of your call to {call.recipient} are {len(call.raw_arguments)} characters "
                      f"long; the limit is {MAX_ARGUMENT_CHARS}. Send smaller arguments (split the work).")
    text = call.raw_arguments.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        return {}, None
    looks_json = text[0] in "{[" or (call.content_type or "").endswith("json")
    if not looks_json:
        return text, None
    too_deep = (f"The arguments of your call to {call.recipient} are nested more than {MAX_ARGUMENT_DEPTH} "
                "levels deep. Send one flat JSON object whose values are strings, numbers, booleans or short lists.")
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        return None, (f"The arguments of your call to {call.recipient} are not valid JSON: {exc.msg} "
                      f"(line {exc.lineno}, column {exc.colno}). You sent: {_excerpt(text)}. "
                      "Send one JSON object, with double-quoted keys and strings.")
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        return None, (f"The arguments of your call to {call.recipient} hold a number too long to read. "
                      f"You sent: {_excerpt(text)}. Send numbers of at most a few digits.")
    except RecursionError:  # the decoder's own guard, long before the C stack is at risk
        return None, too_deep
    if _depth_exceeds(value, MAX_ARGUMENT_DEPTH):
        return None, too_deep
    if text[end:].strip():
        return None, (f"The arguments of your call to {call.recipient} have extra text after the JSON object "
                      f"(from column {end + 1}): {_excerpt(text[end:])}. Send exactly one JSON object.")
    if isinstance(value, str):
        return value, None
    if not isinstance(value, dict):
        return None, (f"The arguments of your call to {call.recipient} must be a JSON object, "
                      f"not a {type(value).__name__}: {_excerpt(text)}.")
    return value, None


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests deeper than `limit`; iterative, so any depth is safe to ask about."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + f"… ({len(text)} characters)"
