"""Conversation pieces ⇄ gpt-oss tokens, with the vocabulary found on disk.

Rendering goes through openai-harmony, the reference renderer, one message at
a time, so the conversation can append tokens without re-rendering what the
KV cache already holds. Untrusted text (files, tool output, user input) is
always encoded with special tokens disallowed: a file containing
`<|end|><|start|>system` becomes plain text, never control tokens.
"""

from __future__ import annotations

import datetime as _dt
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from agent import vocab
from agent.harmony_stream import CALL, END, RETURN, START, HarmonyStreamParser, Header
from agent.types import ReasoningEffort, ToolDeclaration

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken
    from openai_harmony import HarmonyEncoding

SYSTEM_NAMESPACES = ("repo_browser", "container")
_EFFORTS = {"low": "Low", "medium": "Medium", "high": "High"}


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
            cached = bytes(self._encoding._inner.decode_bytes([token]))
            self._bytes_cache[token] = cached
        return cached

    def encode_text(self, text: str) -> list[int]:
        """Untrusted text → tokens; special-token text stays text."""
        return self._encoding.encode(text, allowed_special=set(), disallowed_special=())

    def encode_with_specials(self, text: str) -> list[int]:
        """Harmony text whose `<|…|>` markers are meant as control tokens (replay files, tests)."""
        return self._encoding.encode(text, allowed_special="all")

    def decode(self, tokens: Sequence[int]) -> str:
        return self._encoding.decode(list(tokens))

    def count(self, text: str) -> int:
        """Exact token count of ordinary text.

        openai-harmony's encoder is tiktoken's BPE over the same verified file
        (a test holds the two to the same ids), and it is already loaded, so
        counting never pays for building the tiktoken tables a second time.
        """
        return len(self.encode_text(text))

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
        return self._encoding.render(Message.from_role_and_content(Role.SYSTEM, content),
                                     RenderOptions(conversation_has_function_tools=has_functions))

    def render_developer(self, instructions: str, tools: Sequence[ToolDeclaration] = ()) -> list[int]:
        """The developer message: our instructions and the `functions` namespace."""
        from openai_harmony import DeveloperContent, Message, Role

        content = DeveloperContent.new().with_instructions(instructions)
        functions = [_describe(t) for t in tools if t.namespace == "functions"]
        if functions:
            content = content.with_function_tools(functions)
        return self._encoding.render(Message.from_role_and_content(Role.DEVELOPER, content))

    def render_user(self, text: str) -> list[int]:
        from openai_harmony import Message, Role

        return self._encoding.render(Message.from_role_and_content(Role.USER, text))

    def render_tool_result(self, recipient: str, text: str) -> list[int]:
        """A tool's answer: `<|start|>{tool} to=assistant<|channel|>commentary<|message|>…<|end|>`."""
        from openai_harmony import Author, Message, Role

        message = (Message.from_author_and_content(Author.new(Role.TOOL, recipient), text)
                   .with_recipient("assistant").with_channel("commentary"))
        return self._encoding.render(message)

    @staticmethod
    def history_terminator(stop_token: int | None) -> list[int]:
        """How a sampled message is closed in history: `<|return|>` is stored as `<|end|>`."""
        return [CALL] if stop_token == CALL else [END]

def _describe(tool: ToolDeclaration):
    from openai_harmony import ToolDescription

    return ToolDescription.new(tool.name, tool.description, tool.parameters)


def _by_namespace(tools: Sequence[ToolDeclaration], wanted: Sequence[str]) -> dict[str, list[ToolDeclaration]]:
    grouped: dict[str, list[ToolDeclaration]] = {}
    for tool in tools:
        if tool.namespace in wanted:
            grouped.setdefault(tool.namespace, []).append(tool)
    return grouped


__all__ = ["HarmonyCodec", "START", "END", "CALL", "RETURN"]
