"""Front-ends talk to the runtime only: no module under agent/frontends/ imports a tool module.

Each path from a front-end straight into a tool was a second place where the
trust boundary had to hold (the TUI's /diff is how a hostile `diff.external`
once ran on the host); slash commands and subcommands go through
agent/operations.py and the runtime instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

FRONTENDS = Path(__file__).resolve().parents[2] / "agent" / "frontends"


def _tool_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and ast.unparse(block.test).endswith("TYPE_CHECKING") for node in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [f"{path.relative_to(FRONTENDS.parent.parent)}:{node.lineno} {name}" for name in names
                  if name == "gptoss_agent.tools" or name.startswith("gptoss_agent.tools.")]
    return found


def test_no_front_end_imports_a_tool_module():
    modules = sorted(FRONTENDS.rglob("*.py"))
    assert len(modules) > 10  # the folder is where this test thinks it is
    assert [hit for module in modules for hit in _tool_imports(module)] == []
