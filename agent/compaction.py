"""What compaction shows the summariser: the conversation's real structure, with untrusted text fenced.

The old compaction decoded all tokens to one string, so a file that contained
`<|start|>user<|message|>…` read exactly like a real user turn. Here messages are
split on special-token ids, which only the renderer and the model can produce
(repository text is always encoded with specials disallowed), and every message
body goes inside a fence whose marker carries a random nonce the text cannot
predict. Long tool outputs are cut to their head and tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from gptoss_agent.agent.fences import Fence
from gptoss_agent.agent.model.harmony_stream import CALL, END, MESSAGE, RETURN, START

TOOL_OUTPUT_TOKENS = 300  # what each tool output keeps in the summariser's view
_TERMINATORS = frozenset({END, CALL, RETURN})


@dataclass(frozen=True)
class MessageView:
    """One message found by its special tokens: the header as rendered, and the content's tokens."""

    header: str
    content: list[int]
    terminator: int | None


def split_messages(tokens: Sequence[int], decode) -> list[MessageView]:
    """Messages in a token run, delimited by `<|start|>`, `<|message|>` and a terminator (ids, not text)."""
    views: list[MessageView] = []
    header: list[int] | None = None
    content: list[int] | None = None
    for token in tokens:
        if token == START:
            header, content = [], None
        elif token == MESSAGE and header is not None and content is None:
            content = []
        elif token in _TERMINATORS and content is not None:
            views.append(MessageView(decode(header or []), content, token))
            header = content = None
        elif content is not None:
            content.append(token)
        elif header is not None:
            header.append(token)
    if content is not None:  # a message left open (a cut-off completion)
        views.append(MessageView(decode(header or []), content, None))
    return views


def describe_header(kind: str, header: str) -> str:
    """`assistant (analysis)`, `assistant → functions.run_tests`, `tool functions.run_tests`, `user`."""
    text = header.replace("<|channel|>", " <|channel|>").replace("<|constrain|>", " ")
    words = text.split()
    author = words[0] if words else kind
    channel = next((w.split("<|channel|>", 1)[1] for w in words if w.startswith("<|channel|>")), None)
    recipient = next((w[3:] for w in words if w.startswith("to=") and w[3:] != "assistant"), None)
    if kind == "tool":
        return f"tool result from {author}"
    label = author + (f" ({channel})" if channel else "")
    return label + (f" → call {recipient}" if recipient else "")


def transcript(segments, codec, fence: Fence, *, tool_output_tokens: int = TOOL_OUTPUT_TOKENS) -> list[str]:
    """The segments as numbered, labelled messages; every body fenced; tool outputs cut to head and tail."""
    entries: list[str] = []
    for segment in segments:
        tokens = segment.visible_tokens(drop_analysis=False)
        for view in split_messages(tokens, codec.decode):
            label = describe_header(segment.kind, view.header)
            body = view.content
            if segment.kind == "tool" and len(body) > tool_output_tokens:
                head, tail = body[: tool_output_tokens * 2 // 3], body[-(tool_output_tokens // 3):]
                text = (codec.decode(head) + f"\n[… {len(body) - len(head) - len(tail)} tokens of output omitted …]\n"
                        + codec.decode(tail))
            else:
                text = codec.decode(body)
            if segment.kind == "notice":
                label = "notice from gptoss-agent"
            entries.append(f"[{len(entries) + 1}] {label}:\n{fence.wrap(text)}")
    return entries


def recap(segments, codec) -> list[tuple[str, str]]:
    """The exchanges a person saw in a conversation: ("user", text) and ("final", answer), in order.

    What the TUI shows after /resume in place of the previous conversation, so
    the screen and the model hold the same history (tool calls, reasoning and
    the agent's notices are left out, as a recap).
    """
    shown: list[tuple[str, str]] = []
    for segment in segments:
        if segment.kind not in ("user", "assistant"):
            continue
        for view in split_messages(segment.tokens, codec.decode):
            words = view.header.replace("<|channel|>", " <|channel|>").split()
            if segment.kind == "user" and words[:1] == ["user"]:
                shown.append(("user", codec.decode(view.content)))
            elif segment.kind == "assistant" and "<|channel|>final" in words and not any(
                    w.startswith("to=") for w in words):
                shown.append(("final", codec.decode(view.content)))
    return shown
