"""Which definitions the repo map shows first: a project's public API, found from how the code uses it.

Pure: an index of tags in, an ordered list of (file, definition, score) out.

Files are ranked by PageRank over "uses a name defined in" edges, personalised
toward the task's files. A definition then scores by the rank of the *other*
files that use its name, shared among the files that define that name, and is
weighed by what a reader of the project's API needs:
- library code over tests, examples, benchmarks and docs (from each
  language's conventional paths and file names);
- what the package exports (`__all__` or no underscore, `pub`, `export`,
  Capitalised Go names, `public` Java members) over internals;
- a name that shadows a builtin (`type`, `super`, `toString`) counts little
  unless some file imports it by name: a call to `type(x)` is rarely the
  project's own `type`;
- names the task text mentions, and the task's files, count most;
- uses from tests and examples (the API's clients) count at least like an average file's, those from the
  package's entry file (`index.ts`, `__init__.py`, `lib.rs`: what its users load) like several clients', uses a
  file makes of a name it defines itself (an amalgamated copy) not at all;
- a public type's own members share its score (a method nobody in the library calls is still its API);
- each further definition of a name already ranked tells less than the first.
A type's members also compete by name alone (`with_member_names`): a name costs a seventh of a declaration
line, so a map can say what many more types offer.
"""

from __future__ import annotations

import builtins
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Iterable

from gptoss_agent.tools.repomap_imports import PythonImports
from gptoss_agent.tools.tags import IMPORTED, THROUGH_OBJECT, Definition, marked, unmarked

SUPPORTING = 0.05  # a definition in a test, example, benchmark or doc file
INTERNAL = 0.2  # a definition its package does not export
SHADOWING = 0.1  # a name that shadows a builtin, unless the package re-exports it or many files import it
IMPORTS_TO_OWN = 3
QUALIFIED = 10.0  # a use naming the type (`Jsoup.parse(…)`) is as specific as a name with one definer,
#                  where a bare member name (`parse`) is shared by ~10
MENTIONED = 10.0  # a name the task text mentions
DEFINERS_POWER = 1.0  # a name defined in n files: each definition gets 1/n^this of its uses
REEXPORTED = 3.0  # a name the package's entry file imports or re-exports (`__init__.py`, `index.ts`, `lib.rs`)
_ENTRY_FILES = {"__init__.py", "index.js", "index.ts", "index.mjs", "lib.rs", "mod.rs", "main.rs"}
ENTRY_USE = 5.0  # the entry file's imports and re-exports stand for the package's users: like this many clients' uses
SUPPORTING_REFERENCE = 1.0  # a use from a test or example still says "this is the API", with less weight
MEMBER_SHARE = 2.0  # times its type's score, shared among the type's exported members
REPEATED = 0.5  # each further definition of a name ranked above
CLIENT_USE = 1.0  # a use from a test or example counts at least as an average file's (1/files)
NAME_ONLY = 6.0  # a member's name alone costs about a seventh of its declaration line
TYPE_KINDS = {"class", "interface", "struct", "trait", "type", "module", "enum"}

_SUPPORT_DIRS = {"test", "tests", "testing", "__tests__", "spec", "specs", "example", "examples", "sample",
                 "samples", "demo", "demos", "bench", "benches", "benchmark", "benchmarks", "doc", "docs",
                 "fuzz", "fuzzing", "fixtures", "testdata", "e2e", "integration_tests", "perf", "tools",
                 "scripts", "contrib_tests", "single_include", "amalgamation"}
_SUPPORT_FILE = re.compile(
    r"""(?x)^(?: test_.*\.py | .*_tests?\.py | conftest\.py | setup\.py
        | .*_test\.go
        | .*\.(?:test|spec|bench)\.[cm]?[jt]sx?
        | (?:Test.*|.*Tests?|.*IT)\.java
        | .*_(?:spec|test)\.rb
        | test_.*\.[ch](?:pp)? | .*_test\.[ch](?:pp|c)? )$""")
_SHADOWED = {
    "tree_sitter_python": {n for t in (builtins, list, dict, str, set, bytes, int, object) for n in dir(t)
                           if not n.startswith("__") or n in ("__init__", "__call__")},
    # what every object, array, string, promise and map already has in JavaScript
    "js": {"constructor", "toString", "valueOf", "hasOwnProperty", "toJSON", "forEach", "push", "pop", "shift",
           "unshift", "slice", "splice", "concat", "join", "indexOf", "includes", "find", "some", "every",
           "sort", "reduce", "filter", "map", "keys", "values", "entries", "get", "set", "has", "delete",
           "clear", "add", "then", "catch", "finally", "call", "apply", "bind", "split", "replace", "trim",
           "match", "test", "exec", "log", "error", "warn", "assign", "create", "freeze", "stringify", "parse",
           "resolve", "reject", "next", "return", "throw", "length", "from", "of", "toLowerCase",
           "toUpperCase", "startsWith", "endsWith", "charAt", "substring", "isArray", "require", "emit"},
    "java": {"toString", "equals", "hashCode", "clone", "finalize", "getClass", "compareTo", "iterator", "size",
             "get", "put", "add", "remove", "contains", "isEmpty", "length", "close", "run", "call", "main"},
    "rust": {"new", "default", "clone", "fmt", "from", "into", "eq", "ne", "cmp", "partial_cmp", "hash", "drop",
             "deref", "deref_mut", "as_ref", "as_mut", "next", "len", "is_empty", "iter", "to_string",
             "to_owned", "borrow", "index", "index_mut", "try_from", "from_iter", "into_iter", "extend"},
    "go": {"String", "Error", "Len", "Less", "Swap", "Read", "Write", "Close", "ServeHTTP", "main", "init"},
    "c": {"main", "malloc", "free", "printf", "memcpy", "strlen"},
    # Ruby's protocols: construction, conversion, comparison, reflection, the IO and collection duck types
    "ruby": {"initialize", "initialize_copy", "to_s", "to_str", "to_h", "to_hash", "to_a", "to_ary", "to_proc",
             "inspect", "each", "call", "==", "===", "=~", "<=>", "[]", "[]=", "hash", "eql?", "coerce",
             "method_missing", "respond_to_missing?", "respond_to?", "freeze", "dup", "clone", "read", "write",
             "gets", "rewind", "close", "closed?", "flush", "empty?", "include?", "key?", "match?", "size",
             "length"},
}
_LANGUAGE_OF = {".py": "tree_sitter_python", ".pyi": "tree_sitter_python", ".js": "js", ".jsx": "js",
                ".mjs": "js", ".cjs": "js", ".ts": "js", ".tsx": "js", ".java": "java", ".rs": "rust",
                ".go": "go", ".c": "c", ".h": "c", ".cc": "c", ".cpp": "c", ".cxx": "c", ".hpp": "c",
                ".hh": "c", ".rb": "ruby"}


_INTERNAL_DIRS = {"internal", "detail", "details", "impl", "private"}


def _in_internal(path: str) -> bool:
    """Under an `internal/` folder (Go forbids importing it from outside, and JS/TS and Java packages follow
    suit) or its C++ and Java siblings `detail/` and `impl/`: only what the package's entry file re-exports
    from there is public."""
    return any(part in _INTERNAL_DIRS for part in path.split("/")[:-1])


def _is_entry_file(path: str) -> bool:
    """The file a package's users load first, whose imports and re-exports name its public API: `__init__.py`,
    `index.ts`, `lib.rs`, …, and a Ruby gem's `lib/<gem>.rb` (its `autoload`s and `require`s)."""
    return path.rsplit("/", 1)[-1] in _ENTRY_FILES or re.fullmatch(r"(?:.*/)?lib/[^/]+\.rb", path) is not None


@lru_cache(maxsize=65536)  # one scope string per type, asked once per member
def _type_name(scope: str) -> str:
    """`Jsoup` from `public class Jsoup`, `Foo` from `impl<T> Foo<T>` or `class Foo(Base):`."""
    text = scope.split("//", 1)[0]  # `class basic_json // NOLINT(…)`
    for _ in range(4):  # generic parameters, nested a few deep
        text = re.sub(r"<[^<>]*>", "", text)
    text = re.split(r"[(:{]| extends | implements ", text, maxsplit=1)[0]
    words = text.split(" for ", 1)[-1].split()  # `impl Display for Value` is Value's
    return words[-1] if words else ""


@lru_cache(maxsize=65536)
def _base_names(scope: str) -> tuple[str, ...]:
    """The types a type's declaration says it extends: `Base` and `Mixin` from `class A(Base, Mixin):`,
    `class A extends Base implements I`, `class A : public Base`, `class A < Base`."""
    text = scope.split("//", 1)[0]
    for _ in range(4):
        text = re.sub(r"<[^<>]*>", "", text)
    match = re.search(r"\((.*)\)\s*:?\s*$|\bextends\b(.*)|\bimplements\b(.*)|[^:]:(?!:)(.*)|\s<\s(.*)", text)
    if not match:
        return ()
    listed = next(group for group in match.groups() if group is not None)
    listed = re.sub(r"\bimplements\b|\bpublic\b|\bprotected\b|\bprivate\b|\bvirtual\b|\w+=[^,]*", ",", listed)
    return tuple(word.split(".")[-1].split("::")[-1] for word in re.findall(r"[\w.:]+", listed))


def _overrides(ranked: list[tuple[str, Definition, float]]) -> set[tuple[str, int]]:
    """(file, line) of each method that redefines one its type inherits from a project type named in its
    declaration (`class ForeignKey(ForeignObject)` redefining `get_attname`): an override, documented at the
    base, like Java's `@Override` (followed up to four levels of bases)."""
    members: dict[str, set[str]] = defaultdict(set)
    bases: dict[str, tuple[str, ...]] = {}
    for _, definition, _ in ranked:
        if definition.scope and definition.kind not in TYPE_KINDS:
            owner = _type_name(definition.scope)
            members[owner].add(definition.name)
            bases.setdefault(owner, _base_names(definition.scope))
    found = set()
    for path, definition, _ in ranked:
        if not definition.scope or definition.kind in TYPE_KINDS:
            continue
        level = [b for b in bases.get(_type_name(definition.scope), ()) if b != _type_name(definition.scope)]
        seen: set[str] = set()
        for _ in range(4):
            if any(definition.name in members.get(base, ()) for base in level):
                found.add((path, definition.line))
                break
            seen.update(level)
            level = [b for base in level for b in bases.get(base, ()) if b not in seen]
    return found


def _names_its_type(name: str, scope: str) -> bool:
    """`Foo(…)` inside `class Foo`, `impl<T> Foo<T>`: a constructor (its type's own line says as much)."""
    return _type_name(scope) == name


def file_role(path: str) -> float:
    """1.0 for library code; SUPPORTING for tests, examples, benchmarks and docs, by path and file name."""
    parts = PurePosixPath(path).parts
    if any(part.lower() in _SUPPORT_DIRS for part in parts[:-1]) or _SUPPORT_FILE.match(parts[-1]):
        return SUPPORTING
    return 1.0


def shadows_builtin(name: str, path: str) -> bool:
    """Whether `name` is one every program in this file's language already has (a builtin, a method of
    every object): uses of it say little about the project's own definition."""
    return name in _SHADOWED.get(_LANGUAGE_OF.get(_suffix(path), ""), ())


@lru_cache(maxsize=65536)
def _suffix(path: str) -> str:
    return PurePosixPath(path).suffix.lower()


def rank_files(index, focus: Iterable[str] = (), *, roles: dict[str, float] | None = None,
               also: Iterable[str] = (), damping: float = 0.85, iterations: int = 40) -> dict[str, float]:
    """PageRank over 'uses a name defined in' edges, personalised toward `focus` files and, with half the
    weight, the files in `also` (those defining a name the task mentions)."""
    roles = roles if roles is not None else {p: file_role(p) for p in index.files}
    definers: dict[str, list[str]] = defaultdict(list)
    for path, tags in index.files.items():
        for name in {d.name for d in tags.definitions}:
            definers[name].append(path)
    edges: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path, tags in index.files.items():
        for name in tags.references:
            targets = definers.get(name)
            if not targets or len(targets) > 20:  # names defined everywhere (run, get) say little
                continue
            for target in targets:
                if target != path:
                    edges[path][target] += 1.0 / len(targets)
    nodes = list(index.files)
    if not nodes:
        return {}
    focus = [f for f in focus if f in index.files]
    also = {f for f in also if f in index.files}
    if focus or also:
        personal = {n: (1.0 if n in focus else 0.5 if n in also else 0.0) for n in nodes}
    else:
        personal = {n: 1.0 for n in nodes}
    total = sum(personal.values())
    personal = {n: v / total for n, v in personal.items()}
    rank = dict(personal)
    out_weight = {n: sum(edges[n].values()) if n in edges else 0.0 for n in nodes}
    for _ in range(iterations):
        dangling = sum(rank[n] for n in nodes if out_weight[n] == 0)
        new = {n: (1 - damping) * personal[n] + damping * dangling * personal[n] for n in nodes}
        for source, targets in edges.items():
            if not out_weight[source]:
                continue
            share = damping * rank[source] / out_weight[source]
            for target, weight in targets.items():
                new[target] += share * weight
        rank = new
    return rank


def mentioned_identifiers(text: str) -> set[str]:
    """The words of a task text that read as code, for personalising: anything in backticks or followed by
    `(`, snake_case, camelCase and inner capitals (`parse_args`, `QuerySet`, `cJSON_Parse`), a
    Capitalised word inside a sentence (`the Router`), never plain English (`fix the tests`)."""
    text = text or ""
    found = set(re.findall(r"`([A-Za-z_][\w.:]*)`", text))
    found = {part for word in found for part in re.split(r"[.:]+", word) if part}
    for match in re.finditer(r"(?<!\w)([A-Za-z_][A-Za-z0-9_]{2,})(\()?", text):
        word, call = match.group(1), match.group(2)
        before = text[:match.start()].rstrip()
        inside_sentence = bool(before) and before[-1] not in ".!?:\n"
        if (call or "_" in word or re.search(r"[a-z0-9][A-Z]", word)
                or (word[0].isupper() and inside_sentence)):
            found.add(word)
    return found


def ranked_definitions(index, focus: Iterable[str] = (), mentioned: Iterable[str] = (),
                       imports: PythonImports | None = None) -> list[tuple[str, Definition, float]]:
    """(file, definition, score), most important first. `imports` is the index's PythonImports, when the
    caller has one to share."""
    focus = list(focus)
    roles = {p: file_role(p) for p in index.files}
    mentioned = set(mentioned)
    defining = [p for p, tags in index.files.items() if mentioned and any(d.name in mentioned for d in tags.definitions)]
    rank = rank_files(index, focus, roles=roles, also=defining)
    definers: dict[str, float] = defaultdict(float)  # weighted: a test's helper hardly shares a library name
    function_definers: dict[str, float] = defaultdict(float)  # the same, counting only what a bare call reaches
    for path, tags in index.files.items():
        for name in {d.name for d in tags.definitions}:
            definers[name] += roles[path]
        for name in {d.name for d in tags.definitions if _answers_bare_calls(d)}:
            function_definers[name] += roles[path]
    imported: dict[str, int] = defaultdict(int)  # how many files import a name by name
    reexported: set[str] = set()  # names an entry file imports, where the import does not say whose
    reexported_at: set[tuple[str, str]] = set()  # (file, name) an entry file's import resolves to
    qualified: dict[str, float] = defaultdict(float)  # "Type.member" from calls like `Jsoup.parse(…)`
    use: dict[str, float] = defaultdict(float)
    function_use: dict[str, float] = defaultdict(float)  # from files that only ever call the name bare
    # unless the task personalises the ranking (then its files, not the project's clients, say what matters)
    floor = 0.0 if focus or defining else CLIENT_USE / max(len(index.files), 1)
    imports = imports or PythonImports(index)
    resolved: dict[tuple[str, str], float] = defaultdict(float)  # (file, name): uses its importers resolve to it
    for path, tags in index.files.items():
        # tests and examples are the API's clients: their uses count at least like an average file's
        weight = rank[path] if roles[path] == 1.0 else max(rank[path], floor) * SUPPORTING_REFERENCE
        entry = _is_entry_file(path) and roles[path] == 1.0
        if entry:
            # nothing in the package imports its entry file, so PageRank gives it little; but its users load it
            # first, and what it re-exports (`export { of } from …`) is their API even if no file here calls it
            weight = max(weight, floor * ENTRY_USE)
        # a file's uses of a name it defines itself are its own (an amalgamated copy uses everything it defines)
        own = {d.name for d in tags.definitions}
        # names this file imports from a known place (`from django.shortcuts import render`): credited to that
        # definition alone, or to nobody when it is not the project's (`from django.conf import settings`)
        origins = imports.origins_in(path)
        for name, origin in origins.items():
            if origin.defined and origin.path != path:
                resolved[(origin.path, name)] += weight
                if entry:
                    reexported_at.add((origin.path, name))
        if entry:
            reexported_at.update((where, name) for name, where in imports.star_names(path).items())
        names = set(origins)  # settled: no name-based credit counts them again
        if _marks_calls_through_objects(path):
            # `render(request, …)` or its import, and never `x.render()`, in this file: a function's use
            through = {name[len(THROUGH_OBJECT):] for name in marked(tags.references, THROUGH_OBJECT[0])}
            for name in unmarked(tags.references):
                if (function_definers.get(name) and name not in through and name not in own
                        and name not in names):
                    names.add(name)
                    function_use[name] += weight
        for name in unmarked(tags.references):  # through an object (counted above), imports' modules, __all__
            if "." in name:
                qualified[name] += weight
            elif name.startswith(IMPORTED):
                bare = name[len(IMPORTED):]
                origin = origins.get(bare)
                if origin is not None and not origin.defined:  # `from os.path import join` owns nothing of ours
                    continue
                imported[bare] += 1
                if entry and origin is None:
                    reexported.add(bare)
            elif name in definers and name not in own and name not in names:
                names.add(name)
                use[name] += weight
    scored = []
    factors: list[float] = []  # each definition's multipliers, for the share its type passes on
    for path, tags in index.files.items():
        for definition in tags.definitions:
            name = definition.name
            is_reexported = name in reexported or (path, name) in reexported_at
            shared = use.get(name, 0.0) / max(definers[name], 1.0) ** DEFINERS_POWER
            if name in function_use and _answers_bare_calls(definition):
                shared += function_use[name] / max(function_definers[name], 1.0) ** DEFINERS_POWER
            if definition.scope:  # uses that name this very type count whole, however common the name
                shared += QUALIFIED * qualified.get(f"{_type_name(definition.scope)}.{name}", 0.0)
            else:  # and so do imports that name this very module
                shared += resolved.get((path, name), 0.0)
            base = rank[path] * 0.1 + shared
            factor = 1.0 if definition.kind in TYPE_KINDS else 0.5
            exported = definition.exported and (is_reexported or not _in_internal(path))
            factor *= roles[path] * (1.0 if exported else INTERNAL)
            # `from os.path import join` in one file does not make the project's own `join` its API
            if imported[name] < IMPORTS_TO_OWN and not is_reexported and shadows_builtin(name, path):
                factor *= SHADOWING
            if definition.scope and definition.kind not in TYPE_KINDS and _names_its_type(name, definition.scope):
                factor *= SHADOWING  # a constructor: its type's own line says as much
            if len(name) <= 2 and definition.kind not in TYPE_KINDS and not is_reexported:
                factor *= SHADOWING  # `e`, `s`, `i`: a format code or a loop helper, rarely what a reader looks up
            if is_reexported and definition.exported:
                factor *= REEXPORTED
            if name in mentioned:
                factor *= MENTIONED
            scored.append((path, definition, base * factor))
            factors.append(factor)
    scored = _members_share_their_type(scored, factors)
    scored.sort(key=lambda item: (-item[2], item[0], item[1].line))
    return _repeats_discounted(scored)


def _marks_calls_through_objects(path: str) -> bool:
    """Whether this file's tags tell `x.name(…)` from `name(…)` (tools/tags.py THROUGH_OBJECT)."""
    return _LANGUAGE_OF.get(_suffix(path)) in ("tree_sitter_python", "js", "go")


def _answers_bare_calls(definition: Definition) -> bool:
    """Whether a call without an object (`render(…)`) can reach this definition: a function or a type,
    never a method (Python, JS/TS and Go reach a method only through an object)."""
    return definition.kind != "method" and not (definition.scope and definition.kind not in TYPE_KINDS)


def _members_share_their_type(scored: list[tuple[str, Definition, float]], factors: list[float]
                              ) -> list[tuple[str, Definition, float]]:
    """A public type's members are its API even when the library itself never calls them (`raise_for_status`,
    `Element.text`): each exported member gains a share of its type's score, the share smaller the more
    members the type has, and still weighed by the member's own factors (a private or test member gains
    little)."""
    best_type: dict[str, float] = {}
    for _, definition, score in scored:
        if definition.kind in TYPE_KINDS:
            best_type[definition.name] = max(best_type.get(definition.name, 0.0), score)
    heirs = [_type_name(d.scope) if d.scope and d.kind not in TYPE_KINDS and d.exported
             and not _implements_another_types_api(d) else "" for _, d, _ in scored]
    members: dict[str, int] = defaultdict(int)
    for owner in heirs:
        if owner:
            members[owner] += 1
    shared = []
    for (path, definition, score), factor, owner in zip(scored, factors, heirs):
        if owner:
            # n members share MEMBER_SHARE/(n + MEMBER_SHARE) each: a lone member never outranks its type
            score += best_type.get(owner, 0.0) * factor * MEMBER_SHARE / (members[owner] + MEMBER_SHARE)
        shared.append((path, definition, score))
    return shared


_OVERRIDE = re.compile(r"\boverride\b")
_DUNDER = re.compile(r"__\w+__")  # Python's protocol methods (`__eq__`, `__iter__`): the language's API, not the type's


def _implements_another_types_api(definition: Definition) -> bool:
    """A member that fills in a trait's or a supertype's API (`impl Display for Value`, `@Override`,
    `override`): the API is the other type's, documented there."""
    head = definition.signature.split("(", 1)[0]
    return (" for " in definition.scope and definition.scope.startswith(("impl", "unsafe impl"))
            or "@Override" in head or _OVERRIDE.search(definition.signature) is not None)


def with_member_names(ranked: list[tuple[str, Definition, float]]) -> list[tuple[str, Definition, float, bool]]:
    """The ranked definitions, each (file, definition, score, False), merged with a cheaper entry
    (…, score × NAME_ONLY, True) for each public member of a type: its name alone, listed under its type
    when the declaration itself did not make the cut. A name costs two tokens where a declaration line costs
    about fifteen, so a map can say what a type offers (`at`, `contains`, `patch`) for many more types."""
    entries = [(path, definition, score, False) for path, definition, score in ranked]
    type_score: dict[str, float] = {}
    for _, definition, score in ranked:
        if definition.kind in TYPE_KINDS:
            type_score.setdefault(definition.name, score)
    overrides = _overrides(ranked)
    for path, definition, score in ranked:
        if (definition.scope_line and definition.kind not in TYPE_KINDS and definition.exported
                and (path, definition.line) not in overrides
                and not _implements_another_types_api(definition) and not _DUNDER.fullmatch(definition.name)
                and not _names_its_type(definition.name, definition.scope)):
            # never before its type: a member named under a type the map does not show costs a header line
            cap = type_score.get(_type_name(definition.scope), score * NAME_ONLY)
            entries.append((path, definition, min(score * NAME_ONLY, cap), True))
    entries.sort(key=lambda item: -item[2])  # stable: ties keep the ranked order
    return entries


def split_entries(entries: list[tuple[str, Definition, float, bool]]
                  ) -> tuple[list[tuple[str, Definition, float]], list[tuple[str, Definition]]]:
    """A prefix of `with_member_names` as render takes it: the definitions shown in full, and the members
    shown by name only (those whose declaration is not shown in full), in rank order."""
    full = [(path, definition, score) for path, definition, score, name_only in entries if not name_only]
    shown = {(path, definition.line) for path, definition, _ in full}
    named = [(path, definition) for path, definition, _, name_only in entries
             if name_only and (path, definition.line) not in shown]
    return full, named


def _repeats_discounted(ranked: list[tuple[str, Definition, float]]) -> list[tuple[str, Definition, float]]:
    """The second definition of a name tells a reader less than the first, the sixth `value` property almost
    nothing: each further definition of a name already ranked above counts REPEATED times less."""
    seen: dict[str, int] = defaultdict(int)
    discounted = []
    for path, definition, score in ranked:
        discounted.append((path, definition, score * REPEATED ** seen[definition.name]))
        seen[definition.name] += 1
    discounted.sort(key=lambda item: (-item[2], item[0], item[1].line))
    return discounted


def neighbours(index, focus: Iterable[str], *, most_definers: int = 5) -> list[str]:
    """Files directly linked to the focused ones: those defining a name a focused file uses, and those
    using a name a focused file defines (names defined in many files link nothing), most links first."""
    focus = [f for f in focus if f in index.files]
    definers: dict[str, list[str]] = defaultdict(list)
    for path, tags in index.files.items():
        for name in {d.name for d in tags.definitions}:
            definers[name].append(path)
    links: dict[str, int] = defaultdict(int)
    defined_here = {d.name for f in focus for d in index.files[f].definitions
                    if len(definers[d.name]) <= most_definers}
    for f in focus:
        for name in set(index.files[f].references):
            targets = definers.get(name, ())
            if len(targets) <= most_definers:
                for target in targets:
                    links[target] += 1
    for path, tags in index.files.items():
        shared = defined_here.intersection(tags.references)
        if shared:
            links[path] += len(shared)
    chosen = set(focus)
    return sorted((p for p in links if p not in chosen), key=lambda p: (-links[p], p))


def focus_first(ranked: list[tuple[str, Definition, float]], index, focus: Iterable[str]
                ) -> list[tuple[str, Definition, float]]:
    """The ranked list with the focused files' definitions first, then their direct neighbours', then the
    rest, each part in score order: a map for a task always opens on the task's own code."""
    focus = [f for f in dict.fromkeys(focus) if f in index.files]
    if not focus:
        return ranked
    order = {path: 0 for path in focus}
    for path in neighbours(index, focus):
        order.setdefault(path, 1)
    return sorted(ranked, key=lambda item: order.get(item[0], 2))  # stable: scores order each part


def declared_exports(index, ranked: list[tuple[str, Definition, float]], imports: PythonImports | None = None
                     ) -> list[tuple[str, str]]:
    """(entry file, name) for each name a package's entry file imports or re-exports by name (`export { of }
    from …`, `from .x import A`, `pub use x::{A, B}`, Ruby's `autoload :Static`), or takes through a Python
    star import it can resolve (`from .fields import *`), most important first.

    That list is the package's declared public surface: what its users are told to call, whether or not any
    file here calls it. A project that exports hundreds of names cannot show them all as declarations in a
    small map, but it can name them (two tokens each). A name the project does not make (`use std::fmt`,
    `from os import path`) is not its API; one it makes by assignment (`path = partial(…)`) is, ranked by how
    many files import it. Where a Python entry file has an `__all__`, only what it lists counts. Each name is
    listed once, under the entry file nearest the project's root that declares it."""
    imports = imports or PythonImports(index)
    best: dict[str, float] = {}
    best_at: dict[tuple[str, str], float] = {}
    for path, definition, score in ranked:
        if definition.exported:
            best.setdefault(definition.name, score)
            best_at.setdefault((path, definition.name), score)
    assigned = _assigned_uses(index, imports)
    found: dict[str, tuple[float, str]] = {}
    for path, tags in index.files.items():
        if not _is_entry_file(path) or file_role(path) != 1.0:
            continue
        origins = imports.origins_in(path)
        # Python's `__all__`, where the file has one, says which of its imports it offers and which it uses
        declared = imports.declared(path) or set()
        offered: dict[str, float | None] = {}
        for reference in marked(tags.references, IMPORTED):
            name = reference[len(IMPORTED):]
            origin = origins.get(name)
            if declared and name not in declared:
                continue
            if origin is None:
                offered[name] = best.get(name)
            elif origin.defined:
                offered[name] = best_at.get((origin.path, name))
            elif origin.path and declared:  # an assignment only where `__all__` says it is offered
                offered[name] = assigned.get((origin.path, name))
        for name, where in imports.star_names(path).items():
            if not declared or name in declared:
                offered.setdefault(name, best_at.get((where, name)))
        for name, score in offered.items():
            # under the entry file nearest the root: `django/db/models/`, not a sub-package re-exporting it
            if score is not None and (name not in found or _nearer_root(path, found[name][1])):
                found[name] = (score, path)
    ordered = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
    return [(path, name) for name, (_, path) in ordered]


def _nearer_root(path: str, other: str) -> bool:
    return (path.count("/"), path) < (other.count("/"), other)


def _assigned_uses(index, imports: PythonImports) -> dict[tuple[str, str], float]:
    """(file, name) → how much the project imports a name that file makes by assignment (`path =
    partial(…)`, `settings = LazySettings()`), on the scale of a definition used by as many average files."""
    uses: dict[tuple[str, str], float] = defaultdict(float)
    share = CLIENT_USE / max(len(index.files), 1)
    for path in index.files:
        for name, origin in imports.origins_in(path).items():
            if origin.path and not origin.defined and origin.path != path:
                uses[(origin.path, name)] += share
    return uses
