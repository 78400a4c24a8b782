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
(`from django.forms.forms import *` in `django/forms/__init__.py`), a few steps deep.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import NamedTuple

from gptoss_agent.tools.tags import FROM

MAX_STEPS = 6  # re-exports followed from the importing file (Django's deepest chain is three)
MAX_STARS = 32  # star imports of one file that are followed (Django's most is 7): a repository of files that
#                 star-import each other cannot make resolution cost files × files × names
SUFFIX_PARTS = 8  # a module is found by at most its last 8 dotted parts; a deeper name is checked whole
_STAR = "*"


class Origin(NamedTuple):
    """Where an imported name is made."""

    path: str  # the project file that makes it; "" for a module outside the project
    defined: bool  # by a definition (class, function) there, not an assignment or a submodule


OUTSIDE = Origin("", False)


class PythonImports:
    """Answers `origin(importer, module, name)` for one index."""

    def __init__(self, index) -> None:
        self._files = index.files
        self._by_suffix: dict[tuple[str, ...], list[str]] = defaultdict(list)
        self._tops: set[str] = set()  # every module and package name anywhere in the tree
        self._top_level: dict[str, set[str]] = {}
        self._exported: dict[str, set[str]] = {}
        self._imports: dict[str, dict[str, list[str]]] = {}  # file → name → modules it takes the name from
        for path, tags in index.files.items():
            parts = _module_parts(path)
            if parts is None:
                continue
            self._tops.update(parts)
            for start in range(max(len(parts) - SUFFIX_PARTS, 0), len(parts)):
                self._by_suffix[parts[start:]].append(path)
            self._top_level[path] = {d.name for d in tags.definitions if not d.scope}
            self._exported[path] = {d.name for d in tags.definitions if not d.scope and d.exported}
            taken: dict[str, list[str]] = defaultdict(list)
            for reference in tags.references:
                if reference.startswith(FROM):
                    module, _, name = reference[len(FROM):].rpartition(":")
                    if name != _STAR or len(taken[_STAR]) < MAX_STARS:
                        taken[name].append(module)
            if taken:
                self._imports[path] = taken
        self._resolved = lru_cache(maxsize=None)(self._resolve)
        self._absolute = lru_cache(maxsize=None)(self._find_absolute)

    def imports_of(self, path: str) -> dict[str, list[str]]:
        """name → the modules this file imports it from (`*` for its star imports)."""
        return self._imports.get(path, {})

    def origin(self, importer: str, module: str, name: str) -> Origin | None:
        """Where `name` is made when `importer` imports it from `module`; None when this cannot tell (the
        module looks like the project's but is not among its files)."""
        target = self.module_file(importer, module)
        return target if not isinstance(target, str) else self._resolved(target, name, MAX_STEPS)

    def origins_in(self, path: str) -> dict[str, Origin]:
        """name → where it is made, for each name this file imports by name from a module this can read."""
        found: dict[str, Origin] = {}
        for name, modules in self.imports_of(path).items():
            if name == _STAR:
                continue
            for module in modules:
                origin = self.origin(path, module, name)
                if origin is not None:
                    found[name] = origin
                    break
        return found

    def star_names(self, path: str) -> dict[str, str]:
        """name → defining file, for the project definitions a file takes through its star imports
        (`from .fields import *`): what each target module exports (`__all__`, else no underscore),
        followed through the target's own star imports."""
        names: dict[str, str] = {}
        for module in self.imports_of(path).get(_STAR, ()):
            target = self.module_file(path, module)
            if isinstance(target, str):
                names.update(dict.fromkeys(self._exported.get(target, ()), target))
                for inner in self.imports_of(target).get(_STAR, ()):
                    deeper = self.module_file(target, inner)
                    if isinstance(deeper, str):
                        names.update(dict.fromkeys(self._exported.get(deeper, ()), deeper))
        return names

    def module_file(self, importer: str, module: str) -> str | Origin | None:
        """The project file `module` names from `importer` (a package is its `__init__.py`); OUTSIDE for a
        module outside the project; None for one that looks like the project's but is not among its files."""
        if module.startswith("."):
            return self._relative(importer, module)
        return self._absolute(module)

    def _find_absolute(self, module: str) -> str | Origin | None:
        parts = tuple(module.split("."))
        if parts[0] not in self._tops:
            return OUTSIDE  # `datetime`, `os.path`, `requests` in a project that is not requests
        found = [p for p in self._by_suffix.get(parts[-SUFFIX_PARTS:], ()) if _module_parts(p)[-len(parts):] == parts]
        if not found:
            return None
        return min(found, key=lambda p: (p.count("/"), p))  # `django/forms.py` over `tests/x/django/forms.py`

    def _relative(self, importer: str, module: str) -> str | None:
        """`from ..utils import x` in `pkg/sub/mod.py` names `pkg/utils.py` (or `pkg/utils/__init__.py`)."""
        dots = len(module) - len(module.lstrip("."))
        package = importer.split("/")[:-1]  # `.` is the importing module's own package: its folder
        if dots - 1 > len(package):
            return None
        package = package[:len(package) - (dots - 1)]
        folder = "/".join(package + [part for part in module[dots:].split(".") if part])
        candidates = (f"{folder}.py", f"{folder}/__init__.py", f"{folder}.pyi", f"{folder}/__init__.pyi")
        return next((c.lstrip("/") for c in candidates if c.lstrip("/") in self._files), None)

    def _resolve(self, path: str, name: str, steps: int) -> Origin | None:
        """Where `name`, as module `path` offers it, is made: here, or through what `path` imports."""
        if name in self._top_level.get(path, ()):
            return Origin(path, True)
        if steps <= 0:
            return None
        taken = self.imports_of(path)
        for module in taken.get(name, ()):  # `from .query import QuerySet` in `models/__init__.py`
            target = self.module_file(path, module)
            found = target if not isinstance(target, str) else self._resolved(target, name, steps - 1)
            if found is not None:
                return found
        unknown = False
        if not name.startswith("_"):  # what a star import brings: the target's public names
            for module in taken.get(_STAR, ()):  # `from django.forms.forms import *`
                target = self.module_file(path, module)
                if isinstance(target, str) and name in self._top_level[target] - self._exported[target]:
                    continue  # the target defines it but keeps it (`__all__` leaves it out)
                found = self._resolved(target, name, steps - 1) if isinstance(target, str) else None
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
