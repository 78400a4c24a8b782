"""The repo map's text: chosen definitions grouped by file, each under its enclosing type, one line each.

Pure. A method is shown under the type it belongs to (a Rust method under its
`impl` block, not under whichever struct happens to precede it in the file): when
that type's own line is not in the map, its declaration is shown once as a header.
"""

from __future__ import annotations

from tools.tags import Definition


def render(selected: list[tuple[str, Definition, float]]) -> str:
    """Files in rank order; in each, definitions by line, members indented under their type."""
    by_file: dict[str, list[Definition]] = {}
    for path, definition, _ in selected:
        by_file.setdefault(path, []).append(definition)
    lines: list[str] = []
    for path, definitions in by_file.items():
        lines.append(f"{path}:")
        shown = {d.line for d in definitions}
        headed: set[int] = set()
        for definition in sorted(definitions, key=lambda d: d.line):
            scope_line = definition.scope_line
            if scope_line and scope_line not in shown and scope_line not in headed:
                headed.add(scope_line)
                lines.append(f"  {scope_line}: {definition.scope}")
            indent = "    " if scope_line else "  "
            lines.append(f"{indent}{definition.line}: {definition.signature}")
    return "\n".join(lines)
