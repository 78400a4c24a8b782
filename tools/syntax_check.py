"""Does an edit introduce a syntax error the file did not have? (pure: text in, description out)

apply_patch asks this before writing anything, so a patch that breaks a file
is refused whole instead of written and reported as success. Python files are
compiled with the interpreter's own compiler (it also catches what parsers
accept, such as `yield` outside a function or a tab/space mix); every language
the repo map knows is parsed with its tree-sitter grammar and the error nodes
before and after are compared, so a file that was already broken can still be
edited as long as the edit adds no new error. Files too big or too slow to
check (a size cap and a parse time budget), or in languages without a
grammar, pass unchecked.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath

from gptoss_agent.tools.tags import GRAMMARS

MAX_BYTES = 2_000_000  # larger files are not checked: the check must stay cheap next to the edit
PARSE_BUDGET_S = 1.5  # per tree-sitter parse; over it the file passes unchecked (and the result says nothing)
_CONTEXT_LINES = 2


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error: 1-based line and column, and what the parser said."""

    line: int
    column: int
    message: str


def introduced_error(path: str, before: str | None, after: str) -> str | None:
    """A description of the first syntax error `after` has that `before` had not, or None.

    `before` is None for a new file: then any error counts. The description
    names the file, line and column and shows the lines around it, for the model.
    """
    if len(after) > MAX_BYTES or (before is not None and len(before) > MAX_BYTES):
        return None
    suffix = PurePath(path).suffix.lower()
    problem = None
    if suffix in (".py", ".pyi"):
        problem = _new_python_error(path, before, after)
    elif suffix in GRAMMARS:
        problem = _new_tree_sitter_error(suffix, before, after)
    return _describe(path, after, problem) if problem else None


def python_problem(path: str, text: str) -> SyntaxProblem | None:
    """The error CPython's compiler reports for `text`, or None when it compiles (or cannot be judged)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not errors
            compile(text.removeprefix("\ufeff"), path, "exec", dont_inherit=True)  # a BOM is valid in a file
    except SyntaxError as error:  # IndentationError and TabError included
        kind = type(error).__name__
        return SyntaxProblem(error.lineno or 1, error.offset or 1, f"{kind}: {error.msg}")
    except (ValueError, RecursionError, MemoryError, OverflowError):
        return None  # NUL bytes, absurd nesting: not this check's business
    return None


def tree_sitter_problems(suffix: str, text: str, budget_s: float = PARSE_BUDGET_S) -> list[SyntaxProblem] | None:
    """Every ERROR and MISSING node of the file's tree-sitter parse, in order.

    [] when the file parses cleanly or no grammar loads; None when parsing
    ran over `budget_s` (tree-sitter's progress callback halts it), so the
    file cannot be judged.
    """
    language = _language(suffix)
    if language is None:
        return []
    from tree_sitter import Parser

    parser = Parser(language)  # one per call: parsers are not shared between threads
    source = text.encode("utf-8", errors="surrogateescape")
    deadline = time.monotonic() + budget_s
    stopped: list[bool] = []

    def over_budget(*_progress) -> bool:
        if time.monotonic() > deadline:
            stopped.append(True)
            return True
        return False

    try:
        tree = parser.parse(lambda offset, _point: source[offset:offset + 65536], progress_callback=over_budget)
    except ValueError:  # what py-tree-sitter raises when the callback halted the parse
        if not stopped:
            raise
        return None
    if tree is None or stopped:
        return None
    if not tree.root_node.has_error:
        return []
    problems: list[SyntaxProblem] = []
    stack = [tree.root_node]
    while stack:  # iterative: deeply nested files must not exhaust the Python stack
        if time.monotonic() > deadline:
            return None
        node = stack.pop()
        if node.is_missing:
            problems.append(_problem(node, f"missing {node.type!r}"))
        elif node.type == "ERROR":
            snippet = source[node.start_byte:min(node.end_byte, node.start_byte + 200)]
            first = snippet.decode("utf-8", "replace").strip().split("\n")[0][:60]
            problems.append(_problem(node, f"cannot parse {first!r}" if first else "cannot parse here"))
        elif node.has_error:
            stack.extend(reversed(node.children))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _new_python_error(path: str, before: str | None, after: str) -> SyntaxProblem | None:
    problem = python_problem(path, after)
    if problem is None:
        return None
    if before is not None and python_problem(path, before) is not None:
        # Already broken: refuse only if the tree-sitter parse shows the edit added an error.
        return _new_tree_sitter_error(".py", before, after)
    return problem


def _new_tree_sitter_error(suffix: str, before: str | None, after: str) -> SyntaxProblem | None:
    after_problems = tree_sitter_problems(suffix, after)
    if not after_problems:
        return None  # clean, or too slow to judge
    if before is None:
        return after_problems[0]
    before_problems = tree_sitter_problems(suffix, before)
    if before_problems is None:
        return None
    before_lines = before.split("\n")
    after_lines = after.split("\n")

    def signature(problem: SyntaxProblem, lines: list[str]) -> tuple[str, str]:
        # Where an error is by the text of its line, not its number: lines move when an edit adds lines above.
        text = lines[problem.line - 1].strip() if problem.line - 1 < len(lines) else ""
        return problem.message, text

    known = Counter(signature(p, before_lines) for p in before_problems)
    if len(after_problems) <= sum(known.values()):
        return None
    for problem in after_problems:
        key = signature(problem, after_lines)
        if known[key]:
            known[key] -= 1
        else:
            return problem
    return after_problems[0]


def _problem(node, message: str) -> SyntaxProblem:
    row, column = node.start_point
    return SyntaxProblem(row + 1, column + 1, message)


@lru_cache(maxsize=None)
def _language(suffix: str):
    """The tree-sitter language for the suffix, from the grammar table the repo map uses; None if unavailable."""
    entry = GRAMMARS.get(suffix)
    if entry is None:
        return None
    try:
        import importlib

        from tree_sitter import Language

        module, function = entry
        return Language(getattr(importlib.import_module(module), function)())
    except (ImportError, AttributeError, ValueError, TypeError):
        return None


def _describe(path: str, text: str, problem: SyntaxProblem) -> str:
    lines = text.split("\n")
    first = max(problem.line - 1 - _CONTEXT_LINES, 0)
    last = min(problem.line + _CONTEXT_LINES, len(lines))
    shown = []
    for number in range(first + 1, last + 1):
        marker = ">" if number == problem.line else " "
        shown.append(f"{marker}{number:5d} | {lines[number - 1].rstrip(chr(13))}")
        if number == problem.line:
            shown.append(f"       | {' ' * (problem.column - 1)}^")
    return f"{path}:{problem.line}:{problem.column}: {problem.message}\n" + "\n".join(shown)
