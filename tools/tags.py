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
import re
import time
from bisect import bisect_left
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
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

# The tag queries are files, one per language (as tree-sitter's own tags.scm are): tools/tag_queries/.
_QUERY_FILES = {
    "tree_sitter_python": ("python.scm",),
    "tree_sitter_javascript": ("javascript-common.scm", "javascript.scm"),
    "tree_sitter_typescript": ("javascript-common.scm", "typescript.scm"),
    "tree_sitter_go": ("go.scm",),
    "tree_sitter_rust": ("rust.scm",),
    "tree_sitter_java": ("java.scm",),
    "tree_sitter_c": ("c.scm",),
    "tree_sitter_cpp": ("cpp.scm",),
    "tree_sitter_ruby": ("ruby.scm",),
}


@lru_cache(maxsize=None)
def query_text(module_name: str) -> str:
    """The tags query for one grammar module, read from its .scm files (installed with the package)."""
    folder = files("gptoss_agent.tools").joinpath("tag_queries")
    return "".join(folder.joinpath(name).read_text(encoding="utf-8") for name in _QUERY_FILES[module_name])

_CONTAINERS = {"class_definition", "class_declaration", "class_body", "class", "impl_item", "class_specifier"}
_FUNCTIONS = {"function_definition", "function_declaration"}  # a class inside one of these is not its method
# whatever is defined inside one of these is local to it
_FUNCTION_BODIES = {"function_definition", "function_declaration", "function_expression", "arrow_function",
                    "method_definition", "function_item", "method_declaration", "func_literal", "method",
                    "closure_expression", "generator_function_declaration", "lambda", "constructor_declaration"}


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # class, function, method, type, struct, …
    line: int  # 1-based
    signature: str  # the declaration on one line, body left out
    scope: str = ""  # the enclosing type's declaration (`class Router`, `impl Serialize for Value`)
    scope_line: int = 0
    exported: bool = True  # by the language's rule: __all__/no underscore, pub, export, Capitalised, public


@dataclass(frozen=True)
class FileTags:
    definitions: tuple[Definition, ...]
    references: tuple[str, ...]  # sorted, each once: the marked ones (FROM, DECLARED, …) are a slice each


def unmarked(references: tuple[str, ...]) -> tuple[str, ...]:
    """The references that name something used, without the DECLARED, THROUGH_OBJECT and FROM entries (their
    markers sort together, before any name; IMPORTED's `^` sorts after the capitals and stays)."""
    start = bisect_left(references, DECLARED)
    return references[:start] + references[bisect_left(references, "A", start):]


def marked(references: tuple[str, ...], mark: str) -> tuple[str, ...]:
    """The references that start with `mark` (a one-character marker), found by bisection in sorted ones."""
    start = bisect_left(references, mark)
    return references[start:bisect_left(references, chr(ord(mark) + 1), start)]


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
    return Parser(language), Query(language, query_text(module_name))


def extract(path: str, source: bytes, *, budget_s: float | None = None) -> FileTags | None:
    """Definitions (with declaration lines, enclosing type and visibility) and referenced names in one file;
    None if unsupported.

    With `budget_s`, parsing and querying together stop at that many seconds
    and raise TimeBudgetExceeded instead of returning partial tags.
    """
    entry = GRAMMARS.get(PurePath(path).suffix.lower())
    if entry is None:
        return None
    parser, query = _tools(*entry)
    if entry[0] in ("tree_sitter_c", "tree_sitter_cpp"):
        source = blank_macro_lines(source)
    deadline = time.thread_time() + budget_s if budget_s is not None else None
    tree, matches = _parse_and_query(parser, query, source, budget_s)
    found: list[tuple[str, object, object]] = []  # (kind, definition node, name node)
    references: list[str] = []
    exports: set[str] | None = None  # Python's __all__, when the module declares one
    for number, (_, captures) in enumerate(matches):
        if deadline is not None and number % 1024 == 1023 and time.thread_time() > deadline:
            raise TimeBudgetExceeded(f"reading the tags took over {budget_s:g}s")
        if "ref" in captures:
            references.extend(_text(source, node) for node in captures["ref"])
            continue
        if "ref.attr" in captures:  # `x.render(…)`: a method's use (or a function's, through its module)
            for node in captures["ref.attr"]:
                name = _text(source, node)
                references.extend((name, THROUGH_OBJECT + name))
            continue
        if "ref.object" in captures:  # `Jsoup.parse(…)`: a call on a type names that type's member
            holder = _text(source, captures["ref.object"][0])
            if holder[:1].isupper():
                references.append(holder + "." + _text(source, captures["ref.member"][0]))
            continue
        if "ref.import" in captures:  # named in an import: the project's own name, whatever it shadows
            if "autoload" in captures and _text(source, captures["autoload"][0]) != "autoload":
                continue  # Ruby's `autoload :Builder, "rack/builder"` is its import; any other call is not
            for node in captures["ref.import"]:
                name = _text(source, node).lstrip(":")
                references.extend((name, IMPORTED + name))
            continue
        if "from.module" in captures:  # `from M import N`, `from M import *`: "@M:N", "@M:*" (FROM)
            module = "".join(_text(source, captures["from.module"][0]).replace("\\\n", "").split())
            if len(module) <= MAX_MODULE_CHARS:  # each name carries its module: a giant one is not recorded
                names = ["*"] if "from.star" in captures else [_text(source, n) for n in captures.get("from.name", ())]
                references.extend(f"{FROM}{module}:{name}" for name in names)
            continue
        if "export.all" in captures:
            if _text(source, captures["export.all"][0]) == "__all__":
                listed = _ALL_ITEM.findall(_text(source, captures["export.list"][0]))
                exports = (exports or set()) | set(listed)
                references.extend(DECLARED + name for name in listed)
            continue
        kind_key = next((k for k in captures if k.startswith("def.")), None)
        if kind_key is None or "name" not in captures:
            continue
        found.append((kind_key[4:], captures[kind_key][0], captures["name"][0]))
    places = _places(tree.root_node, [node for _, node, _ in found], deadline)
    language = entry[0]
    hidden = _ruby_hidden(source, [node for _, node, _ in found]) if language == "tree_sitter_ruby" else set()
    definitions: list[Definition] = []
    seen: dict[tuple, int] = {}
    scopes: dict[int, str] = {}
    for number, (kind, node, name_node) in enumerate(found):
        if deadline is not None and number % 1024 == 1023 and time.thread_time() > deadline:
            raise TimeBudgetExceeded(f"reading the tags took over {budget_s:g}s")
        name = _text(source, name_node)
        place = places.get(node.id)
        if place is None:
            continue
        if kind == "function" and place.in_class:
            kind = "method"
        scope_line, scope = 0, ""
        if place.container is not None:  # one declaration per type, however many members it has
            scope_line = place.container.start_point[0] + 1
            if place.container.id not in scopes:
                scopes[place.container.id] = declaration(source, place.container, language, None)
            scope = scopes[place.container.id]
        key = (name, scope_line)
        if (key in seen and node.start_byte >= seen[key]) or (name, "at", node.start_point[0]) in seen:
            continue  # overloads, property setters, `typedef struct x {…} x`: the first says it
        seen[key] = node.end_byte  # a same-named definition nested inside this one is another one
        seen[(name, "at", node.start_point[0])] = 0
        signature = declaration(source, node, language, place)
        exported = _exported(language, name, signature, scope, place, exports) and node.id not in hidden
        if language == "tree_sitter_ruby" and _ruby_nodoc(kind, signature, scope):
            exported = False
        definitions.append(Definition(name, kind, node.start_point[0] + 1, signature, scope, scope_line, exported))
    definitions.sort(key=lambda d: d.line)
    if language == "tree_sitter_go":
        definitions = _go_methods_under_their_type(definitions)
    return FileTags(tuple(definitions), tuple(sorted(set(references))))  # as the cache keeps them


_GO_RECEIVER = re.compile(r"func\s*\(\s*(?:\w+\s+)?\*?\s*(\w+)")


def _go_methods_under_their_type(definitions: list[Definition]) -> list[Definition]:
    """A Go method is declared outside its type, with a receiver (`func (c *Command) Execute()`): when the
    type is declared in the same file, the method gets it as its scope, like a method in a class body."""
    types = {d.name: d for d in definitions if d.kind == "type"}
    placed = []
    for definition in definitions:
        match = _GO_RECEIVER.match(definition.signature) if definition.kind == "method" else None
        owner = types.get(match.group(1)) if match else None
        if owner is not None and not definition.scope:
            definition = replace(definition, scope=owner.signature, scope_line=owner.line)
        placed.append(definition)
    return placed


_RUBY_HIDING = {"private", "protected"}
_NODOC = re.compile(r"#\s*:nodoc:")
_NODOC_ALL = re.compile(r"#\s*:nodoc:\s*all\b")


def _ruby_nodoc(kind: str, signature: str, scope: str) -> bool:
    """RDoc's `# :nodoc:` leaves a definition out of the documented API, and with it the methods directly
    inside a class or module so marked, though not the classes and modules nested there (`:nodoc: all` does
    those too)."""
    if _NODOC.search(signature):
        return True
    if kind in ("class", "module"):
        return _NODOC_ALL.search(scope) is not None
    return _NODOC.search(scope) is not None


def _ruby_hidden(source: bytes, nodes: list) -> set[int]:
    """The ids of the methods a Ruby class hides from its users: those after a bare `private` or `protected`
    line in its body (until `public`), wrapped in `private def …`, or named by `private :name` (and not
    named again by `public :name`). One pass over each class body, however many methods it has."""
    hidden: set[int] = set()
    bodies: dict[int, object] = {}
    for node in nodes:
        if node.type != "method":
            continue
        parent = node.parent
        if parent is not None and parent.type == "argument_list" and parent.parent is not None:
            callee = parent.parent.child_by_field_name("method")
            if callee is not None and _text(source, callee) in _RUBY_HIDING:
                hidden.add(node.id)
        elif parent is not None and parent.type == "body_statement":
            bodies.setdefault(parent.id, parent)
    for body in bodies.values():
        hiding, named, methods = False, {}, []  # named: method name → hidden by `private :x` / shown by `public :x`
        for child in body.named_children:
            if child.type == "identifier":
                word = _text(source, child)
                hiding = word in _RUBY_HIDING or (hiding and word != "public")
            elif child.type == "call":
                callee = child.child_by_field_name("method")
                arguments = child.child_by_field_name("arguments")
                word = _text(source, callee) if callee is not None else ""
                if arguments is not None and (word in _RUBY_HIDING or word == "public"):
                    named.update(dict.fromkeys(_ruby_method_names(source, arguments), word != "public"))
            elif child.type == "method":
                methods.append(child)
                if hiding:
                    hidden.add(child.id)
        for method in methods:
            name = method.child_by_field_name("name")
            verdict = named.get(_text(source, name)) if name is not None else None
            if verdict is True:
                hidden.add(method.id)
            elif verdict is False:
                hidden.discard(method.id)
    return hidden


def _ruby_method_names(source: bytes, arguments) -> list[str]:
    """The method names `private`/`public` lists: `:a, "b"`, `%i[c d]`, `[:e]`."""
    items = [item for argument in arguments.named_children
             for item in (argument.named_children if argument.type in ("symbol_array", "array") else (argument,))]
    return [_text(source, item).lstrip(":").strip("\"'") for item in items
            if item.type in ("simple_symbol", "string", "bare_symbol")]


# A line holding nothing but an upper-case macro (with arguments, or a `:` like an access label): an attribute,
# an export or namespace marker, a template head, which the C/C++ grammars cannot know are not code and so
# misparse the whole class that follows (`NLOHMANN_BASIC_JSON_TPL_DECLARATION`, `JSON_HEDLEY_WARN_UNUSED_RESULT`,
# `JSON_PRIVATE_UNLESS_TESTED:`, `Q_OBJECT`). Not a line continuing a `#define` (it ends the previous line in `\`).
_MACRO_LINE = re.compile(
    rb"""(?m)(?<![\\]\n)^[ \t]*[A-Z][A-Z0-9]*_[A-Z0-9_]*[ \t]*
         (?:\((?:[^()\n]|\([^()\n]*\))*\)[ \t]*|:[ \t]*)?(?://[^\n]*)?$""", re.X)


# `#if X` … `#endif` around a fragment with no statement or block in it (`constexpr`, an attribute): the
# directives split one declaration in two for the grammar; without them the fragment reads as part of it.
_FRAGMENT_CONDITIONAL = re.compile(
    rb"(?m)^([ \t]*#[ \t]*if[^\n]*)\n((?:(?![ \t]*#)[^;{}\n]*\n){1,3})([ \t]*#[ \t]*endif[^\n]*)$")


def blank_macro_lines(source: bytes) -> bytes:
    """C/C++ source with macro-only lines and the directives around declaration fragments turned to spaces,
    so every byte offset and line number stays."""
    source = _MACRO_LINE.sub(lambda m: b" " * len(m.group(0)), source)
    return _FRAGMENT_CONDITIONAL.sub(
        lambda m: b" " * len(m.group(1)) + b"\n" + m.group(2) + b" " * len(m.group(3)), source)


IMPORTED = "^"  # a reference entry "^name": `name` is imported by name somewhere in the file
THROUGH_OBJECT = "->"  # "->name": `name` called through an object (`x.name(…)`); Python, JS/TS and Go mark
#                        these, so their other uses of `name` (bare calls, imports) are ones no method answers
MAX_MODULE_CHARS = 200  # a module name longer than this (real ones are under 100) is not recorded
FROM = "@"  # "@M:N": the file takes `N` from module `M` (`from .models import Model`, relative dots kept);
#            "@M:*" a star import. Python marks these (tools/repomap_imports.py resolves them to files)
DECLARED = "+"  # "+name": Python's `__all__` lists `name` (what a package's `__init__.py` declares it offers)
_ALL_ITEM = re.compile(r"""["']([A-Za-z_][A-Za-z0-9_]*)["']""")
_SIGNATURE_CHARS = 160
_PY_HEADER_TAIL = re.compile(r":[ \t]*(?:#[^\n]*)?\s*$")


def declaration(source: bytes, node, language: str, place: "_Place | None") -> str:
    """The declaration a reader needs, on one line: decorators and annotations folded in, the `export` or
    `type` keyword kept, the body left out, long parameter lists trimmed so the name, the parameters'
    start and the return type stay."""
    prefix = ""
    head = node
    if place is not None:
        parent, grandparent = place.parent, place.grandparent
        if node.type == "variable_declarator" and parent is not None and parent.type in (
                "lexical_declaration", "variable_declaration"):
            head, parent = parent, grandparent
        if parent is not None and parent.type == "export_statement":
            head = parent
        elif parent is not None and parent.type == "decorated_definition":
            decorators = [_text(source, c) for c in parent.children if c.type == "decorator"]
            prefix = " ".join(_squash(d)[:60] for d in decorators) + " "
        if node.type == "type_spec" and language == "tree_sitter_go":
            prefix = "type "
    body = _body(node)
    start = head.start_byte
    end = body.start_byte if body is not None else node.end_byte
    if body is None or language == "tree_sitter_ruby":
        end = _header_end(source, start, end, language)
    text = source[start:min(end, start + 4096)].decode("utf-8", "replace")
    if language == "tree_sitter_python" and body is not None:  # `class A:  # a comment` ends at its colon
        text = _PY_HEADER_TAIL.sub(":", text)
    text = _squash(text)
    if language != "tree_sitter_python":
        text = text.rstrip("{ ").rstrip()
    return trim_signature(prefix + text)


def trim_signature(text: str, limit: int = _SIGNATURE_CHARS) -> str:
    """Shorten a long declaration: default values first, then the parameters from the first one that no longer
    fits, so the name, whole leading parameters and the return type stay."""
    if len(text) <= limit:
        return text
    text = re.sub(r"(=\s*)(\"[^\"]*\"|'[^']*'|[^,()\[\]{}]+)", r"\1…", text)
    if len(text) <= limit:
        return text
    open_at = text.find("(")
    close_at = text.rfind(")")
    if 0 <= open_at < close_at and open_at < limit - 40:
        tail = text[close_at:]
        tail = tail if len(tail) <= 40 else tail[:39] + "…"
        keep = max(limit - len(tail) - 2, open_at + 1)
        cut = _last_top_level_comma(text, open_at, keep)  # whole parameters stay whole
        return (text[:cut + 2] if cut > open_at else text[:keep]) + "…" + tail
    return text[:limit - 1] + "…"


def _last_top_level_comma(text: str, open_at: int, before: int) -> int:
    """Where the last parameter that ends before `before` ends: the last `, ` directly inside the parameter
    list opened at `open_at` (not inside a nested type or default), or -1."""
    depth, found = 0, -1
    for at in range(open_at + 1, min(before, len(text) - 1)):
        char = text[at]
        if char in "([{<":
            depth += 1
        elif char in ")]}>" and depth:
            depth -= 1
        elif char == "," and depth == 0 and text[at + 1] == " ":
            found = at
    return found


def _squash(text: str) -> str:
    return " ".join(text.split())


def _body(node):
    body = node.child_by_field_name("body")
    if body is None and node.type in ("variable_declarator", "assignment_expression"):
        value = node.child_by_field_name("value") or node.child_by_field_name("right")
        body = value.child_by_field_name("body") if value is not None else None
    return body


def _header_end(source: bytes, start: int, end: int, language: str) -> int:
    """Where a declaration without a body field stops: at `{` or `;` outside brackets, or a line's end
    in the languages whose declarations are one line."""
    depth = 0
    line_ends = language in ("tree_sitter_ruby", "tree_sitter_python")
    for offset in range(start, min(end, start + 4096)):
        byte = source[offset]
        if byte in b"([<":
            depth += 1
        elif byte in b")]>" and depth:
            depth -= 1
        elif depth == 0 and (byte in b"{;" or (byte == 10 and line_ends)):
            return offset
        elif depth == 0 and byte == 58 and language == "tree_sitter_python" and source[offset + 1:offset + 2] in (
                b"\n", b" ", b"\r", b"#", b""):
            return offset + 1
    return min(end, start + 4096)


def _exported(language: str, name: str, signature: str, scope: str, place: "_Place",
              exports: set[str] | None) -> bool:
    """Whether a definition is part of what its package shows others, by each language's own rule."""
    if place.in_function:
        return False
    if language == "tree_sitter_python":
        if place.container is None and exports is not None:
            return name in exports
        return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))
    if language == "tree_sitter_go":
        return name[:1].isupper()
    if language == "tree_sitter_rust":
        return (signature.startswith(("pub ", "pub fn", "pub struct"))
                or scope.startswith(("trait ", "pub trait ", "unsafe trait", "pub unsafe trait"))
                or (scope.startswith(("impl", "unsafe impl")) and " for " in scope))
    if language == "tree_sitter_java":
        words = re.sub(r"@[\w.]+(\([^)]*\))?", " ", signature).split("(")[0].split()
        return "public" in words or "protected" in words or scope.startswith(("interface", "public interface"))
    if language in ("tree_sitter_javascript", "tree_sitter_typescript"):
        if name.startswith(("_", "#")) or signature.startswith(("private ", "protected ")):
            return False
        if "=" in signature.split("(")[0] and "." in signature.split("=")[0]:
            return True  # `app.use = function use(…)`: hung on an object others reach
        return place.exported or not place.module_exports
    if language in ("tree_sitter_c", "tree_sitter_cpp"):  # `static` hides a file's function, not a member
        return bool(scope) or (not signature.startswith("static ") and " static " not in signature.split("(")[0])
    return not name.startswith("_")


@dataclass
class _Place:
    """Where a definition sits: its parents (for the declaration's decorators and keywords), its enclosing
    type, whether a class (not a function) encloses it and whether an `export` does."""

    parent: object
    grandparent: object
    container: object
    in_class: bool
    exported: bool
    in_function: bool = False  # inside a function's body: a local helper nobody outside can call
    module_exports: bool = False  # the file uses ES `export` at all (else everything is neutral)


_SCOPES = {"class_definition", "class_declaration", "class", "impl_item", "trait_item", "class_specifier",
           "interface_declaration", "abstract_class_declaration", "enum_declaration", "module",
           "struct_specifier", "enum_item"}


def _places(root, nodes: list, deadline: float | None) -> dict[int, _Place]:
    """For each wanted definition node, its _Place, in one walk down the tree that enters only the
    subtrees where some wanted node starts (expressions and bodies without definitions are skipped).

    Walking down with a cursor is linear; asking each definition for its parents
    is not (tree-sitter finds a parent by descending from the root again), which
    made a file of thousands of nested definitions take minutes.
    """
    found: dict[int, _Place] = {}
    if not nodes:
        return found
    wanted = {node.id for node in nodes}
    starts = sorted(node.start_byte for node in nodes)
    cursor = root.walk()
    # per level: (node, nearest scope node, in a class rather than a function, under an export, in a function)
    stack: list[tuple[object, object, bool, bool, bool]] = [(None, None, False, False, False)]
    any_export = False
    steps = 0
    while True:
        steps += 1
        if deadline is not None and steps % 4096 == 0 and time.thread_time() > deadline:
            raise TimeBudgetExceeded("reading the tags of deeply nested code took too long")
        node = cursor.node
        parent, scope, inside, exported, in_function = stack[-1]
        if node.id in wanted:
            grandparent = stack[-2][0] if len(stack) > 1 else None
            found[node.id] = _Place(parent, grandparent, scope, inside, exported, in_function)
        kind = node.type
        below_scope = node if kind in _SCOPES and len(stack) > 1 else scope
        if kind in _CONTAINERS:
            below = True
        elif kind in _FUNCTIONS:
            below = False
        else:
            below = inside
        if kind == "export_statement":
            any_export = True
        first = bisect_left(starts, node.start_byte)
        holds_wanted = first < len(starts) and starts[first] < node.end_byte
        if holds_wanted and cursor.goto_first_child():
            stack.append((node, below_scope, below, exported or kind == "export_statement",
                          (in_function or kind in _FUNCTION_BODIES) and kind not in _SCOPES))
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                for place in found.values():
                    place.module_exports = any_export
                return found
            stack.pop()


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
