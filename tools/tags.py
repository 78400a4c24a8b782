"""Definitions and references in source files, from tree-sitter tag queries written for this project.

Pure: bytes and a language in, tags out. Grammars come from per-language PyPI
wheels (compiled in; nothing is fetched). A file with syntax errors still
yields what tree-sitter recovers.
"""

from __future__ import annotations

import importlib
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


def language_for(path: str) -> str | None:
    """The grammar module for a path, or None for a language we do not map."""
    entry = GRAMMARS.get(PurePath(path).suffix.lower())
    return entry[0] if entry else None


@lru_cache(maxsize=None)
def _tools(module_name: str, function: str):
    from tree_sitter import Language, Parser, Query

    language = Language(getattr(importlib.import_module(module_name), function)())
    return Parser(language), Query(language, QUERIES[module_name])


def extract(path: str, source: bytes) -> FileTags | None:
    """Definitions (with signature lines) and referenced names in one file; None if unsupported."""
    entry = GRAMMARS.get(PurePath(path).suffix.lower())
    if entry is None:
        return None
    from tree_sitter import QueryCursor

    parser, query = _tools(*entry)
    tree = parser.parse(source)
    definitions: list[Definition] = []
    references: list[str] = []
    for _, captures in QueryCursor(query).matches(tree.root_node):
        if "ref" in captures:
            references.extend(node.text.decode("utf-8", "replace") for node in captures["ref"])
            continue
        kind_key = next((k for k in captures if k.startswith("def.")), None)
        if kind_key is None or "name" not in captures:
            continue
        node, name = captures[kind_key][0], captures["name"][0]
        kind = kind_key[4:]
        if kind == "function" and _inside_container(node):
            kind = "method"
        first_line = source[node.start_byte:node.end_byte].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        definitions.append(Definition(name.text.decode("utf-8", "replace"), kind, node.start_point[0] + 1,
                                      first_line[:160]))
    definitions.sort(key=lambda d: d.line)
    return FileTags(tuple(definitions), tuple(references))


def _inside_container(node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in _CONTAINERS:
            return True
        if parent.type in ("function_definition", "function_declaration"):
            return False
        parent = parent.parent
    return False
