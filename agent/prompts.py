"""Prompt texts live as files under prompts/; this reads them."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of prompts/NAME.md."""
    return files("gptoss_agent.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8").strip()


def render(prompt: str, /, **values: object) -> str:
    """prompts/PROMPT.md with its {placeholders} filled."""
    return load(prompt).format(**values)
