"""Conversation pieces ⇄ gpt-oss tokens, with the vocabulary found on disk.

Rendering goes through openai-harmony, the reference renderer, one message at
a time, so the conversation can append tokens without re-rendering what the
KV cache already holds. Untrusted text (files, tool output, user input) is
always encoded with special tokens disallowed: a file containing
`<|end|><|start|>system` becomes plain text, never control tokens.

Untrusted text is also hostile to the tokenizer itself: one long run without a
natural split (a million `=`) makes openai-harmony panic and costs time
quadratic in the run. Such text is encoded in bounded chunks
(`agent.token_chunks`), and every call into the native encoder is guarded
(`agent.native_guard`), so the worst a file can do is cost linear time and a
token or so of exactness per long run.
"""

from __future__ import annotations

import datetime as _dt
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from gptoss_agent.agent.model import vocab
from gptoss_agent.agent.model.native_guard import NativeCodeError, guarded
from gptoss_agent.agent.model.token_chunks import chunks, needs_chunking
from gptoss_agent.agent.model.harmony_stream import CALL, END, MESSAGE, RETURN, START, HarmonyStreamParser, Header
from gptoss_agent.agent.choices import REASONING_EFFORTS, ReasoningEffort
from gptoss_agent.agent.types import ToolDeclaration

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken
    from openai_harmony import HarmonyEncoding

SYSTEM_NAMESPACES = ("repo_browser", "container")
_SPECIAL_TEXT = re.compile(r"(<\|[A-Za-z0-9_]{1,32}\|>)")
# Stands in for hostile developer instructions while the library renders the
# message around them: lowercase letters only, so it is one o200k piece that
# never merges with the newlines on either side.
_SLOT = "gptossagentinstructionsslot"
_EFFORTS = {effort: effort.capitalize() for effort in REASONING_EFFORTS}  # openai_harmony's names


class HarmonyCodec:
    """Renders messages to token ids and decodes token ids, for one local vocabulary."""

    def __init__(self, encoding: "HarmonyEncoding", vocab_dir: Path) -> None:
        self._encoding = encoding
        self._vocab_dir = vocab_dir
        self._bytes_cache: dict[int, bytes] = {}
        self.assistant_start: tuple[int, ...] = tuple(self.encode_with_specials("<|start|>assistant"))

    @classmethod
    def load(cls, vocab_dir: Path) -> "HarmonyCodec":
        """Build the codec from a directory holding the verified `o200k_base.tiktoken`."""
        return cls(vocab.load_harmony(vocab_dir), vocab_dir)

    # ---------------------------------------------------------------- tokens

    @cached_property
    def tiktoken(self) -> "tiktoken.Encoding":
        """The same vocabulary as a tiktoken encoding, for callers that want tiktoken's API."""
        return vocab.load_tiktoken(self._vocab_dir)

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (cached: this runs once per sampled token)."""
        cached = self._bytes_cache.get(token)
        if cached is None:
            cached = bytes(guarded("decoding a token", self._encoding._inner.decode_bytes, [token]))
            self._bytes_cache[token] = cached
        return cached

    def encode_text(self, text: str) -> list[int]:
        """Untrusted text → tokens; special-token text stays text.

        Linear in the length of the text whatever it holds: see
        `agent.token_chunks` for where it may differ from one whole-text call.
        """
        tokens: list[int] = []
        for chunk in chunks(text):
            tokens.extend(self._encode_plain(chunk.text))
        return tokens

    def encode_with_specials(self, text: str) -> list[int]:
        """Harmony text whose `<|…|>` markers are meant as control tokens (replay files, server output)."""
        specials = self._special_ids
        tokens: list[int] = []
        plain: list[str] = []  # text between known special tokens (`<|nope|>` is text)
        for part in _SPECIAL_TEXT.split(text):
            special = specials.get(part)
            if special is None:
                plain.append(part)
                continue
            tokens.extend(self.encode_text("".join(plain)))
            plain.clear()
            tokens.append(special)
        tokens.extend(self.encode_text("".join(plain)))
        return tokens

    def decode(self, tokens: Sequence[int]) -> str:
        return guarded("decoding tokens", self._encoding.decode, list(tokens))

    def count(self, text: str) -> int:
        """Token count of ordinary text, in linear time; never raises.

        Exact for text a person writes. A run of more than `MAX_RUN`
        characters without a natural split (one line of a million `=`) is
        counted in bounded pieces, which may differ by a token per piece from
        the unbounded count. Should the native encoder still fail on a piece,
        that piece counts as its UTF-8 length, an upper bound (every token
        holds at least one byte), so budgets stay safe.

        openai-harmony's encoder is tiktoken's BPE over the same verified file
        (a test holds the two to the same ids), and it is already loaded, so
        counting never pays for building the tiktoken tables a second time.
        """
        total = 0
        for chunk in chunks(text):
            try:
                total += len(self._encode_plain(chunk.text))
            except NativeCodeError:
                total += len(chunk.text.encode("utf-8", "surrogatepass"))
        return total

    @cached_property
    def _special_ids(self) -> dict[str, int]:
        return vocab.harmony_special_tokens()

    def _encode_plain(self, text: str) -> list[int]:
        return guarded("encoding text", self._encoding.encode, text, allowed_special=set(), disallowed_special=())

    def parser(self, on_text: Callable[[Header, str], None] | None = None) -> HarmonyStreamParser:
        """A stream parser for a completion that follows `<|start|>assistant`."""
        return HarmonyStreamParser(self.token_bytes, on_text=on_text)

    # ---------------------------------------------------------------- rendering

    def render_system(self, *, reasoning: ReasoningEffort = "medium", date: _dt.date | None = None,
                      tools: Sequence[ToolDeclaration] = ()) -> list[int]:
        """The system message: identity, date, reasoning effort, built-in tool namespaces."""
        from openai_harmony import (Message, ReasoningEffort as Effort, RenderOptions, Role,
                                    SystemContent, ToolNamespaceConfig)

        content = (SystemContent.new()
                   .with_reasoning_effort(Effort(_EFFORTS[reasoning]))
                   .with_conversation_start_date((date or _dt.date.today()).isoformat()))
        for namespace, members in _by_namespace(tools, SYSTEM_NAMESPACES).items():
            content = content.with_tools(ToolNamespaceConfig(
                name=namespace, description=None, tools=[_describe(t) for t in members]))
        has_functions = any(t.namespace == "functions" for t in tools)
        return guarded("rendering the system message", self._encoding.render,
                       Message.from_role_and_content(Role.SYSTEM, content),
                       RenderOptions(conversation_has_function_tools=has_functions))

    def render_developer(self, instructions: str, tools: Sequence[ToolDeclaration] = ()) -> list[int]:
        """The developer message: our instructions and the `functions` namespace.

        Instructions that hold a run the tokenizer cannot take whole (an
        AGENTS.md of a million spaces) are rendered around a placeholder and
        encoded in bounded chunks in its place.
        """
        if not needs_chunking(instructions):
            return self._render_developer(instructions, tools)
        around = self._render_developer(_SLOT, tools)
        slot = self._encode_plain(_SLOT)
        at = _find(around, slot)
        return around[:at] + self.encode_text(instructions) + around[at + len(slot):]

    def _render_developer(self, instructions: str, tools: Sequence[ToolDeclaration]) -> list[int]:
        from openai_harmony import DeveloperContent, Message, Role

        content = DeveloperContent.new().with_instructions(instructions)
        functions = [_describe(t) for t in tools if t.namespace == "functions"]
        if functions:
            content = content.with_function_tools(functions)
        return guarded("rendering the developer message", self._encoding.render,
                       Message.from_role_and_content(Role.DEVELOPER, content))

    def render_user(self, text: str) -> list[int]:
        """A user message; its text is untrusted (task files, notices quoting files)."""
        from openai_harmony import Message, Role

        return self._with_content(Message.from_role_and_content(Role.USER, ""), text)

    def render_tool_result(self, recipient: str, text: str) -> list[int]:
        """A tool's answer: `<|start|>{tool} to=assistant<|channel|>commentary<|message|>…<|end|>`."""
        from openai_harmony import Author, Message, Role

        message = (Message.from_author_and_content(Author.new(Role.TOOL, recipient), "")
                   .with_recipient("assistant").with_channel("commentary"))
        return self._with_content(message, text)

    def _with_content(self, empty_message, text: str) -> list[int]:
        """The library renders the header of a message with no content; the content is
        encoded here, in bounded chunks, and placed between `<|message|>` and `<|end|>`
        (the same tokens the library gives for text it can take whole: a test holds them equal)."""
        frame = guarded("rendering a message", self._encoding.render, empty_message)
        if frame[-2:] != [MESSAGE, END]:  # pragma: no cover - a library change we would want to know about
            raise NativeCodeError(f"unexpected message frame from openai-harmony: {self.decode(frame)!r}")
        return frame[:-1] + self.encode_text(text) + [END]

    @staticmethod
    def history_terminator(stop_token: int | None) -> list[int]:
        """How a sampled message is closed in history: `<|return|>` is stored as `<|end|>`."""
        return [CALL] if stop_token == CALL else [END]

def _describe(tool: ToolDeclaration):
    from openai_harmony import ToolDescription

    return ToolDescription.new(tool.name, tool.description, tool.parameters)


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int:
    for at in range(len(haystack) - len(needle) + 1):
        if list(haystack[at:at + len(needle)]) == list(needle):
            return at
    raise NativeCodeError("the instructions placeholder vanished from the rendered developer message")


def _by_namespace(tools: Sequence[ToolDeclaration], wanted: Sequence[str]) -> dict[str, list[ToolDeclaration]]:
    grouped: dict[str, list[ToolDeclaration]] = {}
    for tool in tools:
        if tool.namespace in wanted:
            grouped.setdefault(tool.namespace, []).append(tool)
    return grouped


__all__ = ["HarmonyCodec", "START", "END", "CALL", "RETURN"]
