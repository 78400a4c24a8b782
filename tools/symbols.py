"""find_symbol: where a name is defined and used, from the repo map's tree-sitter index."""

from __future__ import annotations

from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.files import repo_files
from gptoss_agent.tools.registry import tool
from gptoss_agent.tools.repomap import build_index, find_symbol as lookup


@tool("functions.find_symbol")
def find_symbol(ctx: ToolContext, name: str) -> ToolResult:
    """Find where a class, function or method is defined (with its signature) and which files use it.

    Args:
        name: the symbol's name, e.g. "Parser" or "parse_args"
    """
    index = build_index(ctx.workspace, repo_files(ctx.workspace))
    text = lookup(index, ctx.workspace, name.strip())
    return ToolResult(not text.startswith("no definition or use"), text)
