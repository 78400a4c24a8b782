"""Definitions and references in source files, from tree-sitter tag queries written for this project.

Pure: bytes and a language in, tags out. Bounded, deterministically:
tree-sitter's query engine is super-linear in how deeply some nodes nest (a
500 KB file of nested calls took minutes). So the bracket depth is measured
first (a linear scan that stops early): past MAX_BRACKET_DEPTH the file is not
mapped at all (`TooDeeplyNested`, decided in microseconds), past
NESTING_FOR_BOUNDED_QUERY it is queried in depth-limited slices (linear), and
ordinary code gets the plain query. A CPU-time budget on top
(`TimeBudgetExceeded`, enforced through the parser's progress callback and
between slices) is only a safety net for pathologies we have not met. Grammars come from per-language PyPI
wheels (compiled in; nothing is fetched). A file with syntax errors still
yields what tree-sitter recovers.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath

# extension → (grammar module, function returning the language)
GRAMMARS = {
    ".py": ("tree_sitter_python", "language"), ".pyi": ("tree_sitter_python", "language"),
    ".js": ("tree_sitter_javascript", "language"), ".jsx": ("tree_sitter_javascript", "language"),
    ".mjs": ("tree_sitter_javascript", "language"), ".cjs": ("tree_sitter_javascript", "language"),
    ".ts": ("tree_sitter_typescript", "language_typescript"), ".tsx": ("tree_sitter_typescript", "language_tsx"),
    ".go": ("tree_sitter_go", "language"), ".rs": ("tree_sitter_rust", "language"),
    ".java": ("tree_sitter_java", "language"), ".c": ("tree_sitter_c", "language"), ".h": ("tree_sitter_c", "language"),
    ".cc": ("tree_sitter_cpp", "language"), ".cpp": ("tree_sitter_cpp", "language"),
    ".cxx": ("tree_sitter_cpp", "language"), ".hpp": ("tree_sitter_cpp", "language"),
    ".hh": ("tree_sitter_cpp", "language"), ".rb": ("tree_sitter_ruby", "language"),
}

_JS_COMMON = """
(function_declaration name: (identifier) @name) @def.function
(method_definition name: (property_identifier) @name) @def.method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def.function
(call_expression function: [(identifier) @ref (member_expression property: (property_identifier) @ref)])
(new_expression constructor: (identifier) @ref)
"""

QUERIES = {
    "tree_sitter_python": """
(class_definition name: (identifier) @name) @def.class
(function_definition name: (identifier) @name) @def.function
(call function: [(identifier) @ref (attribute attribute: (identifier) @ref)])
(argument_list (identifier) @ref)
(class_definition superclasses: (argument_list [(identifier) @ref (attribute attribute: (identifier) @ref)]))
""",
    "tree_sitter_javascript": _JS_COMMON + """
(class_declaration name: (identifier) @name) @def.class
(class_heritage (identifier) @ref)
""",
    "tree_sitter_typescript": _JS_COMMON + """
(class_declaration name: (type_identifier) @name) @def.class
(interface_declaration name: (type_identifier) @name) @def.interface
(type_alias_declaration name: (type_identifier) @name) @def.type
(type_identifier) @ref
""",
    "tree_sitter_go": """
(function_declaration name: (identifier) @name) @def.function
(method_declaration name: (field_identifier) @name) @def.method
(type_spec name: (type_identifier) @name) @def.type
(call_expression function: [(identifier) @ref (selector_expression field: (field_identifier) @ref)])
(type_identifier) @ref
""",
    "tree_sitter_rust": """
(struct_item name: (type_identifier) @name) @def.struct
(enum_item name: (type_identifier) @name) @def.enum
(trait_item name: (type_identifier) @name) @def.trait
(function_item name: (identifier) @name) @def.function
(call_expression function: [(identifier) @ref (field_expression field: (field_identifier) @ref)
                              (scoped_identifier name: (identifier) @ref)])
(type_identifier) @ref
""",
    "tree_sitter_java": """
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(method_declaration name: (identifier) @name) @def.method
(method_invocation name: (identifier) @ref)
(type_identifier) @ref
""",
    "tree_sitter_c": """
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @def.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @def.function
(struct_specifier name: (type_identifier) @name body: (_)) @def.struct
(type_definition declarator: (type_identifier) @name) @def.type
(call_expression function: (identifier) @ref)
(type_identifier) @ref
""",
    "tree_sitter_cpp": """
(function_definition declarator: (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier)] @name)) @def.function
(class_specifier name: (type_identifier) @name body: (_)) @def.class
(struct_specifier name: (type_identifier) @name body: (_)) @def.struct
(call_expression function: [(identifier) @ref (field_expression field: (field_identifier) @ref)])
(type_identifier) @ref
""",
    "tree_sitter_ruby": """
(class name: (constant) @name) @def.class
(module name: (constant) @name) @def.module
(method name: (identifier) @name) @def.method
(call method: (identifier) @ref)
(constant) @ref
""",
}

_CONTAINERS = {"class_definition", "class_declaration", "class_body", "class", "impl_item", "class_specifier"}
_FUNCTIONS = {"function_definition", "function_declaration"}  # a class inside one of these is not its method


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # class, function, method, type, struct, …
    line: int  # 1-based
    signature: str


@dataclass(frozen=True)
class FileTags:
    definitions: tuple[Definition, ...]
    references: tuple[str, ...]


class Unmappable(Exception):
    """Why one file yields no tags (the message says it); the file is skipped, not the map."""


class TimeBudgetExceeded(Unmappable):
    """Parsing and querying one file took longer than its budget."""


class TooDeeplyNested(Unmappable):
    """Brackets nest deeper than any real code does: parsing it would only cost time."""


def language_for(path: str) -> str | None:
    """The grammar module for a path, or None for a language we do not map."""
    entry = GRAMMARS.get(PurePath(path).suffix.lower())
    return entry[0] if entry else None


@lru_cache(maxsize=None)
def _tools(module_name: str, function: str):
    from tree_sitter import Language, Parser, Query

    language = Language(getattr(importlib.import_module(module_name), function)())
    return Parser(language), Query(language, QUERIES[module_name])


def extract(path: str, source: bytes, *, budget_s: float | None = None) -> FileTags | None:
    """Definitions (with signature lines) and referenced names in one file; None if unsupported.

    With `budget_s`, parsing and querying together stop at that many seconds
    and raise TimeBudgetExceeded instead of returning partial tags.
    """
    entry = GRAMMARS.get(PurePath(path).suffix.lower())
    if entry is None:
        return None
    parser, query = _tools(*entry)
    deadline = time.thread_time() + budget_s if budget_s is not None else None
    tree, matches = _parse_and_query(parser, query, source, budget_s)
    definitions: list[Definition] = []
    references: list[str] = []
    in_class: set[int] | None = None  # ids of nodes whose nearest class-or-function ancestor is a class
    for number, (_, captures) in enumerate(matches):
        if deadline is not None and number % 1024 == 1023 and time.thread_time() > deadline:
            raise TimeBudgetExceeded(f"reading the tags took over {budget_s:g}s")
        if "ref" in captures:
            references.extend(_text(source, node) for node in captures["ref"])
            continue
        kind_key = next((k for k in captures if k.startswith("def.")), None)
        if kind_key is None or "name" not in captures:
            continue
        node, name = captures[kind_key][0], captures["name"][0]
        kind = kind_key[4:]
        if kind == "function":
            if in_class is None:
                in_class = _nodes_in_classes(tree.root_node, deadline)
            if node.id in in_class:
                kind = "method"
        line_end = source.find(b"\n", node.start_byte, node.end_byte)  # never a copy of the whole (nested) body
        first_line = source[node.start_byte:line_end if line_end >= 0 else node.end_byte][:4096]
        first_line = first_line.decode("utf-8", "replace").strip()
        definitions.append(Definition(_text(source, name), kind, node.start_point[0] + 1,
                                      first_line[:160]))
    definitions.sort(key=lambda d: d.line)
    return FileTags(tuple(definitions), tuple(references))


NESTING_FOR_BOUNDED_QUERY = 48  # bracket depth above which the query runs in depth-limited slices
MAX_BRACKET_DEPTH = 256  # above it a file is not mapped (hand-written code stays far below)
_SLICE_DEPTH = 32
TREE_DEPTH_FOR_BOUNDED_QUERY = 128  # syntax-tree depth above which the query runs in slices too
MAX_TREE_DEPTH = 2048  # above it a file is not mapped: 60000 nested `def`s made one query run for minutes
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"()[]{}")))


def _parse_and_query(parser, query, source: bytes, budget_s: float | None):
    """The tree and the query's matches, within `budget_s` seconds when given.

    Parsing is linear and halts through tree-sitter's progress callback. The
    query engine keeps one in-progress state per enclosing node for some
    patterns, so deeply nested code makes it quadratic (and its own progress
    callback crashes py-tree-sitter 0.26). Deeply bracketed sources are
    therefore queried in slices: each run may start patterns at most
    `_SLICE_DEPTH` levels below its root, and the nodes just below that
    become the roots of the next runs, so every node is covered once, the work
    stays linear, and the budget is checked between runs.
    """
    from tree_sitter import QueryCursor

    depth = bracket_depth(source, MAX_BRACKET_DEPTH)
    if depth > MAX_BRACKET_DEPTH:
        raise TooDeeplyNested(f"brackets nest over {MAX_BRACKET_DEPTH} levels deep")
    if budget_s is None:
        budget_s = float("inf")
    deadline = time.thread_time() + budget_s
    stopped: list[bool] = []

    def over_budget(*_progress) -> bool:
        if time.thread_time() > deadline:
            stopped.append(True)
            return True  # tells tree-sitter to halt
        return False

    try:
        tree = parser.parse(lambda offset, _point: source[offset:offset + 65536], progress_callback=over_budget)
    except ValueError:  # "Parsing failed": what py-tree-sitter raises when the callback halted it
        if not stopped:
            raise
        tree = None
    if tree is None or stopped:
        parser.reset()
        raise TimeBudgetExceeded(f"parsing took over {budget_s:g}s")
    levels = tree_depth(tree.root_node, MAX_TREE_DEPTH, deadline)
    if levels > MAX_TREE_DEPTH:  # nesting by keywords (Ruby's def…end) that no bracket count sees
        raise TooDeeplyNested(f"definitions nest over {MAX_TREE_DEPTH} syntax levels deep")
    if depth <= NESTING_FOR_BOUNDED_QUERY and levels <= TREE_DEPTH_FOR_BOUNDED_QUERY:
        return tree, QueryCursor(query).matches(tree.root_node)
    matches: list = []
    roots = [tree.root_node]
    while roots:
        if time.thread_time() > deadline:
            raise TimeBudgetExceeded(f"querying deeply nested code took over {budget_s:g}s")
        root = roots.pop()
        cursor = QueryCursor(query)
        cursor.set_max_start_depth(_SLICE_DEPTH)
        matches.extend(cursor.matches(root))
        roots.extend(_nodes_at_depth(root, _SLICE_DEPTH + 1, deadline))
    return tree, matches


def tree_depth(root, enough: int, deadline: float) -> int:
    """How many levels the syntax tree has below `root`, in one cursor walk that stops once past `enough`."""
    cursor, level, peak, steps = root.walk(), 0, 0, 0
    while True:
        steps += 1
        if steps % 4096 == 0 and time.thread_time() > deadline:
            raise TimeBudgetExceeded("measuring the nesting took too long")
        if cursor.goto_first_child():
            level += 1
            if level > peak:
                peak = level
                if peak > enough:
                    return peak
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return peak
            level -= 1


def bracket_depth(source: bytes, enough: int) -> int:
    """How deeply (), [] and {} nest in `source`, counting stops once past `enough`."""
    depth = peak = 0
    for byte in source.translate(None, _NOT_BRACKETS):
        if byte in (40, 91, 123):
            depth += 1
            if depth > peak:
                peak = depth
                if peak > enough:
                    break
        elif depth:
            depth -= 1
    return peak


def _nodes_at_depth(node, depth: int, deadline: float) -> list:
    """The descendants exactly `depth` levels below `node`, found without visiting anything deeper."""
    cursor, level, found, steps = node.walk(), 0, [], 0
    while True:
        steps += 1
        if steps % 4096 == 0 and time.thread_time() > deadline:
            raise TimeBudgetExceeded("querying deeply nested code took too long")
        if level < depth and cursor.goto_first_child():
            level += 1
            if level == depth:
                found.append(cursor.node)
                while cursor.goto_next_sibling():
                    found.append(cursor.node)
            else:
                continue
        while not cursor.goto_next_sibling():  # climb until a next sibling exists, or back at `node`
            if level == 0:
                return found
            cursor.goto_parent()
            level -= 1
            if level == 0:
                return found


def _text(source: bytes, node) -> str:
    """A node's text sliced from the source: `node.text` on a tree parsed through a read callback costs
    time that grows with the nesting depth, which made thousands of nested definitions quadratic."""
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _nodes_in_classes(root, deadline: float | None) -> set[int]:
    """Ids of the nodes whose nearest enclosing class-or-function is a class, in one walk down the tree.

    Walking down with a cursor is linear; asking each definition for its parents
    is not (tree-sitter finds a parent by descending from the root again), which
    made a file of thousands of nested definitions take minutes.
    """
    found: set[int] = set()
    cursor = root.walk()
    inside = [False]  # per level: whether that level's nodes sit in a class
    steps = 0
    while True:
        steps += 1
        if deadline is not None and steps % 4096 == 0 and time.thread_time() > deadline:
            raise TimeBudgetExceeded("reading the tags of deeply nested code took too long")
        node = cursor.node
        if inside[-1]:
            found.add(node.id)
        if node.type in _CONTAINERS:
            below = True
        elif node.type in _FUNCTIONS:
            below = False
        else:
            below = inside[-1]
        if cursor.goto_first_child():
            inside.append(below)
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found
            inside.pop()
