"""A tolerant, streaming parser for gpt-oss Harmony output, at the token level.

openai-harmony's `StreamableParser` raises on output that real models produce
(a missing `<|message|>`, a duplicated `to=`, a stray header); one exception
there would end an agent run. This parser never raises: it recovers the
intended messages and records every repair it made, so the loop can either act
on the intended call or hand the model a precise format error.

It is pure: token ids in, messages and streamed text out. The only outside
knowledge it needs, the bytes of an ordinary token, is injected.

The model's output is untrusted, so the parser's work stays linear in it: no
buffer is rescanned per token, and repair notes are few and short however
many tokens ask for one.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable

# Harmony special token ids (o200k_harmony).
RETURN = 200_002
CONSTRAIN = 200_003
CHANNEL = 200_005
START = 200_006
END = 200_007
MESSAGE = 200_008
CALL = 200_012
ENDOFTEXT = 199_999
FIRST_SPECIAL = 199_998

# The tokens a step stops sampling at (the loop passes them to the backend): an answer, a tool call, end of text.
STOP_TOKENS = frozenset({RETURN, CALL, ENDOFTEXT})
_TERMINATORS = {END: "end", CALL: "call", RETURN: "return"}
_ROLES = frozenset({"assistant", "user", "system", "developer"})

MAX_REPAIRS = 50
"""Repair notes kept per message and per stream; later ones are counted, not listed."""
_NOTE_CHARS = 200
_AUTHOR_PROBE = 16  # bytes of a header enough to tell `assistant` from an impersonation


class _Notes(list):
    """A list of repair notes that stays small whatever the model writes."""

    def append(self, note: str) -> None:
        if len(self) < MAX_REPAIRS:
            super().append(note if len(note) <= _NOTE_CHARS else note[:_NOTE_CHARS] + "…")
        elif len(self) == MAX_REPAIRS:
            super().append("… further repairs not listed")

    def extend(self, notes) -> None:
        for note in notes:
            self.append(note)


# In header text, the two special tokens that may appear inside a header.
_CHANNEL_MARK = "<|channel|>"
_CONSTRAIN_MARK = "<|constrain|>"


@dataclass(frozen=True)
class Header:
    """What a message header says: who wrote it, on which channel, to whom, in what format."""

    role: str = "assistant"
    name: str | None = None  # the tool's name when role == "tool"
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class ParsedMessage:
    """One Harmony message as recovered from the stream.

    `terminator` is how it ended: "end", "call", "return", "start" (the next
    message began without `<|end|>`), or "eos" (the stream stopped inside it).
    `repairs` lists what was wrong with it and how it was read anyway.
    """

    header: Header
    content: str
    terminator: str
    repairs: tuple[str, ...] = ()
    start: int = 0  # token offset in the stream where the message begins (its `<|start|>`, if any)
    end: int = 0  # token offset just past its terminator

    @property
    def channel(self) -> str | None:
        return self.header.channel

    @property
    def recipient(self) -> str | None:
        return self.header.recipient

    @property
    def is_tool_call(self) -> bool:
        """Addressed to a tool, not back to the assistant or the user."""
        r = self.header.recipient
        return self.header.role == "assistant" and bool(r) and r not in ("assistant", "user", "all")


class _State(Enum):
    EXPECT_START = "expect_start"
    HEADER = "header"
    CONTENT = "content"


@dataclass
class _Open:
    """The message being read: header text so far, then its content."""

    role_known: bool  # True when the prompt already supplied `<|start|>assistant`
    start: int = 0
    header_text: list[str] = field(default_factory=list)
    header_bytes: bytearray = field(default_factory=bytearray)
    header: Header | None = None
    content: list[str] = field(default_factory=list)
    decoder: codecs.IncrementalDecoder | None = None
    repairs: list[str] = field(default_factory=_Notes)
    flagged_foreign: bool = False
    author_known: bool = False  # the header's first word was checked
    author_probe: bytearray = field(default_factory=bytearray)
    role_text: str | None = None  # header text before the first `<|channel|>`, once it came

    def flush_header_bytes(self) -> None:
        if self.header_bytes:
            self.header_text.append(self.header_bytes.decode("utf-8", errors="replace"))
            self.header_bytes.clear()


class HarmonyStreamParser:
    """Feed token ids one at a time; read back messages and streamed text.

    `feed` returns True when generation should stop here: after `<|call|>` or
    `<|return|>`, after a tool call closed by a plain `<|end|>` (else the model
    goes on to invent the tool's answer), or when the model starts writing a
    message as someone other than the assistant.
    """

    def __init__(self, token_bytes: Callable[[int], bytes], *, after_assistant_start: bool = True,
                 on_text: Callable[[Header, str], None] | None = None) -> None:
        self._token_bytes = token_bytes
        self._on_text = on_text
        self.messages: list[ParsedMessage] = []
        self.stream_repairs: list[str] = _Notes()
        self.tokens_consumed = 0
        self.clean_length = 0  # tokens up to and including the last message terminator
        self.stopped_on: int | None = None
        self._open: _Open | None = _Open(role_known=True) if after_assistant_start else None
        self._state = _State.HEADER if after_assistant_start else _State.EXPECT_START

    # ------------------------------------------------------------------ feeding

    def feed(self, token: int) -> bool:
        """Consume one token; True means: stop generating now."""
        self.tokens_consumed += 1
        if token >= FIRST_SPECIAL:
            return self._special(token)
        state = self._state
        if state is _State.CONTENT:
            text = self._open.decoder.decode(self._token_bytes(token))
            if text:
                self._open.content.append(text)
                if self._on_text is not None:
                    self._on_text(self._open.header, text)
            return False
        if state is _State.HEADER:
            raw = self._token_bytes(token)
            self._open.header_bytes += raw
            return self._foreign_author(raw)
        # EXPECT_START: whitespace between messages is harmless; other text means
        # the model skipped `<|start|>assistant`.
        raw = self._token_bytes(token)
        if raw.strip():
            self._begin(role_known=True, repair="text outside a message: read as a new assistant message")
            self._open.header_bytes += raw
        return False

    def feed_all(self, tokens: Iterable[int]) -> "HarmonyStreamParser":
        """Feed a whole sequence (tests, replays); ignores stop requests."""
        for token in tokens:
            self.feed(token)
        return self

    def finish(self) -> list[ParsedMessage]:
        """End of stream: close whatever is open (as "eos") and return all messages."""
        if self._open is not None:
            if self._state is _State.CONTENT:
                self._close("eos")
            elif self._is_bare_generation_prompt():
                self._open = None  # a rendered prompt ending in `<|start|>assistant`
            else:
                self._close_headerless("eos")
        self._state = _State.EXPECT_START
        return self.messages

    @property
    def current_header(self) -> Header | None:
        """The header of the message now streaming, if its content has begun."""
        return self._open.header if self._open is not None and self._state is _State.CONTENT else None

    # ------------------------------------------------------------------ specials

    def _special(self, token: int) -> bool:
        state = self._state
        if token == MESSAGE:
            if state is _State.HEADER:
                self._start_content()
            elif state is _State.EXPECT_START:
                self._begin(role_known=True, repair="`<|message|>` without a header: read as an assistant message")
                self._start_content()
            else:
                self._literal("<|message|>", "`<|message|>` inside content kept as text")
            return False
        if token in _TERMINATORS:
            kind = _TERMINATORS[token]
            if state is _State.CONTENT:
                message = self._close(kind)
            elif state is _State.HEADER:
                message = self._close_headerless(kind)
            else:
                message = None
                self.stream_repairs.append(f"stray {self._name(token)} between messages ignored")
            if kind != "end":
                self.stopped_on = token
                return True
            return message is not None and message.is_tool_call
        if token == START:
            if state is _State.CONTENT:
                self._close("start", repair="message not closed by `<|end|>` before `<|start|>`")
            elif state is _State.HEADER:
                self.stream_repairs.append(f"header {self._header_excerpt()!r} abandoned by `<|start|>`")
            self._begin(role_known=False)
            return False
        if token == CHANNEL:
            if state is _State.HEADER:
                opened = self._open
                opened.flush_header_bytes()
                if opened.role_text is not None:
                    opened.repairs.append(f"second `<|channel|>` in header; ignored {self._header_excerpt()!r}")
                else:
                    opened.role_text = "".join(opened.header_text)
                opened.header_text = [opened.role_text, _CHANNEL_MARK]
            else:
                if state is _State.CONTENT:
                    self._close("start", repair="`<|channel|>` inside content: read as the start of a new message")
                self._begin(role_known=True, repair="`<|channel|>` without `<|start|>assistant`")
                self._open.role_text = ""
                self._open.header_text.append(_CHANNEL_MARK)
            return False
        if token == CONSTRAIN:
            if state is _State.HEADER:
                self._open.flush_header_bytes()
                self._open.header_text.append(" " + _CONSTRAIN_MARK)
            else:
                self._literal("<|constrain|>", "`<|constrain|>` outside a header kept as text")
            return False
        if token == ENDOFTEXT:
            self.stopped_on = token
            return True
        self.stream_repairs.append(f"unexpected special token {token} ignored")
        return False

    # ------------------------------------------------------------------ message lifecycle

    def _begin(self, *, role_known: bool, repair: str | None = None) -> None:
        self._open = _Open(role_known=role_known, start=self.tokens_consumed - 1)
        if repair:
            self._open.repairs.append(repair)
        self._state = _State.HEADER

    def _start_content(self) -> None:
        opened = self._open
        opened.flush_header_bytes()
        opened.header = _parse_header("".join(opened.header_text), opened.role_known, opened.repairs)
        opened.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._state = _State.CONTENT

    def _close(self, terminator: str, repair: str | None = None) -> ParsedMessage:
        opened = self._open
        tail = opened.decoder.decode(b"", final=True)
        if tail:
            opened.content.append(tail)
            if self._on_text is not None:
                self._on_text(opened.header, tail)
        if repair:
            opened.repairs.append(repair)
        return self._emit(opened.header, "".join(opened.content), terminator)

    def _close_headerless(self, terminator: str) -> ParsedMessage:
        """A message that ended before `<|message|>`: its header text is its content."""
        opened = self._open
        opened.flush_header_bytes()
        header, content = _parse_header_without_message("".join(opened.header_text), opened.role_known)
        opened.repairs.append("missing `<|message|>`: text after the header read as content")
        if content and self._on_text is not None:
            self._on_text(header, content)
        return self._emit(header, content, terminator)

    def _emit(self, header: Header, content: str, terminator: str) -> ParsedMessage:
        # A message cut short by the next `<|start|>` ends before that token.
        end = self.tokens_consumed - 1 if terminator == "start" else self.tokens_consumed
        message = ParsedMessage(header, content, terminator, tuple(self._open.repairs), self._open.start, end)
        self.messages.append(message)
        self._open = None
        self._state = _State.EXPECT_START
        if terminator != "eos":
            self.clean_length = end
        return message

    # ------------------------------------------------------------------ helpers

    def _foreign_author(self, raw: bytes) -> bool:
        """After `<|start|>`, a header not written by the assistant means the model is
        impersonating a tool or the user: ask to stop (once), keep parsing.

        Only the first few bytes after any leading whitespace are looked at, once,
        so a header that never ends costs nothing per token."""
        opened = self._open
        if opened.role_known or opened.header_text or opened.author_known:
            return False
        if not opened.author_probe:
            raw = raw.lstrip()
        opened.author_probe += raw[:_AUTHOR_PROBE]
        head = bytes(opened.author_probe[:_AUTHOR_PROBE])
        if not head or b"assistant".startswith(head):
            return False  # not enough to tell yet
        opened.author_known = True
        if head.startswith(b"assistant"):
            return False
        opened.flagged_foreign = True
        self.stream_repairs.append(f"model began a message as {head.decode('utf-8', 'replace')!r}")
        return True

    def _is_bare_generation_prompt(self) -> bool:
        opened = self._open
        opened.flush_header_bytes()
        words = "".join(opened.header_text).split()
        return not words or (not opened.role_known and words == ["assistant"])

    def _literal(self, text: str, repair: str) -> None:
        self._open.content.append(text)
        self._open.repairs.append(repair)

    def _header_excerpt(self, limit: int = 80) -> str:
        """The start of the header read so far, for a repair note (bounded, however long the header)."""
        self._open.flush_header_bytes()
        out: list[str] = []
        size = 0
        for part in self._open.header_text:
            out.append(part[:limit - size])
            size += len(out[-1])
            if size >= limit:
                return "".join(out) + "…"
        return "".join(out)

    @staticmethod
    def _name(token: int) -> str:
        return {END: "`<|end|>`", CALL: "`<|call|>`", RETURN: "`<|return|>`"}.get(token, str(token))


# ---------------------------------------------------------------------- header grammar

_TO = re.compile(r"^to=(\S+)$")


def _words(text: str) -> list[str]:
    return text.replace(_CONSTRAIN_MARK, " " + _CONSTRAIN_MARK + " ").split()


def _parse_header(text: str, role_known: bool, repairs: list[str]) -> Header:
    """Parse `ROLE [to=R] <|channel|>CHANNEL [to=R] [<|constrain|>]TYPE` in any order the model uses."""
    role_part, _, channel_part = text.partition(_CHANNEL_MARK)
    role, name = "assistant", None
    role_words = _words(role_part)
    if not role_known and role_words and not role_words[0].startswith("to="):
        role, name = _author(role_words.pop(0))
    recipients: list[str] = []
    content_type = None
    channel = None
    channel_words = _words(channel_part)
    if _CHANNEL_MARK in text and channel_words and not channel_words[0].startswith(("to=", _CONSTRAIN_MARK)):
        channel = channel_words.pop(0)
    pending_constrain = False
    for word in role_words + channel_words:
        match = _TO.match(word)
        if match:
            recipients.append(match.group(1))
        elif word == _CONSTRAIN_MARK:
            pending_constrain = True
        elif content_type is None:
            content_type = (_CONSTRAIN_MARK + word) if pending_constrain else word
            pending_constrain = False
        else:
            repairs.append(f"extra header word {word!r} ignored")
    if pending_constrain and content_type is None:
        repairs.append("`<|constrain|>` without a type ignored")
    recipient = None
    if recipients:
        recipient = recipients[0]
        if any(r != recipient for r in recipients[1:]):
            repairs.append(f"conflicting recipients {recipients}: using {recipient!r}")
        elif len(recipients) > 1:
            repairs.append(f"`to={recipient}` repeated in header")
    return Header(role=role, name=name, channel=channel, recipient=recipient, content_type=content_type)


def _parse_header_without_message(text: str, role_known: bool) -> tuple[Header, str]:
    """Header and content of a message whose `<|message|>` never came."""
    role_part, has_channel, channel_part = text.partition(_CHANNEL_MARK)
    if not has_channel:
        if role_known:
            return Header(role="assistant"), role_part.strip()
        words = role_part.split(None, 1)
        role, name = _author(words[0]) if words else ("assistant", None)
        return Header(role=role, name=name), (words[1].strip() if len(words) > 1 else "")
    role, name = "assistant", None
    role_words = role_part.split()
    if not role_known and role_words and not role_words[0].startswith("to="):
        role, name = _author(role_words.pop(0))
    recipient = next((m.group(1) for w in role_words if (m := _TO.match(w))), None)
    rest = channel_part.lstrip()
    channel, _, rest = rest.partition(" ")
    channel = channel or None
    rest = rest.lstrip()
    while rest.startswith("to="):
        target, _, rest = rest.partition(" ")
        recipient = recipient or target[3:]
        rest = rest.lstrip()
    return Header(role=role, name=name, channel=channel, recipient=recipient), rest.strip()


def _author(word: str) -> tuple[str, str | None]:
    return (word, None) if word in _ROLES else ("tool", word)
