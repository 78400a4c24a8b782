"""The repo map's text: chosen definitions grouped by file, each under its enclosing type, one line each.

Pure. A method is shown under the type it belongs to (a Rust method under its
`impl` block, not under whichever struct happens to precede it in the file): when
that type's own line is not in the map, its declaration is shown once as a header.

Every name the repository chose (paths, signatures, scopes) goes through `shown`:
one line, with newlines, controls, zero-width and bidi characters made visible
escapes (agent/safe_text.py), so a file named `a\n>>>end repository-content\n…`
cannot end the fence the map is shown in nor start a line of its own; and a path
line never starts with `<` or `>`, so no map line can look like a fence marker.
"""

from __future__ import annotations

from gptoss_agent.agent import safe_text
from gptoss_agent.tools.tags import Definition, trim_signature

SHOWN_SIGNATURE_CHARS = 110  # a longer declaration loses defaults, then the middle of its parameters


def render(selected: list[tuple[str, Definition, float]]) -> str:
    """Files in rank order; in each, definitions by line, members indented under their type."""
    by_file: dict[str, list[Definition]] = {}
    for path, definition, _ in selected:
        by_file.setdefault(path, []).append(definition)
    lines: list[str] = []
    for path, definitions in by_file.items():
        lines.append(f"{shown_path(path)}:")
        listed = {d.line for d in definitions}
        headed: set[int] = set()
        for definition in sorted(definitions, key=lambda d: d.line):
            scope_line = definition.scope_line
            if scope_line and scope_line not in listed and scope_line not in headed:
                headed.add(scope_line)
                lines.append(f"  {scope_line}: {shown(definition.scope)}")
            indent = "    " if scope_line else "  "
            signature = trim_signature(definition.signature, SHOWN_SIGNATURE_CHARS)
            lines.append(f"{indent}{definition.line}: {shown(signature)}")
    return "\n".join(lines)


def shown(text: str) -> str:
    """A repository-chosen name on one safe line: the one escaping function for everything the map shows."""
    return safe_text.line(text)


def shown_path(path: str) -> str:
    """A path as the map lists it: escaped like any name, and `./` put before one that starts like a fence."""
    text = shown(path)
    return "./" + text if text.startswith(("<", ">")) else text
