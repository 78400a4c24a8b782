"""Reading the repository: print_tree, list_dir, open_file, search (the `repo_browser` names).

Every read goes through `tools.paths.Workspace`: opened beneath the
repository's directory descriptor, links out refused, regular files only,
size capped, credentials (by name anywhere in the path, or by private-key
content) refused. Large outputs are capped by tokens with a note saying how to
page, never dumped whole.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.denylist import is_secret_path
from gptoss_agent.tools.paths import PathRefused, Workspace
from gptoss_agent.tools.registry import ToolError, tool
from gptoss_agent.tools.rg_stream import stream_matches
from gptoss_agent.tools.sandbox import run_trusted

OPEN_FILE_TOKEN_BUDGET = 6_000
LINE_CHARS_SHOWN = 4_000  # a longer line (minified code, a hostile file) is cut, with a note
LINE_PAGE_CHARS = 20_000  # one page of a long line (char_start): fewer when the budget needs it
SEARCH_TEXT_CHARS = 300  # a longer matching line is shown as this much text around each match
SEARCH_CONTEXT_BEFORE = 100  # of those characters, how many come before the match
SEARCH_MATCHES_PER_FILE = 1000  # lines ripgrep reports per file (more when max_results asks for more)
SEARCH_MAX_RESULTS = 500  # rows one search may show, whatever max_results asks
SEARCH_TOKEN_BUDGET = 6_000  # and the tokens they may cost: one search cannot flood the context
SEARCH_BIG_FILE = 1 << 20  # a bigger file is searched on its own (rg holds a whole line's matches at once)
SEARCH_RG_MEMORY = 256 << 20  # ripgrep's address space when it searches one big file
SEARCH_ROWS_READ = 4 * SEARCH_MAX_RESULTS  # match records read from ripgrep before it is stopped
SEARCH_FILE_BYTES = 16 << 20  # the Python fallback and single-file search read at most this much
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


def _space(ctx: ToolContext) -> Workspace:
    return Workspace(ctx.workspace)


GIT_DIR_REFUSAL = ("{path}: inside .git, which the file tools never read (its config can hold credentials); "
                   "use the git tools for history and status")


def _inside_git(*paths: str | tuple[str, ...]) -> bool:
    """Whether any of these paths (text or resolved parts) has a `.git` component, in any letter case."""
    for path in paths:
        parts = path.split("/") if isinstance(path, str) else path
        if any(part.lower() == ".git" for part in parts):
            return True
    return False


def _refuse_inside_git(space: Workspace, path: str) -> None:
    """Raise PathRefused for a path in `.git` as written or once links inside the repository are resolved."""
    if _inside_git(space.parts(path)):
        raise PathRefused(GIT_DIR_REFUSAL.format(path=path))
    try:
        resolved = space.resolved(path)
    except (OSError, PathRefused):
        return  # the read itself reports what is wrong
    if _inside_git(resolved):
        raise PathRefused(GIT_DIR_REFUSAL.format(path=path))


def _nearest(ctx: ToolContext, path: str) -> str:
    names = repo_files(ctx.workspace)
    close = difflib.get_close_matches(path, names, n=3, cutoff=0.5)
    if not close:
        base = Path(path).name
        close = [n for n in names if Path(n).name == base][:3]
    return f" Did you mean: {', '.join(close)}?" if close else ""


@contextmanager
def _failures_reported(ctx: ToolContext, path: str, verb: str, missing: str | None = None):
    """What goes wrong reaching `path` as the ToolError the model reads: `{path}: {missing}` and the nearest
    names for a path that is not there (when `missing` is given), a refusal's own words, else `cannot {verb}`."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError) as exc:
        if missing is None:
            raise ToolError(f"{path}: cannot {verb} ({exc.strerror or exc})") from None
        raise ToolError(f"{path}: {missing}.{_nearest(ctx, path)}") from None
    except PathRefused as exc:
        raise ToolError(str(exc)) from None
    except OSError as exc:
        raise ToolError(f"{path}: cannot {verb} ({exc.strerror or exc})") from None


@tool("repo_browser.print_tree")
def print_tree(ctx: ToolContext, path: str = "", depth: int = 2) -> ToolResult:
    """Show the repository's files as a tree (tracked and untracked, .gitignore respected).

    Args:
        path: folder to start from, relative to the repository root ("" for the root)
        depth: how many folder levels to show
    """
    if depth < 1:
        raise ToolError(f"depth={depth}: give 1 or more (1 shows just this folder's entries).")
    with _failures_reported(ctx, path, "list"), _space(ctx) as space:  # OSError: changed while we looked
        _refuse_inside_git(space, path)
        kind = space.kind(path)
        prefix = space.resolved(path) if kind == "dir" else ""
    if kind != "dir":
        raise ToolError(f"{path}: not a folder.{_nearest(ctx, path)}")
    if is_secret_path(prefix):
        raise ToolError(f"{path}: looks like a secret folder (credentials, keys); not listed")
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
              line_numbers: bool = False, char_start: int | None = None) -> ToolResult:
    """Show a file, or a range of its lines. A very long line (minified code) is shown in pages of characters.

    Args:
        path: file path relative to the repository root
        line_start: first line to show (1-based)
        line_end: last line to show (inclusive); default the end of the file
        line_numbers: prefix each line with its number
        char_start: show line line_start from this character on (1-based), one page of it: for very long lines
    """
    if line_start < 1:
        raise ToolError(f"line_start={line_start}: lines are numbered from 1.")
    if line_end is not None and line_end < line_start:
        raise ToolError(f"line_end={line_end} is before line_start={line_start}; give line_end >= line_start "
                        "(or leave it out for the rest of the file).")
    if char_start is not None and char_start < 1:
        raise ToolError(f"char_start={char_start}: characters are numbered from 1.")
    with _failures_reported(ctx, path, "read", missing="no such file"), _space(ctx) as space:
        _refuse_inside_git(space, path)
        try:
            data, _ = space.read(path)
        except IsADirectoryError:
            entries = [name + ("/" if is_dir else "") for name, is_dir in space.list(path) if name != ".git"]
            raise ToolError(f"{path} is a folder, not a file. It holds: {', '.join(entries[:50])}. "
                            "Use repo_browser.list_dir to explore it.") from None
    if b"\0" in data[:8192]:
        raise ToolError(f"{path} is a binary file ({len(data)} bytes); it cannot be shown as text.")
    lines = data.decode("utf-8", errors="replace").splitlines()
    total = len(lines)
    if total == 0:
        return ToolResult(True, f"({path} is empty)")
    start = max(line_start, 1)
    if start > total:
        raise ToolError(f"{path} has {total} lines; line_start={line_start} is past the end.")
    if char_start is not None:
        return _line_page(ctx, path, lines[start - 1], start, total, char_start, line_numbers)
    last = min(line_end or total, total)
    output, end = line_window(ctx, lines, start, last, line_numbers=line_numbers)
    return ToolResult(True, output, truncated=end < last, data={"path": path, "lines": [start, end], "total": total})


def line_window(ctx: ToolContext, lines: list[str], start: int, last: int, *, line_numbers: bool,
                read_on_hint: bool = True) -> tuple[str, int]:
    """Lines start..last as open_file shows them, as many as fit its token budget (at least one), with the
    `[lines a-b of n]` footer where not all is shown; and the last line shown. Long lines are cut, saying how
    to read on (`read_on_hint`: where char_start can be given)."""
    total, end, shown, used = len(lines), last, [], 0
    width = len(str(last))
    for number in range(start, last + 1):
        text = lines[number - 1]
        if len(text) > LINE_CHARS_SHOWN:
            text = f"{text[:LINE_CHARS_SHOWN]}[… line cut: {len(text) - LINE_CHARS_SHOWN:,} more characters" + (
                f"; read on with line_start={number}, char_start={LINE_CHARS_SHOWN + 1}]" if read_on_hint else "]")
        row = f"{number:>{width}} {text}" if line_numbers else text
        cost = ctx.count_tokens(row) + 1
        if shown and used + cost > OPEN_FILE_TOKEN_BUDGET:
            end = number - 1
            break
        shown.append(row)
        used += cost
    output = "\n".join(shown)
    if end < last or start > 1 or end < total:
        output += f"\n[lines {start}-{end} of {total}"
        output += f"; continue with line_start={end + 1}]" if end < total else "]"
    return output, end


def _line_page(ctx: ToolContext, path: str, text: str, number: int, total: int, char_start: int,
               line_numbers: bool) -> ToolResult:
    """One page of one line, from `char_start`: as many characters as fit the token budget.

    A minified bundle is one line of hundreds of thousands of characters; the
    pages are plain character ranges, so the model can walk it, or jump to the
    offset a search reported.
    """
    length = len(text)
    if char_start > max(length, 1):
        raise ToolError(f"{path} line {number} has {length:,} characters; char_start={char_start} is past its end.")
    size = LINE_PAGE_CHARS
    for _ in range(8):  # shrink in proportion until the page fits (dense code costs more tokens per character)
        cost = ctx.count_tokens(text[char_start - 1:char_start - 1 + size])
        if cost <= OPEN_FILE_TOKEN_BUDGET or size <= 256:
            break
        size = max(256, int(size * OPEN_FILE_TOKEN_BUDGET / cost * 0.95))
    piece = text[char_start - 1:char_start - 1 + size]
    last = char_start - 1 + len(piece)
    output = f"{number} {piece}" if line_numbers else piece
    where = f"[line {number} of {total}, characters {char_start:,}-{last:,} of {length:,}"
    if last < length:
        where += f"; continue with line_start={number}, char_start={last + 1}]"
    elif number < total:
        where += f"; the line ends here; the next is line_start={number + 1}]"
    else:
        where += "; end of file]"
    return ToolResult(True, f"{output}\n{where}", truncated=last < length,
                      data={"path": path, "lines": [number, number], "total": total, "chars": [char_start, last],
                            "line_chars": length})


@tool("repo_browser.search")
def search(ctx: ToolContext, query: str, path: str = "", max_results: int = 50) -> ToolResult:
    """Search file contents (regular expression, or literal text if it is not a valid one).

    Args:
        query: what to look for
        path: folder or file to search, relative to the repository root ("" for everything)
        max_results: most matches to show (at most 500); a very long line shows the text around each match
    """
    if not isinstance(path, str) or not isinstance(query, str):  # e.g. JSON null: said, not a TypeError
        raise ToolError(f"search takes a text query and a text path (got {type(query).__name__} and "
                        f"{type(path).__name__})"
                        "; give path as a folder or file, or \"\" (or leave it out) for everything.")
    if max_results < 1:
        raise ToolError(f"max_results={max_results}: give 1 or more.")
    asked, max_results = max_results, min(max_results, SEARCH_MAX_RESULTS)
    literal = not _REGEX_SYNTAX.search(query) or not _compiles(query)
    note = ""
    # ripgrep stops each file here: exact counts for ordinary files, bounded memory for a hostile one
    per_file = max(SEARCH_MATCHES_PER_FILE, min(max_results, 10 * SEARCH_MATCHES_PER_FILE)) + 1
    with _failures_reported(ctx, path, "search", missing="no such file or folder"), _space(ctx) as space:
        if _inside_git(space.parts(path)):
            raise PathRefused(GIT_DIR_REFUSAL.format(path=path))
        fd, parts = space.open(path, os.O_PATH)  # one open: the folder searched is the folder checked
        try:
            if _inside_git(parts):
                raise PathRefused(GIT_DIR_REFUSAL.format(path=path))
            base, mode = "/".join(parts) or ".", os.fstat(fd).st_mode
            if is_secret_path(base):
                raise ToolError(f"{path}: looks like a secret (credentials, keys); not searched")
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ToolError(f"{path}: not a regular file or folder; not searched")
            rows = None
            if shutil.which("rg"):
                rows = (_search_one_file_rg(space, base, query, literal, per_file)
                        if stat.S_ISREG(mode) else _search_rg(space, fd, query, base, literal, per_file))
            if rows is None:
                # Python's `re` backtracks (`^(a+)+$` runs for ever, deaf to Ctrl-C): without
                # ripgrep's linear engine, only literal text is searched.
                note = "" if literal else "\n[ripgrep is not available: the query was searched as literal text]"
                if stat.S_ISREG(mode):
                    rows = _search_file(space, base, _python_pattern(query, True))
                else:
                    rows = _search_python(ctx, space, query, base, True)
        finally:
            os.close(fd)
        stopped, more = getattr(rows, "stopped", False), getattr(rows, "more", 0)
        rows = _without_secrets(space, rows, max_results)
    if note and not rows:
        return ToolResult(True, f"no matches for {query!r}" + (f" in {path}" if path else "") + note,
                          data={"matches": 0})
    if not rows:
        return ToolResult(True, f"no matches for {query!r}" + (f" in {path}" if path else ""), data={"matches": 0})
    shown: list[str] = []
    used = 0
    for name, number, text in rows[:max_results]:
        row = f"{name}:{number}:{text}"
        cost = ctx.count_tokens(row) + 1
        if shown and used + cost > SEARCH_TOKEN_BUDGET:
            break
        shown.append(row)
        used += cost
    output = "\n".join(shown) + note
    total = len(rows) + more
    if total > len(shown):
        lines_per_file = Counter(name for name, _ in {(name, number) for name, number, _ in rows})
        capped = (lines_per_file.most_common(1)[0][1] >= per_file  # rg stopped a file early, or a long line
                  or stopped or any(text.endswith(_LINE_CAPPED) for _, _, text in rows))
        why = ("the output budget of one search is spent" if len(shown) < max_results
               else f"max_results is capped at {SEARCH_MAX_RESULTS}" if asked > max_results else "")
        raise_hint = "" if why else ", or raise max_results"
        output += (f"\n[{'at least ' if capped else ''}{total - len(shown)} more matches"
                   f"{' (' + why + ')' if why else ''}; narrow the query or the path{raise_hint}]")
    return ToolResult(True, output, truncated=total > len(shown), data={"matches": total})


Row = tuple[str, int, str]  # (relative path, line number, line text): never re-split from a `path:line:text` string


def _without_secrets(space: Workspace, rows: list[Row], wanted: int) -> list[Row]:
    """Drop rows from credential paths (whole path) and from files holding a private key."""
    rows = [row for row in rows if not is_secret_path(row[0])]
    verdicts: dict[str, bool] = {}
    kept: list[Row] = []
    for index, row in enumerate(rows):
        if len(kept) >= wanted:  # the rest are only counted; checking their content would cost a read each
            return kept + rows[index:]
        if row[0] not in verdicts:
            verdicts[row[0]] = space.holds_private_key(row[0])
        if not verdicts[row[0]]:
            kept.append(row)
    return kept


_LINE_CAPPED = " more matches on this line; narrow the query]"
_REGEX_SYNTAX = re.compile(r"[.^$*+?{}\[\]\\|()]")


def _compiles(query: str) -> bool:
    """Whether the query is a valid regular expression (compiling is linear; only matching backtracks)."""
    try:
        re.compile(query)
        return True
    except (re.error, RecursionError, OverflowError):
        return False


def _search_one_file_rg(space: Workspace, relative: str, query: str, literal: bool,
                        per_file: int) -> list[Row] | None:
    """One file through ripgrep (linear time): the bytes read here (no links followed) go to a private copy.

    Searching the copy, not the path, means a file swapped for a link after the check is never read.
    """
    try:
        data, _ = space.read(relative, max_bytes=SEARCH_FILE_BYTES, truncate=True, follow_inside=False)
    except (OSError, PathRefused):
        return []
    if b"\0" in data[:8192]:
        return []
    with tempfile.TemporaryDirectory(prefix="gptoss-search-") as private:
        Path(private, "file").write_bytes(data)
        folder = os.open(private, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            rows = _search_rg(space, folder, query, ".", literal, per_file, one_file=True)
        finally:
            os.close(folder)
    if rows is None:
        return None
    named = SearchRows((relative, number, text) for _, number, text in rows)
    named.stopped, named.more = rows.stopped, rows.more
    return named


def _python_pattern(query: str, literal: bool) -> re.Pattern:
    return re.compile(re.escape(query) if literal else query)


def _search_file(space: Workspace, relative: str, pattern: re.Pattern, follow_inside: bool = True,
                 truncate: bool = False) -> list[Row]:
    try:
        data, _ = space.read(relative, max_bytes=SEARCH_FILE_BYTES, follow_inside=follow_inside, truncate=truncate)
    except (OSError, PathRefused):
        return []
    if b"\0" in data[:8192]:
        return []
    rows: list[Row] = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        spans = [match.span() for match in _first_matches(pattern, line)]
        if spans:
            rows.extend((relative, number, text) for text in excerpts(line, spans))
    return rows


def _first_matches(pattern: re.Pattern, line: str):
    """The matches in one line, at most as many as one search could show (a line of a million `a`s stays cheap)."""
    for count, match in enumerate(pattern.finditer(line)):
        if count >= SEARCH_MAX_RESULTS:
            return
        yield match
        if len(line) <= SEARCH_TEXT_CHARS:
            return  # a short line is shown whole, once


def excerpts(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """What a search row shows of one matching line: the line when it is short, else the text around each match.

    A minified bundle is one line; its first 300 characters say nothing about
    a match 140,000 characters in. Each excerpt names its character offset, which
    is what open_file's char_start takes, and matches that fall inside the
    previous excerpt do not repeat it.
    """
    line = line.rstrip("\r\n")
    if len(line) <= SEARCH_TEXT_CHARS or not spans:
        return [line[:SEARCH_TEXT_CHARS]]
    shown: list[str] = []
    covered = -1
    for start, end in spans:
        if start < covered:
            continue
        first = max(0, min(start - SEARCH_CONTEXT_BEFORE, len(line) - SEARCH_TEXT_CHARS))
        last = min(len(line), first + SEARCH_TEXT_CHARS)
        covered = last
        text = ("…" if first else "") + line[first:last] + ("…" if last < len(line) else "")
        shown.append(f"{text} [match at char {start + 1:,} of {len(line):,}; open_file char_start={first + 1}]")
    return shown


def _search_rg(space: Workspace, folder_fd: int, query: str, base: str, literal: bool,
               per_file: int, one_file: bool = False) -> list[Row] | None:
    """ripgrep run inside the folder's own descriptor (so no swapped link redirects it), never following links.

    `--json` gives each match's path as a field, so a directory named
    `a:1:b` cannot shift where the path ends. No `--sort`: it makes rg
    single-threaded; rows are ordered here instead. `--max-count` stops each
    file after `per_file` matches. `--encoding none`: bytes are searched as
    they are (a file starting FF FE is not read as UTF-16), the way open_file
    reads them. The output is read as a stream (tools/rg_stream.py), never held
    whole: one minified line of a million matches is a record of tens of
    megabytes, of which a bounded head and the first submatch offsets are kept.
    rg itself holds every submatch of a line before writing it (~100 bytes each),
    so files over SEARCH_BIG_FILE are left out of this run and searched one by
    one (_search_big_file): in Python when the query is literal, else by an rg
    whose memory is capped.
    """
    argv = ["rg", "--json", "--no-config", "--no-messages", "--color", "never", "--encoding", "none",
            "--max-count", str(per_file)]
    if one_file:  # the private copy of one (possibly big) file: -j1 and a memory cap instead of a size cap
        argv += ["-j", "1"]
    else:
        argv += ["--max-filesize", str(SEARCH_BIG_FILE)]
    argv += ["--fixed-strings"] if literal else []
    argv += ["-e", query, "--", "."]
    # The child changes into the folder through its own copy of our descriptor (subprocess changes
    # directory before it closes inherited descriptors). /proc/self, not /proc/<our pid>: the agent is
    # non-dumpable, so another process, even our child, may not look into our descriptors.
    through_fd = Path(f"/proc/self/fd/{folder_fd}")
    if not through_fd.is_dir():
        return None  # no /proc: the Python search opens every file beneath the descriptor instead
    try:
        streamed = stream_matches(argv, through_fd, SEARCH_MAX_RESULTS, SEARCH_ROWS_READ,
                                  memory_bytes=SEARCH_RG_MEMORY if one_file else None)
    except OSError:
        return None
    if streamed.returncode == 2 and not literal and not streamed.records and _rg_rejects(query):
        # a regex ripgrep rejects: searched as text (asked apart: under the memory cap, 2 may be an allocation)
        return _search_rg(space, folder_fd, query, base, True, per_file, one_file)
    prefix = "" if base == "." else base + "/"
    rows = SearchRows()
    if one_file and streamed.returncode not in (0, 1) and not streamed.stopped:
        rows.append((".", 0, "[this big file holds too many matches of this regular expression to search; "
                              "narrow the query]"))
        return rows
    if streamed.returncode not in (0, 1) and not streamed.stopped:
        return None
    rows.stopped, rows.more = streamed.stopped, streamed.more_records
    for record in streamed.records:
        name = record.path[2:] if record.path.startswith("./") else record.path
        text = record.raw.decode("utf-8", errors="replace")
        spans = _char_spans(record.raw, text, record.spans)
        rows.extend((prefix + name, record.number, shown) for shown in excerpts(text, spans))
        more = record.more_matches + (len(record.spans) - len(spans) if len(text) > SEARCH_TEXT_CHARS else 0)
        if len(text) > SEARCH_TEXT_CHARS and more > 0:
            rows.append((prefix + name, record.number, f"[… {more:,}{_LINE_CAPPED}"))
    if not one_file:
        for name in _big_files(through_fd, folder_fd):
            found = _search_big_file(space, prefix + name, query, literal, per_file)
            rows.extend(found)
            rows.stopped = rows.stopped or getattr(found, "stopped", False)
            rows.more += getattr(found, "more", 0)
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def _rg_rejects(query: str) -> bool:
    try:
        done = subprocess.run(["rg", "--no-config", "-e", query, "--", "/dev/null"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True
    return done.returncode == 2


def _big_files(through_fd: Path, folder_fd: int) -> list[str]:
    """The files rg would search (ignore rules kept, no links) that are over SEARCH_BIG_FILE."""
    argv = ["rg", "--files", "--no-config", "--no-messages", "--null", "--", "."]
    try:
        done = run_trusted(argv, cwd=through_fd)
    except (OSError, subprocess.SubprocessError):
        return []
    big = []
    for raw in done.stdout.split(b"\0"):
        name = os.fsdecode(raw)
        if not name:
            continue
        try:
            info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size > SEARCH_BIG_FILE:
            big.append(name[2:] if name.startswith("./") else name)
    return sorted(big)


def _search_big_file(space: Workspace, relative: str, query: str, literal: bool,
                     per_file: int) -> "SearchRows":
    """One file over SEARCH_BIG_FILE: its first SEARCH_FILE_BYTES, read without following links; a literal
    query in Python (bounded: at most one search's rows per line), a regex by rg under a memory cap."""
    if literal:
        found = SearchRows(_search_file(space, relative, _python_pattern(query, True), follow_inside=False,
                                        truncate=True))
        return found
    found = _search_one_file_rg(space, relative, query, literal, per_file)
    return found if found is not None else SearchRows()


class SearchRows(list):
    """Rows, and whether ripgrep was stopped before it finished (the count of the rest is then 'at least')."""

    stopped = False
    more = 0  # match records past what was read: counted only


def _char_spans(raw: bytes, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """ripgrep's byte offsets into `raw` as character offsets into `text` (= raw decoded with errors="replace",
    exactly how open_file decodes, so an invalid byte counts as the one U+FFFD it is shown as there).
    Only needed, and only paid, for long lines; offsets past the bytes kept of a huge line are left out."""
    if len(text) <= SEARCH_TEXT_CHARS:
        return [(0, 0)]
    found = []
    done_bytes = done_chars = 0  # decoded so far: each byte is decoded once, however many matches a line has
    for start, end in spans[:SEARCH_MAX_RESULTS]:
        if start < done_bytes or end < start or end > len(raw):
            continue
        first = done_chars + len(raw[done_bytes:start].decode("utf-8", errors="replace"))
        last = first + len(raw[start:end].decode("utf-8", errors="replace"))
        found.append((first, last))
        done_bytes, done_chars = end, last
    return found


def _search_python(ctx: ToolContext, space: Workspace, query: str, base: str, literal: bool) -> list[Row]:
    """No ripgrep: the same search over the repository's files, each opened without following links."""
    pattern = _python_pattern(query, literal)
    rows: list[Row] = []
    for name in repo_files(ctx.workspace):
        if base != "." and name != base and not name.startswith(base + "/"):
            continue
        rows.extend(_search_file(space, name, pattern, follow_inside=False))
    return rows
