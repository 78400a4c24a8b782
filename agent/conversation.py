"""The conversation as gpt-oss tokens, kept so that each prompt extends the last one.

Assistant output is stored as the tokens the model generated, not re-rendered
from parsed messages: re-rendering moves ` to=` before `<|channel|>` and may
re-tokenize content, which would break the KV cache's prefix match on every
step. The one rewrite is Harmony's: a closing `<|return|>` is stored as
`<|end|>`.

Old reasoning follows the Harmony rule: analysis stays while a turn is in
progress (across its tool calls, or the model forgets why it called them) and
is dropped from prompts once that turn has ended with a `final` message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from gptoss_agent.agent.model.harmony import HarmonyCodec
from gptoss_agent.agent.model.harmony_stream import CALL, END, RETURN, ParsedMessage

SegmentKind = Literal["system", "developer", "user", "assistant", "tool", "notice"]


@dataclass(frozen=True)
class Span:
    """Where one message sits inside an assistant segment's tokens."""

    start: int
    end: int
    channel: str | None
    is_tool_call: bool


@dataclass
class Segment:
    """A run of tokens that entered the conversation together."""

    kind: SegmentKind
    tokens: list[int]
    turn: int
    spans: tuple[Span, ...] = ()  # assistant segments only

    def visible_tokens(self, drop_analysis: bool) -> list[int]:
        """The tokens to render, without analysis messages when `drop_analysis`."""
        if not drop_analysis or not any(s.channel == "analysis" and not s.is_tool_call for s in self.spans):
            return self.tokens
        out: list[int] = []
        cursor = 0
        for span in self.spans:
            if span.channel == "analysis" and not span.is_tool_call:
                out.extend(self.tokens[cursor:span.start])
                cursor = span.end
        out.extend(self.tokens[cursor:])
        return out


@dataclass
class Conversation:
    """Segments in order, plus which turns have ended with a final answer."""

    codec: HarmonyCodec
    segments: list[Segment] = field(default_factory=list)
    turn: int = 0
    finished_turns: set[int] = field(default_factory=set)

    # ------------------------------------------------------------------ building

    def add_system(self, tokens: Sequence[int]) -> None:
        self.segments.append(Segment("system", list(tokens), self.turn))

    def add_developer(self, tokens: Sequence[int]) -> None:
        self.segments.append(Segment("developer", list(tokens), self.turn))

    def add_user(self, text: str) -> None:
        """A user message opens a new turn."""
        self.turn += 1
        self.segments.append(Segment("user", self.codec.render_user(text), self.turn))

    def add_tool_result(self, recipient: str, text: str) -> None:
        self.segments.append(Segment("tool", self.codec.render_tool_result(recipient, text), self.turn))

    def add_notice(self, text: str) -> None:
        """The agent speaking to the model (a format error, a repeated call, a compaction).

        Rendered as a developer-role message: repository text only ever enters
        as tool or user content with special tokens disallowed, so no file can
        produce one, however exactly it copies the wording. A notice does not
        open a turn.
        """
        self.segments.append(Segment("notice", self.codec.render_developer(text), self.turn))

    def add_own_words(self, text: str) -> None:
        """Text the model wrote itself (its compaction summary), kept as an assistant commentary message."""
        tokens = (list(self.codec.assistant_start) + self.codec.encode_with_specials("<|channel|>commentary<|message|>")
                  + self.codec.encode_text(text) + [END])
        self.segments.append(Segment("assistant", tokens, self.turn))

    def add_completion(self, generated: Sequence[int], messages: Sequence[ParsedMessage], *,
                       clean_length: int | None = None) -> None:
        """Append what the model generated after the prompt's `<|start|>assistant`.

        `clean_length` cuts off anything after the last whole message (the model
        began writing as a tool, say); a message left open at the end is closed
        with `<|end|>` so the history stays well-formed.
        """
        head = list(self.codec.assistant_start)
        kept = list(generated[:clean_length] if clean_length is not None else generated)
        if kept and kept[-1] in (RETURN, END, CALL):
            kept[-1:] = self.codec.history_terminator(kept[-1])
        else:
            kept += self.codec.history_terminator(None)
        offset = len(head)
        # The first message's `<|start|>assistant` is the prompt's head: it belongs to that span.
        spans = tuple(Span(offset + m.start if m.start else 0, offset + min(m.end, len(kept)),
                           m.header.channel, m.is_tool_call)
                      for m in messages if m.start < len(kept))
        self.segments.append(Segment("assistant", head + kept, self.turn, spans))
        if any(m.header.channel == "final" and not m.is_tool_call and m.start < len(kept) for m in messages):
            self.finished_turns.add(self.turn)

    # ------------------------------------------------------------------ rendering

    def prompt(self) -> list[int]:
        """Every segment's tokens, old turns without their reasoning, then `<|start|>assistant`."""
        tokens: list[int] = []
        for segment in self.segments:
            tokens.extend(segment.visible_tokens(drop_analysis=segment.turn in self.finished_turns
                                                 and segment.turn < self.turn))
        tokens.extend(self.codec.assistant_start)
        return tokens
