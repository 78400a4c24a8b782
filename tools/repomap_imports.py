"""Whose `N` a Python file means when it writes `from M import N`: the repo map's answer, from files alone.

Pure: an index of tags in (tools/tags.py records each `from M import N` as "@M:N"), answers out.

A name alone is ambiguous (Django defines `render` 67 times, and `settings`, `connection`, `apps` are
module-level objects that share their names with a dozen methods), but an import says where the name
comes from. Resolving it lets the map credit exactly the definition a file uses, and credit nobody when
the name is someone else's: a module outside the project (`from datetime import datetime`), or a project
module where the name is not a definition (an assignment like `settings = LazySettings()`, a submodule
like `from django.utils import timezone`).

An assignment is still the project's (`path = partial(_path, …)` is what `from django.urls import path`
gives its users): it is named where the entry file re-exports it, though no definition gets the credit.

Resolution follows what a module re-exports: its own `from M2 import N` and its star imports
(`from django.forms.forms import *` in `django/forms/__init__.py`, honouring each module's `__all__`).
A repository decides how many files, imports and star imports there are, so the work is bounded: each
(file, name) is resolved once, at most MAX_VISITS of them per map, MAX_DEPTH re-exports deep, MAX_STARS
star imports a file, MAX_STAR_NAMES names brought by star imports; past a bound the answer is "cannot
tell" (the ranking falls back to names) or nothing more.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import NamedTuple

from gptoss_agent.tools.tags import DECLARED, FROM, marked

MAX_DEPTH = 8  # re-exports followed from the importing file (Django's deepest chain is three)
MAX_STARS = 32  # star imports of one file that are followed (Django's most is 7)
MAX_VISITS = 20_000  # (file, name) pairs resolved for one map (Django needs about 1,250)
MAX_STAR_NAMES = 20_000  # (name, file) pairs entry files take through star imports, per map (Django: 302)
SUFFIX_PARTS = 8  # a module is found by up to its last 8 dotted parts at once; a longer name is matched whole
MAX_CANDIDATES = 64  # files sharing a long module name's last 8 parts that are checked for the rest
_STAR = "*"
_PACKAGE_FILES = ("/__init__.py", "/__init__.pyi")


class Origin(NamedTuple):
    """Where an imported name is made."""

    path: str  # the project file that makes it; "" for a module outside the project
    defined: bool  # by a definition (class, function) there, not an assignment or a submodule


OUTSIDE = Origin("", False)


class PythonImports:
    """Answers `origin(importer, module, name)` for one index."""

    def __init__(self, index) -> None:
        self._files = index.files
        self._by_suffix: dict[tuple[str, ...], list[str]] = defaultdict(list)  # last 1..8 parts → files
        self._by_module: dict[tuple[str, ...], list[str]] = defaultdict(list)  # every part → files
        self._tops: set[str] = set()  # every module and package name anywhere in the tree
        self._top_level: dict[str, set[str]] = {}
        self._exported: dict[str, set[str]] = {}
        self._declared: dict[str, set[str]] = {}  # a module's literal `__all__`, where it has one
        self._imports: dict[str, dict[str, list[str]]] = {}  # file → name → modules it takes the name from
        for path, tags in index.files.items():
            parts = _module_parts(path)
            if parts is None:
                continue
            self._tops.update(parts)
            self._by_module[parts].append(path)
            for start in range(max(len(parts) - SUFFIX_PARTS, 0), len(parts)):
                self._by_suffix[parts[start:]].append(path)
            self._top_level[path] = {d.name for d in tags.definitions if not d.scope}
            self._exported[path] = {d.name for d in tags.definitions if not d.scope and d.exported}
            taken: dict[str, list[str]] = defaultdict(list)
            for reference in marked(tags.references, FROM):
                module, _, name = reference[len(FROM):].rpartition(":")
                if name != _STAR or len(taken[_STAR]) < MAX_STARS:
                    taken[name].append(module)
            if taken:
                self._imports[path] = taken
            declared = marked(tags.references, DECLARED)
            if declared:
                self._declared[path] = {reference[len(DECLARED):] for reference in declared}
        self._memo: dict[tuple[str, str], Origin | None] = {}
        self._busy: set[tuple[str, str]] = set()
        self._visits = 0
        self._stars: dict[str, dict[str, str]] = {}
        self._origins: dict[str, dict[str, Origin]] = {}
        self._star_names = 0
        self._absolute = lru_cache(maxsize=None)(self._find_absolute)
        self._relative = lru_cache(maxsize=None)(self._find_relative)

    @property
    def visits(self) -> int:
        """How many (file, name) pairs resolution has looked at so far (at most MAX_VISITS count)."""
        return self._visits

    def imports_of(self, path: str) -> dict[str, list[str]]:
        """name → the modules this file imports it from (`*` for its star imports)."""
        return self._imports.get(path, {})

    def origin(self, importer: str, module: str, name: str) -> Origin | None:
        """Where `name` is made when `importer` imports it from `module`; None when this cannot tell (the
        module looks like the project's but is not among its files, or a bound was reached)."""
        target = self.module_file(importer, module)
        return target if not isinstance(target, str) else self._resolve(target, name, 0)

    def origins_in(self, path: str) -> dict[str, Origin]:
        """name → where it is made, for each name this file imports by name from a module this can read
        (worked out once per file: the ranking and the exports line both ask)."""
        if path not in self._origins:
            found: dict[str, Origin] = {}
            for name, modules in self.imports_of(path).items():
                for module in modules if name != _STAR else ():
                    origin = self.origin(path, module, name)
                    if origin is not None:
                        found[name] = origin
                        break
            self._origins[path] = found
        return self._origins[path]

    def declared(self, path: str) -> set[str] | None:
        """The module's literal `__all__`, or None where it has none."""
        return self._declared.get(path)

    def star_names(self, path: str) -> dict[str, str]:
        """name → defining file, for the project definitions a file takes through its star imports
        (`from .fields import *`): what each target module offers (`__all__`, else no underscore), one
        level of the target's own star imports included."""
        if path not in self._stars:
            names: dict[str, str] = {}
            for module in self.imports_of(path).get(_STAR, ()):
                target = self.module_file(path, module)
                if not isinstance(target, str) or not self._spend_names(len(self._exported[target])):
                    continue
                names.update(dict.fromkeys(self._exported[target], target))
                for inner in self.imports_of(target).get(_STAR, ()):
                    deeper = self.module_file(target, inner)
                    if isinstance(deeper, str) and self._spend_names(len(self._exported[deeper])):
                        names.update((name, deeper) for name in self._exported[deeper] if self._offers(target, name))
            self._stars[path] = names
        return self._stars[path]

    def _spend_names(self, count: int) -> bool:
        """Whether `count` more (name, file) pairs may come from star imports (MAX_STAR_NAMES per map)."""
        if self._star_names + count > MAX_STAR_NAMES:
            return False
        self._star_names += count
        return True

    def module_file(self, importer: str, module: str) -> str | Origin | None:
        """The project file `module` names from `importer` (a package is its `__init__.py`); OUTSIDE for a
        module outside the project; None for one that looks like the project's but is not among its files."""
        if module.startswith("."):
            return self._relative(importer.rpartition("/")[0], module)
        return self._absolute(module)

    def _find_absolute(self, module: str) -> str | Origin | None:
        parts = tuple(module.split("."))
        if parts[0] not in self._tops:
            return OUTSIDE  # `datetime`, `os.path`, `requests` in a project that is not requests
        if len(parts) <= SUFFIX_PARTS:
            found = self._by_suffix.get(parts, [])
        else:  # whole, or among a bounded few sharing its last parts (`src/` above the import root)
            found = self._by_module.get(parts) or [
                p for p in self._by_suffix.get(parts[-SUFFIX_PARTS:], [])[:MAX_CANDIDATES]
                if _module_parts(p)[-len(parts):] == parts]
        if not found:
            return None
        # `django/forms.py` over `tests/x/django/forms.py`; a package over a module of the same name (Python
        # imports the folder)
        return min(found, key=lambda p: (len(_module_parts(p)), not p.endswith(_PACKAGE_FILES), p))

    def _find_relative(self, folder: str, module: str) -> str | None:
        """`from ..utils import x` in `pkg/sub/mod.py` (folder `pkg/sub`) names `pkg/utils.py` (or
        `pkg/utils/__init__.py`)."""
        dots = len(module) - len(module.lstrip("."))
        package = folder.split("/") if folder else []  # `.` is the importing module's own package: its folder
        if dots - 1 > len(package):
            return None
        package = package[:len(package) - (dots - 1)]
        base = "/".join(package + [part for part in module[dots:].split(".") if part])
        candidates = (f"{base}/__init__.py", f"{base}.py", f"{base}/__init__.pyi", f"{base}.pyi")  # the package first
        return next((c.lstrip("/") for c in candidates if c.lstrip("/") in self._files), None)

    def _offers(self, path: str, name: str) -> bool:
        """Whether `from <path's module> import *` brings `name`: its `__all__`, else no leading underscore."""
        declared = self.declared(path)
        return name in declared if declared is not None else not name.startswith("_")

    def _spend(self, visits: int) -> bool:
        if self._visits + visits > MAX_VISITS:
            return False
        self._visits += visits
        return True

    def _resolve(self, path: str, name: str, depth: int) -> Origin | None:
        """Where `name`, as module `path` offers it, is made: here, or through what `path` imports. Each
        (file, name) is worked out once; a cycle, or a chain past MAX_DEPTH, cannot tell."""
        if name in self._top_level.get(path, ()):  # defined here: nothing to follow, nothing spent
            return Origin(path, True)
        key = (path, name)
        if key in self._memo:
            return self._memo[key]
        if key in self._busy or depth > MAX_DEPTH or not self._spend(1):
            return None
        self._busy.add(key)
        try:
            found = self._memo[key] = self._look(path, name, depth)
        finally:
            self._busy.discard(key)
        return found

    def _look(self, path: str, name: str, depth: int) -> Origin | None:
        taken = self.imports_of(path)
        for module in taken.get(name, ()):  # `from .query import QuerySet` in `models/__init__.py`
            target = self.module_file(path, module)
            found = target if not isinstance(target, str) else self._resolve(target, name, depth + 1)
            if found is not None:
                return found
        unknown = False
        for module in taken.get(_STAR, ()):  # `from django.forms.forms import *`
            target = self.module_file(path, module)
            if isinstance(target, str) and not self._offers(target, name):
                continue  # its `__all__` leaves the name out (or it is private)
            found = self._resolve(target, name, depth + 1) if isinstance(target, str) else None
            if found is not None and found.defined:
                return found
            unknown = unknown or target is None or found is None
        # a module-level assignment (`path = partial(…)`), a submodule, a name made at run time: not a
        # definition, unless a star import from somewhere this cannot read might have brought it
        return None if unknown else Origin(path, False)


@lru_cache(maxsize=65536)
def _module_parts(path: str) -> tuple[str, ...] | None:
    """`("django", "forms", "forms")` for django/forms/forms.py, `("django", "forms")` for its
    `__init__.py`; None for a file that is not Python."""
    for suffix in (".py", ".pyi"):
        if path.endswith(suffix):
            parts = tuple(path[:-len(suffix)].split("/"))
            return parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts
    return None
