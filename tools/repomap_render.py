"""The repo map's text: chosen definitions grouped by file, each under its enclosing type, one line each.

Pure. Members the budget cannot show in full are named on one `other members:` line under their type.
A method is shown under the type it belongs to (a Rust method under its
`impl` block, not under whichever struct happens to precede it in the file): when
that type's own line is not in the map, its declaration is shown once as a header.

Every name the repository chose (paths, signatures, scopes) goes through `shown`:
one line, with newlines, controls, zero-width and bidi characters made visible
escapes (agent/safe_text.py), so a file named `a\n>>>end repository-content\n…`
cannot end the fence the map is shown in nor start a line of its own; and a path
line never starts with `<` or `>`, so no map line can look like a fence marker.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

from gptoss_agent.agent import safe_text
from gptoss_agent.tools.tags import Definition, trim_signature

SHOWN_SIGNATURE_CHARS = 110  # a longer declaration loses defaults, then the middle of its parameters


def render(selected: list[tuple[str, Definition, float]], named: list[tuple[str, Definition]] = ()) -> str:
    """Files in rank order; in each, definitions by line, members indented under their type.

    `named` are members to show by name only, most important first: after the members of each type shown
    in full, one `other members:` line names them. A name costs two tokens where a declaration line costs
    fifteen, so the map can say what many more types offer (`at`, `contains`, `patch`); the reader opens
    the file for the signatures."""
    by_file: dict[str, list[Definition]] = {}
    for path, definition, _ in selected:
        by_file.setdefault(path, []).append(definition)
    names_of: dict[str, dict[int, list[Definition]]] = {}  # file → type's line → members named only
    for path, definition in named:
        by_file.setdefault(path, [])
        names_of.setdefault(path, {}).setdefault(definition.scope_line, []).append(definition)
    lines: list[str] = []
    for path, definitions in by_file.items():
        lines.append(f"{shown_path(path)}:")
        listed = {d.line for d in definitions}
        rows: list[tuple[tuple[int, int], str]] = []  # ((line, order within the line), text)
        headers: dict[int, str] = {}
        last: dict[int, int] = {}  # a type's line → the last line shown for it
        in_full: dict[int, set[str]] = defaultdict(set)
        for definition in definitions:
            scope_line = definition.scope_line
            if definition.kind in ("class", "module") and definition.scope.startswith("module "):
                scope_line = 0  # `module Rack` around `class Builder` only namespaces it: the path says as much
            if scope_line and scope_line not in listed:
                headers.setdefault(scope_line, definition.scope)
            indent = "    " if scope_line else "  "
            signature = trim_signature(definition.signature, SHOWN_SIGNATURE_CHARS)
            rows.append(((definition.line, 1), f"{indent}{definition.line}: {shown(signature)}"))
            if scope_line:
                last[scope_line] = max(last.get(scope_line, scope_line), definition.line)
                in_full[scope_line].add(definition.name)
        for scope_line, members in names_of.get(path, {}).items():
            names = list(dict.fromkeys(d.name for d in members if d.name not in in_full[scope_line]))
            if not names:
                continue
            if scope_line not in listed:
                headers.setdefault(scope_line, members[0].scope)
            rows.append(((last.get(scope_line, scope_line), 2),
                         "    other members: " + ", ".join(shown(name) for name in names)))
        rows.extend(((line, 0), f"  {line}: {shown(scope)}") for line, scope in headers.items())
        lines.extend(text for _, text in sorted(rows, key=lambda row: row[0]))
    return "\n".join(lines)


def shown(text: str) -> str:
    """A repository-chosen name on one safe line: the one escaping function for everything the map shows."""
    return _shown_short(text) if len(text) <= 256 else safe_text.line(text)


@lru_cache(maxsize=65536)
def _shown_short(text: str) -> str:
    """Cached for ordinary names and paths: the budget search draws the same rows again at every step. A long
    one (a repository can make a name of any size) is escaped each time rather than kept for the process."""
    return safe_text.line(text)


def shown_path(path: str) -> str:
    """A path as the map lists it: escaped like any name, and `./` put before one that starts like a fence."""
    text = shown(path)
    return "./" + text if text.startswith(("<", ">")) else text


EXPORTS_LINE = "  exports: "


def render_exports(exports: list[tuple[str, str]]) -> str:
    """Each entry file's declared public names on one `exports:` line, files in the order of their first
    (most important) name, names in the order given and apart by a space: `, ` would cost a token more each,
    and a name list reads as plainly without it."""
    by_file: dict[str, list[str]] = {}
    for path, name in exports:
        by_file.setdefault(path, []).append(name)
    return "\n".join(f"{shown_path(path)}:\n{EXPORTS_LINE}" + " ".join(shown(name) for name in names)
                     for path, names in by_file.items())
