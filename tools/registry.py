"""Tools as typed functions: `@tool` derives the JSON schema from the signature and docstring.

The registry maps Harmony recipients (`repo_browser.open_file`,
`functions.run_tests`) to tools, and forgives what gpt-oss really writes: a
missing or wrong namespace when the name is unambiguous, `json` glued to the
name, argument aliases (`file_path`, `start_line`, `command`), a bare string
for a tool that takes one. Everything else becomes a short error listing the
valid tools or arguments, so the model can correct itself.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, get_args, get_origin

from gptoss_agent.agent.model.completion import ToolCallRequest, decode_arguments
from gptoss_agent.agent.types import ToolDeclaration, ToolResult

ARGUMENT_ALIASES = {"file_path": "path", "filepath": "path", "filename": "path", "file": "path",
                    "start_line": "line_start", "end_line": "line_end", "command": "cmd", "pattern": "query",
                    "limit": "max_results", "input": "patch", "diff": "patch", "commit_message": "message"}
_ARGS_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$", re.MULTILINE)
_ARG_LINE = re.compile(r"^\s+(\w+)\s*(?:\([^)]*\))?:\s*(.+)$")


class ToolError(Exception):
    """A tool's failure the model can act on: raise it with that message; the model reads it as a failed result.

    `@tool` turns it into `ToolResult(ok=False, message)` (as gpt-oss's reference
    tools share one error decorator), so a tool states each check and its message
    once instead of building an error result at every early exit.
    """


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about a tool, and what the loop needs to know."""

    recipient: str
    description: str
    parameters: dict[str, Any]
    mutating: bool = False
    string_argument: str | None = None  # the parameter a bare-string call fills

    @property
    def namespace(self) -> str:
        return self.recipient.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.recipient.split(".", 1)[1]

    def declaration(self) -> ToolDeclaration:
        return ToolDeclaration(self.namespace, self.name, self.description, self.parameters)


@dataclass
class Tool:
    spec: ToolSpec
    function: Callable[..., ToolResult]

    def __call__(self, ctx, **arguments) -> ToolResult:
        return self.function(ctx, **arguments)


def tool(recipient: str, *, mutating: bool = False, string_argument: str | None = None):
    """Make a function `f(ctx, **arguments) -> ToolResult` a tool named `recipient`."""

    def wrap(function: Callable[..., ToolResult]) -> Tool:
        description, docs = _parse_docstring(inspect.getdoc(function) or "")
        spec = ToolSpec(recipient, description, _schema(function, docs), mutating, string_argument)
        return Tool(spec, _errors_as_results(function))

    return wrap


def _errors_as_results(function: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
    """The tool function, with a ToolError it raises returned as the failed result it describes."""

    @functools.wraps(function)
    def call(ctx, **arguments) -> ToolResult:
        try:
            return function(ctx, **arguments)
        except ToolError as error:
            return ToolResult.error(str(error))

    return call


@dataclass
class Registry:
    """Name → tool, with the forgiving lookup gpt-oss needs."""

    tools: dict[str, Tool] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def add(self, *items: Tool, aliases: dict[str, str] | None = None) -> "Registry":
        for item in items:
            self.tools[item.spec.recipient] = item
        self.aliases.update(aliases or {})
        return self

    def declarations(self) -> list[ToolDeclaration]:
        return [t.spec.declaration() for t in self.tools.values()]

    def resolve(self, recipient: str) -> Tool | None:
        """The tool a recipient means, or None."""
        name = recipient.strip()
        for candidate in (name, re.sub(r"(json|code)$", "", name)):
            if candidate in self.tools:
                return self.tools[candidate]
            if candidate in self.aliases:
                return self.tools[self.aliases[candidate]]
            short = candidate.rsplit(".", 1)[-1]
            matches = [t for t in self.tools.values() if t.spec.name == short]
            if len(matches) == 1:
                return matches[0]
            if short in self.aliases:
                return self.tools[self.aliases[short]]
        return None

    def prepare(self, request: ToolCallRequest) -> tuple[Tool | None, dict[str, Any] | None, str | None]:
        """(tool, arguments, error): the checked call, or a message for the model."""
        found = self.resolve(request.recipient)
        if found is None:
            return None, None, (f"There is no tool named {request.recipient!r}. Valid tools: "
                                f"{', '.join(sorted(self.tools))}.")
        arguments, error = decode_arguments(request)
        if error is not None:
            return found, None, error
        if isinstance(arguments, str):
            if found.spec.string_argument is None:
                return found, None, (f"{found.spec.recipient} takes a JSON object with "
                                     f"{_describe_params(found.spec)}, not a bare string.")
            arguments = {found.spec.string_argument: arguments}
        arguments, error = _check_arguments(found.spec, arguments)
        return found, arguments, error


# ---------------------------------------------------------------------- schema

def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    match = _ARGS_SECTION.search(doc)
    if not match:
        return doc.strip(), {}
    description = doc[:match.start()].strip()
    params: dict[str, str] = {}
    last = None
    for line in doc[match.end():].splitlines():
        arg = _ARG_LINE.match(line)
        if arg:
            last = arg.group(1)
            params[last] = arg.group(2).strip()
        elif last and line.strip():
            params[last] += " " + line.strip()
    return description, params


def _schema(function: Callable[..., Any], docs: dict[str, str]) -> dict[str, Any]:
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in list(inspect.signature(function).parameters.items())[1:]:  # skip ctx
        prop = _json_type(hints.get(name, str))
        if name in docs:
            prop["description"] = docs[name]
        if param.default is inspect.Parameter.empty:
            required.append(name)
        elif param.default is not None:
            prop["default"] = param.default
        properties[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _json_type(hint: Any) -> dict[str, Any]:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _json_type(options[0])
        return {"anyOf": [_json_type(a) for a in options]}
    if origin is Literal:
        return {"type": "string", "enum": list(get_args(hint))}
    if origin in (list, tuple):
        args = get_args(hint)
        return {"type": "array", "items": _json_type(args[0]) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object"}
    return {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
            bool: {"type": "boolean"}}.get(hint, {"type": "string"})


# ---------------------------------------------------------------------- checking

def _describe_params(spec: ToolSpec) -> str:
    props = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    return ", ".join(f"{name}{'' if name in required else '?'}: {_type_name(p)}" for name, p in props.items()) or "no arguments"


def _type_name(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " | ".join(_type_name(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"{_type_name(prop.get('items', {}))}[]"
    return prop.get("type", "any")


def _encodable(value: Any) -> bool:
    """False when a string inside `value` cannot become bytes even the way file names do (surrogateescape):
    such a value would crash every tool that writes, runs or looks it up."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return True


def _check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    props = spec.parameters.get("properties", {})
    out: dict[str, Any] = {}
    unknown = []
    for key, value in arguments.items():
        name = key if key in props else ARGUMENT_ALIASES.get(key, key)
        if name not in props:
            unknown.append(key)
            continue
        coerced, ok = _coerce(value, props[name])
        if not ok:
            return None, (f"Argument {key!r} of {spec.recipient} must be {_type_name(props[name])}, "
                          f"got {type(value).__name__}. Arguments: {_describe_params(spec)}.")
        if not _encodable(coerced):
            return None, (f"Argument {key!r} of {spec.recipient} holds a lone surrogate (such as \\ud800), "
                          "which is not text any file, path or command can hold. Send valid Unicode.")
        out[name] = coerced
    if unknown:
        return None, (f"{spec.recipient} has no argument {', '.join(repr(u) for u in unknown)}. "
                      f"Arguments: {_describe_params(spec)}.")
    missing = [name for name in spec.parameters.get("required", []) if name not in out]
    if missing:
        return None, (f"{spec.recipient} needs {', '.join(repr(m) for m in missing)}. "
                      f"Arguments: {_describe_params(spec)}.")
    return out, None


def _coerce(value: Any, prop: dict[str, Any]) -> tuple[Any, bool]:
    if "anyOf" in prop:
        natives = {"string": str, "array": list, "object": dict, "boolean": bool, "integer": int, "number": (int, float)}
        ordered = sorted(prop["anyOf"], key=lambda o: not isinstance(value, natives.get(o.get("type"), ())))
        for option in ordered:
            coerced, ok = _coerce(value, option)
            if ok:
                return coerced, True
        return value, False
    kind = prop.get("type")
    if value is None:
        return None, True
    if kind == "string":
        if "enum" in prop and value not in prop["enum"]:
            return value, False
        return (value, True) if isinstance(value, str) else (str(value), isinstance(value, (int, float)))
    if kind == "integer":
        if isinstance(value, bool):
            return value, False
        if isinstance(value, int):
            return value, True
        if isinstance(value, float) and value.is_integer():
            return int(value), True
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) <= 30:
            return int(value), True  # longer digit strings are refused: int() raises past 4300 digits
        return value, False
    if kind == "number":
        return (float(value), True) if isinstance(value, (int, float)) and not isinstance(value, bool) else (value, False)
    if kind == "boolean":
        if isinstance(value, bool):
            return value, True
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", True
        return value, False
    if kind == "array":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value, False
        items = prop.get("items", {})
        coerced = [_coerce(v, items) for v in value] if items else [(v, True) for v in value]
        return [c for c, _ in coerced], all(ok for _, ok in coerced)
    if kind == "object":
        return value, isinstance(value, dict)
    return value, True
