"""Reading the repository: print_tree, list_dir, open_file, search (the `repo_browser` names).

Everything goes through the workspace jail; large outputs are capped by tokens
with a note saying how to page, never dumped whole.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path

from agent.types import ToolResult
from tools.context import ToolContext
from tools.paths import PathRefused, is_secret, read_regular_file, relative_name, resolve
from tools.registry import tool
from tools.sandbox import run_trusted

OPEN_FILE_TOKEN_BUDGET = 6_000
TREE_ENTRY_LIMIT = 400
_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache", ".tox"}


def repo_files(workspace: Path) -> list[str]:
    """Tracked plus untracked-not-ignored files (what `git ls-files -co --exclude-standard` lists)."""
    if (workspace / ".git").exists():
        done = run_trusted(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=workspace)
        if done.returncode == 0:
            return sorted({p for p in done.stdout.decode("utf-8", "replace").split("\0") if p})
    found = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found.extend(Path(root, f).relative_to(workspace).as_posix() for f in files)
    return sorted(found)


def _jail(ctx: ToolContext, path: str, **kwargs) -> Path:
    return resolve(ctx.workspace, path, allow_secrets=ctx.allow_secrets, **kwargs)


def _nearest(ctx: ToolContext, path: str) -> str:
    names = repo_files(ctx.workspace)
    close = difflib.get_close_matches(path, names, n=3, cutoff=0.5)
    if not close:
        base = Path(path).name
        close = [n for n in names if Path(n).name == base][:3]
    return f" Did you mean: {', '.join(close)}?" if close else ""


@tool("repo_browser.print_tree")
def print_tree(ctx: ToolContext, path: str = "", depth: int = 2) -> ToolResult:
    """Show the repository's files as a tree (tracked and untracked, .gitignore respected).

    Args:
        path: folder to start from, relative to the repository root ("" for the root)
        depth: how many folder levels to show
    """
    try:
        base = _jail(ctx, path)
    except PathRefused as exc:
        return ToolResult.error(str(exc))
    if not base.is_dir():
        return ToolResult.error(f"{path}: not a folder.{_nearest(ctx, path)}")
    prefix = relative_name(ctx.workspace, base)
    prefix = "" if prefix == "." else prefix + "/"
    tree: dict = {}
    hidden: dict[str, int] = {}
    for name in repo_files(ctx.workspace):
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split("/")
        if len(parts) > depth:
            key = "/".join(parts[:depth])
            hidden[key] = hidden.get(key, 0) + 1
            parts = parts[:depth]
            parts[-1] += "/"
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
    lines: list[str] = [prefix or "./"]
    _render(tree, "", lines, hidden, "")
    truncated = len(lines) > TREE_ENTRY_LIMIT
    if truncated:
        lines = lines[:TREE_ENTRY_LIMIT] + [f"… {len(lines) - TREE_ENTRY_LIMIT} more entries; "
                                            "call again with a sub-folder or a smaller depth"]
    return ToolResult(True, "\n".join(lines), truncated=truncated)


def _render(node: dict, indent: str, lines: list[str], hidden: dict[str, int], trail: str) -> None:
    for name in sorted(node, key=lambda n: (not node[n], n)):
        key = (trail + name).rstrip("/")
        extra = f"  ({hidden[key]} files)" if name.endswith("/") and key in hidden else ""
        lines.append(f"{indent}{name}{'/' if node[name] and not name.endswith('/') else ''}{extra}")
        if node[name]:
            _render(node[name], indent + "  ", lines, hidden, trail + name + "/")


@tool("repo_browser.list_dir")
def list_dir(ctx: ToolContext, path: str = "", depth: int = 1) -> ToolResult:
    """List one folder's entries.

    Args:
        path: the folder, relative to the repository root
        depth: levels to descend (1 = just this folder)
    """
    return print_tree.function(ctx, path=path, depth=depth)


@tool("repo_browser.open_file")
def open_file(ctx: ToolContext, path: str, line_start: int = 1, line_end: int | None = None,
              line_numbers: bool = False) -> ToolResult:
    """Show a file, or a range of its lines.

    Args:
        path: file path relative to the repository root
        line_start: first line to show (1-based)
        line_end: last line to show (inclusive); default the end of the file
        line_numbers: prefix each line with its number
    """
    try:
        target = _jail(ctx, path)
    except PathRefused as exc:
        return ToolResult.error(str(exc))
    if not target.exists():
        return ToolResult.error(f"{path}: no such file.{_nearest(ctx, path)}")
    if target.is_dir():
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if p.name != ".git")
        return ToolResult.error(f"{path} is a folder, not a file. It holds: {', '.join(entries[:50])}. "
                                "Use repo_browser.list_dir to explore it.")
    try:
        data = read_regular_file(target)
    except (PathRefused, OSError) as exc:
        return ToolResult.error(f"{path}: cannot read ({exc})")
    if b"\0" in data[:8192]:
        return ToolResult.error(f"{path} is a binary file ({len(data)} bytes); it cannot be shown as text.")
    lines = data.decode("utf-8", errors="replace").splitlines()
    total = len(lines)
    if total == 0:
        return ToolResult(True, f"({path} is empty)")
    start = max(line_start, 1)
    if start > total:
        return ToolResult.error(f"{path} has {total} lines; line_start={line_start} is past the end.")
    end = min(line_end or total, total)
    shown: list[str] = []
    used = 0
    width = len(str(end))
    for number in range(start, end + 1):
        text = lines[number - 1]
        row = f"{number:>{width}} {text}" if line_numbers else text
        cost = ctx.count_tokens(row) + 1
        if shown and used + cost > OPEN_FILE_TOKEN_BUDGET:
            end = number - 1
            break
        shown.append(row)
        used += cost
    output = "\n".join(shown)
    truncated = end < (min(line_end or total, total))
    if truncated or start > 1 or end < total:
        output += f"\n[lines {start}-{end} of {total}"
        output += f"; continue with line_start={end + 1}]" if end < total else "]"
    return ToolResult(True, output, truncated=truncated, data={"path": path, "lines": [start, end], "total": total})


@tool("repo_browser.search")
def search(ctx: ToolContext, query: str, path: str = "", max_results: int = 50) -> ToolResult:
    """Search file contents (regular expression, or literal text if it is not a valid one).

    Args:
        query: what to look for
        path: folder or file to search, relative to the repository root ("" for everything)
        max_results: most matching lines to return
    """
    try:
        base = _jail(ctx, path)
    except PathRefused as exc:
        return ToolResult.error(str(exc))
    if not base.exists():
        return ToolResult.error(f"{path}: no such file or folder.{_nearest(ctx, path)}")
    try:
        re.compile(query)
        literal = False
    except re.error:
        literal = True
    rows = _search_rg(ctx, query, base, literal) if shutil.which("rg") else None
    if rows is None:
        rows = _search_python(ctx, query, base, literal)
    if not ctx.allow_secrets:
        rows = [r for r in rows if not is_secret(Path(r.partition(":")[0]))]
    if not rows:
        return ToolResult(True, f"no matches for {query!r}" + (f" in {path}" if path else ""), data={"matches": 0})
    shown = rows[:max_results]
    output = "\n".join(shown)
    if len(rows) > max_results:
        output += f"\n[{len(rows) - max_results} more matches; narrow the query or the path, or raise max_results]"
    return ToolResult(True, output, truncated=len(rows) > max_results, data={"matches": len(rows)})


def _search_rg(ctx: ToolContext, query: str, base: Path, literal: bool) -> list[str] | None:
    # No `--sort`: it makes rg single-threaded. Rows are ordered here instead.
    argv = ["rg", "--line-number", "--no-heading", "--color", "never", "--max-columns", "300",
            "--max-columns-preview"]
    argv += ["--fixed-strings"] if literal else []
    argv += ["-e", query, "--", relative_name(ctx.workspace, base)]
    done = run_trusted(argv, cwd=ctx.workspace)
    if done.returncode not in (0, 1):
        return None
    rows = [r[2:] if r.startswith("./") else r for r in done.stdout.decode("utf-8", errors="replace").splitlines()]
    return sorted(rows, key=_row_order)


def _row_order(row: str) -> tuple[str, int]:
    path, _, rest = row.partition(":")
    number = rest.partition(":")[0]
    return path, int(number) if number.isdigit() else 0


def _search_python(ctx: ToolContext, query: str, base: Path, literal: bool) -> list[str]:
    pattern = re.compile(re.escape(query) if literal else query)
    prefix = relative_name(ctx.workspace, base)
    rows = []
    for name in repo_files(ctx.workspace):
        if prefix not in (".", "") and name != prefix and not name.startswith(prefix + "/"):
            continue
        try:
            data = (ctx.workspace / name).read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if pattern.search(line):
                rows.append(f"{name}:{number}:{line[:300]}")
    return rows
