"""Which Python the project runs with: found the way the user's shell would find it, from files and variables only.

Order (the first that applies wins, and the reason says why):

1. the user's own choice: the `python` setting (`--python`, the user's config, GPTOSS_AGENT_PYTHON);
2. an activated virtualenv (VIRTUAL_ENV), unless it is gptoss-agent's own environment;
3. an activated conda environment other than `base` (CONDA_PREFIX);
4. an environment inside the repository: `.venv`, `venv`;
5. the environment a tool keeps for this project elsewhere: uv (UV_PROJECT_ENVIRONMENT), poetry (its
   virtualenvs folder, name from pyproject + a hash of the project's path), pipenv and virtualenvwrapper
   (WORKON_HOME, a `.project` file naming this repository);
6. tox's environments (`.tox/<env>`);
7. conda's `base` when it is active;
8. pyenv: `.python-version` (or PYENV_VERSION) under PYENV_ROOT;
9. `python3` on PATH.

Nothing is run: no `poetry env info`, no shim. Detection reads a handful of files with bounds.

Trust: the repository chooses some of these (its `.venv`, its `.python-version`, the name poetry hashes),
and a venv's `pyvenv.cfg` is data. Worse, anything inside the work tree may have been written by the model
through an earlier command (an untracked `.venv` is not even a change `fix` refuses). So:

- an environment inside the work tree (`.venv`, `venv`, `.tox/<env>`, an activated or uv environment that
  lives there) is a real folder reached without links, and is shown as what it is: part of the tree,
  already visible. It never widens what the sandbox shows outside the tree;
- only the USER widens the view: the `python` setting, an activated environment, or the folders the user's
  tools keep outside the tree (poetry, pipenv, virtualenvwrapper, conda, pyenv);
- a venv's base interpreter is shown only when it is a real interpreter prefix (`bin` and `lib` real
  folders, a `python` and a standard library inside them, no link out), outside the tree, and either
  already visible (a system prefix: nothing to bind) or inside a folder where interpreters are installed
  (`~/.pyenv/versions`, uv's, conda's, mise's, asdf's, or gptoss-agent's own interpreter);
- nothing shown is ever `/`, a whole private tree, $HOME or above it, a credential path of the deny list,
  a pseudo filesystem (/proc, /sys, /dev, /run), another user's home, or gptoss-agent's own state, cache
  and config folders; only `bin` and `lib` of a base interpreter are shown, never its whole prefix.
  Every folder the sandbox re-binds for an environment is masked to full depth (tools.sandbox_secrets).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import shutil
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from gptoss_agent.agent import locations
from gptoss_agent.tools.denylist import HOME_SECRET_PATHS, is_secret_path
from gptoss_agent.tools.paths import read_small_text

_SMALL_FILE = 64 * 1024
_PRIVATE_TREES = (Path("/root"), Path("/home"), Path("/tmp"), Path("/var/tmp"), Path("/run"), Path("/dev/shm"))
# Trees the sandbox hides and may show parts of by a bind. Anything else is either visible already (a
# system prefix: shown as it is, no bind) or a pseudo filesystem (never shown: the sandbox has its own).
_BOUND_TREES = (Path("/root"), Path("/home"), Path("/tmp"), Path("/var/tmp"))
_PSEUDO_TREES = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/run"))
# Folders under $HOME where interpreters are installed: a venv's base interpreter may be shown from there.
_HOME_INTERPRETERS = (".pyenv/versions", ".local/share/uv/python", ".local/share/mise/installs/python",
                      ".asdf/installs/python", ".conda", "miniconda3", "anaconda3", "miniforge3", "mambaforge",
                      ".local/share/rtx/installs/python")
# gptoss-agent's own folders under $HOME (sessions of every repository, trust decisions, models).
_AGENT_DIRS = (".local/state", ".config/gptoss-agent", ".cache/gptoss-agent", ".local/share/gptoss-agent")
_AGENT_DIR_VARIABLES = (locations.STATE_DIR_VARIABLE, locations.CACHE_DIR_VARIABLE, "XDG_STATE_HOME")
_IN_REPO = (".venv", "venv")
_PYENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*(/envs/[A-Za-z0-9][A-Za-z0-9._+-]*)?$")
_MAX_WORKON_ENVS = 500
_MAX_NAMES = 16  # candidates read from one repository file or folder (.python-version, .tox)


@dataclass(frozen=True)
class PythonEnv:
    """The environment the project's commands run with, why it was chosen, and what the sandbox must show."""

    # override | virtualenv | conda | in-repo | uv | poetry | pipenv | virtualenvwrapper | tox | pyenv | system
    kind: str
    name: str  # short, for the status bar: ".venv", "poetry:calc-AbC12345-py3.11", "python3"
    interpreter: str  # absolute path of its python, or "python3" (found on PATH inside the sandbox)
    reason: str  # one line: why this one
    prefix: Path | None = None  # the environment's root (sys.prefix); None for python3 on PATH
    bin_dir: Path | None = None  # goes first on PATH inside the sandbox
    is_venv: bool = False  # VIRTUAL_ENV is set to prefix inside the sandbox
    is_conda: bool = False
    visible: tuple[Path, ...] = ()  # folders to show read-only (outside the repository)
    skipped: tuple[str, ...] = ()  # candidates passed over, each with why
    problems: tuple[str, ...] = ()  # what is wrong with the chosen one (an override that is not there)

    def describe(self) -> str:
        """`doctor`'s line."""
        return f"{self.name} ({self.interpreter}): {self.reason}"

    def install_command(self, target: str = "-e .") -> str:
        """The command that installs `target` into this environment, in the tool the user uses for it."""
        if self.kind == "poetry":
            return "poetry install"
        if self.kind == "pipenv":
            return "pipenv install --dev"
        if self.kind == "uv":
            return "uv sync"
        if self.kind == "system":
            return f"python3 -m pip install {target}"
        return f"{shlex.quote(self.interpreter)} -m pip install {target}"  # a folder name is never shell syntax


@dataclass(frozen=True)
class _Found:
    kind: str
    name: str
    prefix: Path
    reason: str
    conda: bool = False


# ---------------------------------------------------------------------- the entry point

@dataclass(frozen=True)
class _Places:
    """Where this detection stands: the work tree, the user's home, and what may never be shown."""

    workspace: Path
    home: Path
    agent_dirs: tuple[Path, ...]  # gptoss-agent's state, cache and config folders
    interpreter_roots: tuple[Path, ...]  # where a base interpreter that needs a bind may be

    @classmethod
    def of(cls, workspace: Path, home: Path, environ: Mapping[str, str], own: Path) -> "_Places":
        agent = [home / relative for relative in _AGENT_DIRS]
        agent += [Path(environ[name]) for name in _AGENT_DIR_VARIABLES if os.path.isabs(environ.get(name) or "")]
        roots = [home / relative for relative in _HOME_INTERPRETERS]
        roots += [Path(sys.base_prefix), Path(sys.prefix), own]  # gptoss-agent's own: shown by the sandbox anyway
        return cls(workspace, home, tuple(_real(p) or p for p in agent), tuple(_real(p) or p for p in roots))


def detect(workspace: Path, environ: Mapping[str, str] | None = None, *, override: str | None = None,
           own_prefix: str | None = None, tracked=None) -> PythonEnv:
    """The project's environment for `workspace` (see the module docstring for the order).

    `tracked(names)`: which of these top-level names git tracks (default: asks host git). A `.venv` the
    repository commits is the repository's, not an environment the user made: never used."""
    environ = os.environ if environ is None else environ
    workspace = Path(os.path.realpath(workspace))
    home = Path(os.path.realpath(environ.get("HOME") or "/root"))
    own = Path(os.path.realpath(own_prefix or sys.prefix))
    places = _Places.of(workspace, home, environ, own)
    skipped: list[str] = []
    if override:
        return _from_override(override, places, environ.get("PATH", ""))
    committed = _tracked_names(workspace, tracked)
    for found in _candidates(workspace, home, environ, own, skipped):
        env = _accept(found, places, skipped, committed)
        if env is not None:
            return env
    return _system(environ, skipped)


def _tracked_names(workspace: Path, tracked) -> frozenset[str]:
    """The in-tree environment folders (`.venv`, `venv`, `.tox`) that hold files git tracks."""
    names = (*_IN_REPO, ".tox")
    present = [name for name in names if os.path.lexists(workspace / name)]
    if not present:
        return frozenset()
    if tracked is not None:
        return frozenset(tracked(present))
    try:
        from gptoss_agent.tools.host_git import HostGitError, run_git

        listing = run_git(workspace, "ls-files", "-z", "--", *present)
    except (HostGitError, OSError):
        return frozenset()
    if not listing.ok:
        return frozenset()
    return frozenset(path.split("/", 1)[0] for path in listing.text.split("\0") if path)


def _candidates(workspace: Path, home: Path, environ: Mapping[str, str], own: Path, skipped: list[str]):
    """Every candidate in order; each is checked by `_accept` before it is used."""
    active = environ.get("VIRTUAL_ENV")
    if active:
        path = Path(active)
        if _real(path) == own and not _inside(own, workspace):
            skipped.append(f"VIRTUAL_ENV {active} is gptoss-agent's own environment, not the project's")
        else:
            yield _Found("virtualenv", _short(path, workspace, home), path, "the activated virtualenv (VIRTUAL_ENV)")
    conda = environ.get("CONDA_PREFIX")
    conda_base = conda and (environ.get("CONDA_DEFAULT_ENV") == "base" or (Path(conda) / "condabin").is_dir())
    if conda and not conda_base:
        yield _Found("conda", "conda:" + (environ.get("CONDA_DEFAULT_ENV") or Path(conda).name), Path(conda),
                     "the activated conda environment (CONDA_PREFIX)", conda=True)
    for name in _IN_REPO:
        if os.path.lexists(workspace / name):
            yield _Found("in-repo", name, workspace / name, f"the repository's own {name}/")
    uv = environ.get("UV_PROJECT_ENVIRONMENT")
    if uv:
        path = Path(uv) if os.path.isabs(uv) else workspace / uv
        yield _Found("uv", _short(path, workspace, home), path, "uv's project environment (UV_PROJECT_ENVIRONMENT)")
    poetry = _poetry_env(workspace, home, environ)
    if poetry is not None:
        yield poetry
    pipenv = _pipenv_env(workspace, home, environ)
    if pipenv is not None:
        yield pipenv
    wrapper = _workon_env(workspace, home, environ)
    if wrapper is not None:
        yield wrapper
    for tox in _tox_envs(workspace):
        yield tox
    if conda and conda_base:
        yield _Found("conda", "conda:base", Path(conda), "conda's base environment is active (CONDA_PREFIX)",
                     conda=True)
    pyenv = _pyenv_version(workspace, home, environ, skipped)
    if pyenv is not None:
        yield pyenv


def _accept(found: _Found, places: _Places, skipped: list[str],
            committed: frozenset[str] = frozenset()) -> PythonEnv | None:
    """`found` as a PythonEnv when it is a real environment whose folders the sandbox may show."""
    workspace = places.workspace
    lexical = Path(os.path.normpath(found.prefix))
    prefix = _real(found.prefix)
    if prefix is None or not prefix.is_dir():
        skipped.append(f"{found.name}: {found.prefix} does not exist")
        return None
    in_tree = _inside(lexical, workspace) or _inside(prefix, workspace)
    if in_tree:
        why = _in_tree_refusal(lexical, prefix, workspace, committed)
        if why:
            skipped.append(f"{found.name}: {why}")
            return None
    shape = environment_shape(prefix)
    if shape is None:
        skipped.append(f"{found.name}: {found.prefix} is not a Python environment (no pyvenv.cfg or conda-meta "
                       "with a bin/python, and no standard library)")
        return None
    if in_tree:
        why = _in_tree_interpreter_refusal(prefix, shape, workspace)
        if why:
            skipped.append(f"{found.name}: {why}")
            return None
    visible, refused = _visible(prefix, shape, places, in_tree=in_tree)
    if refused:
        skipped.append(f"{found.name}: {refused}")
        return None
    python = _python_in(prefix / "bin")
    return PythonEnv(found.kind, found.name, str(found.prefix / "bin" / python.name), found.reason, found.prefix,
                     found.prefix / "bin", is_venv=shape == "venv", is_conda=shape == "conda", visible=visible,
                     skipped=tuple(skipped))


def _in_tree_refusal(lexical: Path, real: Path, workspace: Path, committed: frozenset[str]) -> str:
    """Why an environment inside the work tree may not be used: reached through a link (a repository's
    `.venv -> ~` or `.venv -> src`), leading out of the tree, or tracked by git (the repository's own)."""
    if _inside(lexical, workspace) and real != lexical:
        return (f"{lexical} is a link (to {real}); an environment in the repository must be a real folder "
                "(use --python for one elsewhere)")
    relative = real.relative_to(workspace)
    if relative.parts and relative.parts[0] in committed:
        return (f"{relative.parts[0]}/ is tracked by git: it is the repository's, not an environment you made "
                "(make your own with python3 -m venv, or use --python)")
    return ""


def _in_tree_interpreter_refusal(prefix: Path, shape: str, workspace: Path) -> str:
    """Why the python of an environment inside the work tree is not an interpreter: a venv's python is a
    link to a real interpreter outside the tree. A program inside the tree (a script that exits 0, planted
    by the repository or an earlier command) would make every run "pass", and `fix` would tell the user to
    run it on the host to install the project."""
    if shape != "venv":
        return (f"{prefix.name}/ holds its own interpreter inside the repository, not a venv of one outside it "
                "(use --python to choose it)")
    python = _python_in(prefix / "bin")
    target = _real(python) if python is not None else None
    if target is None or _inside(target, workspace) or not _interpreter_prefix(target.parent.parent):
        return (f"{prefix.name}/bin/python is not a link to an installed interpreter outside the repository "
                "(a program of the repository's own); never run (use --python to choose an interpreter)")
    return ""


def _system(environ: Mapping[str, str], skipped: list[str]) -> PythonEnv:
    return PythonEnv("system", "python3", "python3", "no project environment found: python3 on PATH",
                     skipped=tuple(skipped))


def _from_override(value: str, places: _Places, path_variable: str = "") -> PythonEnv:
    """The user's `python` setting: an interpreter or an environment folder (relative: to the repository),
    or a bare name found on PATH (`python3.12`)."""
    workspace = places.workspace
    given = Path(os.path.expanduser(value))
    found = shutil.which(value, path=path_variable) if "/" not in value and path_variable else None
    path = Path(found) if found else given if given.is_absolute() else workspace / given
    reason = f"the python setting ({value})"
    real = _real(path)
    if real is None or not os.path.exists(real):
        return PythonEnv("override", value, str(path), reason,
                         problems=(f"the python setting names {value}, which does not exist",))
    if real.is_dir():
        prefix = path
    elif real.parent.name == "bin" or path.parent.name == "bin":
        prefix = path.parent.parent
    else:
        return PythonEnv("override", value, str(path), reason,
                         problems=(f"the python setting names {value}, which is neither an environment folder "
                                   "nor an interpreter in a bin/ folder",))
    real_prefix = _real(prefix) or prefix
    shape = environment_shape(real_prefix)
    if shape is None:
        return PythonEnv("override", value, str(path), reason,
                         problems=(f"{value} is not a Python environment or installation",))
    in_tree = _inside(Path(os.path.normpath(prefix)), workspace) or _inside(real_prefix, workspace)
    visible, refused = _visible(real_prefix, shape, places, in_tree=in_tree)
    if refused:
        return PythonEnv("override", value, str(path), reason, problems=(refused,))
    interpreter = str(path) if not real.is_dir() else str(prefix / "bin" / _python_in(prefix / "bin").name)
    return PythonEnv("override", _short(prefix, workspace, home=places.home), interpreter, reason, prefix,
                     prefix / "bin", is_venv=shape == "venv", is_conda=shape == "conda", visible=visible)


# ---------------------------------------------------------------------- what an environment is, what to show

def environment_shape(prefix: Path) -> str | None:
    """"venv" (pyvenv.cfg), "conda" (conda-meta/), "prefix" (a plain installation), or None: not Python."""
    if _python_in(prefix / "bin") is None:
        return None
    if _regular(prefix / "pyvenv.cfg"):
        return "venv"
    if (prefix / "conda-meta").is_dir():
        return "conda"
    return "prefix" if _has_stdlib(prefix) else None


def visible_folders(prefix: Path, shape: str, workspace: Path, home: Path, *, in_tree: bool | None = None,
                    environ: Mapping[str, str] | None = None) -> tuple[tuple[Path, ...], str]:
    """(folders the sandbox must bind read-only for this environment, why it may not when it may not).

    A venv: its own folder, and `bin` + `lib` of the base interpreter its pyvenv.cfg and its python link
    name (each checked to be a real interpreter prefix). A conda environment: its folder. A plain
    installation: its `bin` and `lib`. Folders inside the repository, and system folders the sandbox shows
    anyway, need no bind and are not listed. An environment inside the work tree adds only a base
    interpreter from a place where interpreters are installed (see the module docstring)."""
    environ = os.environ if environ is None else environ
    workspace, home = Path(os.path.realpath(workspace)), Path(os.path.realpath(home))
    places = _Places.of(workspace, home, environ, Path(os.path.realpath(sys.prefix)))
    real = _real(prefix) or prefix
    if in_tree is None:
        in_tree = _inside(real, workspace)
    return _visible(real, shape, places, in_tree=in_tree)


def _visible(prefix: Path, shape: str, places: _Places, *, in_tree: bool) -> tuple[tuple[Path, ...], str]:
    workspace = places.workspace
    wanted: list[Path] = []
    if not in_tree:  # the user's own environment (or the user's tools'): shown as it is
        if shape in ("venv", "conda"):
            wanted.append(prefix)
        else:
            wanted += [prefix / "bin", prefix / "lib"]
    if shape == "venv":
        bases, why = _base_prefixes(prefix, workspace)
        if why:
            return (), why
        for base in bases:
            why = _base_refusal(base, places)
            if why == _NOT_AN_INTERPRETER:
                continue  # `home` and `executable` often name the same place; one that is no prefix is skipped
            if why:
                return (), why
            wanted += [base / "bin", base / "lib"]
    shown: list[Path] = []
    for path in wanted:
        real = _real(path)
        if real is None or not real.exists() or _inside(real, workspace):
            continue
        why = unbindable(real, workspace, places.home, places=places)
        if why:
            return (), why
        if not any(_inside(real, tree) for tree in _BOUND_TREES):
            continue  # a system folder: the sandbox shows it already, and a bind over it would re-mask it
        if real not in shown:
            shown.append(real)
    return tuple(shown), ""


def unbindable(path: Path, workspace: Path, home: Path, *, places: _Places | None = None) -> str:
    """Why the sandbox must not show `path` (a resolved folder), or "" when it may."""
    if path == Path("/") or path in _PRIVATE_TREES or path == home:
        return f"{path} is a whole private tree; only an environment's own folders are shown"
    if _inside(home, path) or _inside(workspace, path):
        return f"{path} holds your home folder or the repository; only an environment's own folders are shown"
    for pseudo in _PSEUDO_TREES:
        if _inside(path, pseudo) or _inside(pseudo, path):
            return f"{path} is in {pseudo}, never shown (the sandbox has its own)"
    if is_secret_path(path.as_posix()):
        return f"{path} is a credential path (deny list); never shown"
    for secret in HOME_SECRET_PATHS:
        if _inside(path, home / secret):
            return f"{path} is inside ~/{secret} (deny list); never shown"
    if _in_another_home(path, home) and not any(_inside(path, root) for root in
                                                 (places.interpreter_roots if places is not None else ())):
        return f"{path} is in another user's home folder; never shown"
    for agent in places.agent_dirs if places is not None else ():
        if _inside(path, agent) or _inside(agent, path):
            return f"{path} is gptoss-agent's own folder ({agent}: sessions, settings, models); never shown"
    return ""


def _in_another_home(path: Path, home: Path) -> bool:
    """Under /root or /home/<someone> but not under our own $HOME (as nobody, /home/alice is a neighbour's)."""
    return any(_inside(path, tree) for tree in (Path("/root"), Path("/home"))) and not _inside(path, home)


_NOT_AN_INTERPRETER = "not an interpreter prefix"


def _base_refusal(base: Path, places: _Places) -> str:
    """Why a venv's base `base` (resolved) may not be shown: not a real interpreter prefix (no link out of
    it), or in a hidden place that is not where interpreters are installed."""
    if not _interpreter_prefix(base):
        return _NOT_AN_INTERPRETER
    if _inside(base, places.workspace):
        return ""  # shown as part of the tree, nothing to bind
    why = unbindable(base, places.workspace, places.home, places=places)
    if why:
        return why
    if any(_inside(base, tree) for tree in _BOUND_TREES):
        if not any(_inside(base, root) for root in places.interpreter_roots):
            return (f"the base interpreter {base} is not in a folder where interpreters are installed "
                    "(~/.pyenv/versions, uv's, conda's, mise's, asdf's); never shown (use --python)")
    return ""


def _interpreter_prefix(base: Path) -> bool:
    """A real installation: `bin` and `lib` are folders, not links, and hold a python and a standard library
    that are inside them (a link inside `bin` may lead to the same `bin`: python3 -> python3.11)."""
    bin_dir, lib = base / "bin", base / "lib"
    if _real(bin_dir) != bin_dir or _real(lib) != lib or not bin_dir.is_dir() or not lib.is_dir():
        return False
    python = _python_in(bin_dir)
    if python is None or not _inside(_real(python), bin_dir) or not _regular(python):
        return False
    try:
        libraries = list(lib.glob("python3*"))[:_MAX_NAMES]
    except OSError:
        return False
    for library in libraries:
        os_py = library / "os.py"
        if _real(library) == library and _regular(os_py) and not os.path.islink(os_py):
            return True
    return False


def _base_prefixes(venv: Path, workspace: Path) -> tuple[list[Path], str]:
    """The base interpreter's prefix, as pyvenv.cfg's `home` and `executable` and the bin/python link say;
    or why they may not be followed (a path through /proc: `/proc/self/cwd` is whatever folder the agent
    runs in)."""
    found: list[Path] = []
    config = read_small_text(venv / "pyvenv.cfg", _SMALL_FILE) or ""
    for line in config.splitlines():
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value or not os.path.isabs(value) or key not in ("home", "executable", "base-executable"):
            continue
        lexical = Path(os.path.normpath(value))
        for pseudo in _PSEUDO_TREES:
            if _inside(lexical, pseudo):
                return [], f"pyvenv.cfg's {key} ({value[:80]}) is in {pseudo}; never followed"
        if key == "home":
            found.append(lexical.parent if lexical.name == "bin" else lexical)
        else:
            found.append(lexical.parent.parent)
    python = _python_in(venv / "bin")
    if python is not None:
        target = _real(python)
        if target is not None and target.parent.name == "bin":
            found.append(target.parent.parent)
    unique: list[Path] = []
    for path in found:
        real = _real(path)
        if real is not None and real not in unique:
            unique.append(real)
    return unique, ""


def _has_stdlib(prefix: Path) -> bool:
    try:
        return any((lib / "os.py").is_file() for lib in (prefix / "lib").glob("python3*"))
    except OSError:
        return False


def _python_in(bin_dir: Path) -> Path | None:
    for name in ("python", "python3"):
        candidate = bin_dir / name
        try:
            if os.path.exists(candidate):
                return candidate
        except OSError:
            return None
    return None


# ---------------------------------------------------------------------- tools' own locations

def _poetry_env(workspace: Path, home: Path, environ: Mapping[str, str]) -> _Found | None:
    """poetry's `{name}-{hash of the project path}-py{X.Y}` in its virtualenvs folder (only with a
    pyproject that uses poetry)."""
    project = _toml(workspace / "pyproject.toml")
    tool = project.get("tool", {}) if isinstance(project.get("tool"), dict) else {}
    poetry = tool.get("poetry")
    if not isinstance(poetry, dict) and not _regular(workspace / "poetry.lock"):
        return None
    name = (poetry or {}).get("name") if isinstance(poetry, dict) else None
    if not isinstance(name, str):
        section = project.get("project")
        name = section.get("name") if isinstance(section, dict) else None
    if not isinstance(name, str) or not name:
        return None
    sanitized = re.sub(r'[ $`!*@"\\\r\n\t]', "_", re.sub(r"[-_.]+", "-", name).lower())[:42]
    digest = base64.urlsafe_b64encode(hashlib.sha256(os.path.normcase(str(workspace)).encode()).digest()).decode()[:8]
    folder = _poetry_virtualenvs(home, environ)
    stem = f"{sanitized}-{digest}-py"
    if folder is None or "/" in stem or "\0" in stem:
        return None
    try:
        matches = sorted((entry for entry in os.listdir(folder) if entry.startswith(stem)),
                         key=_version_key, reverse=True)
    except OSError:
        return None
    if not matches:
        return None
    return _Found("poetry", f"poetry:{matches[0]}", folder / matches[0],
                  f"poetry's environment for this project in {folder}")


def _poetry_virtualenvs(home: Path, environ: Mapping[str, str]) -> Path | None:
    if environ.get("POETRY_VIRTUALENVS_PATH"):
        return Path(environ["POETRY_VIRTUALENVS_PATH"])
    config_dir = Path(environ.get("POETRY_CONFIG_DIR") or Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
                      / "pypoetry")
    config = _toml(config_dir / "config.toml")
    section = config.get("virtualenvs")
    if isinstance(section, dict) and isinstance(section.get("path"), str):
        return Path(os.path.expanduser(section["path"]))
    cache = environ.get("POETRY_CACHE_DIR") or config.get("cache-dir")
    if not isinstance(cache, str):
        cache = str(Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "pypoetry")
    return Path(os.path.expanduser(cache)) / "virtualenvs"


def _version_key(name: str) -> tuple[int, ...]:
    tail = name.rsplit("-py", 1)[-1]
    return tuple(int(part) for part in re.findall(r"\d+", tail))


def _workon_home(home: Path, environ: Mapping[str, str]) -> Path:
    if environ.get("WORKON_HOME"):
        return Path(os.path.expanduser(environ["WORKON_HOME"]))
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "virtualenvs"


def _pipenv_env(workspace: Path, home: Path, environ: Mapping[str, str]) -> _Found | None:
    """pipenv's `{folder name}-{hash of the Pipfile path}` in WORKON_HOME (only with a Pipfile)."""
    pipfile = workspace / "Pipfile"
    if not _regular(pipfile):
        return None
    clean = re.sub(r'[ &$`!*@"()\[\]\\\r\n\t]', "_", workspace.name)[:42]
    digest = base64.urlsafe_b64encode(hashlib.sha256(str(pipfile).encode()).digest()[:6]).decode()
    folder = _workon_home(home, environ) / f"{clean}-{digest}"
    if not folder.is_dir():
        return None
    return _Found("pipenv", f"pipenv:{folder.name}", folder,
                  f"pipenv's environment for this Pipfile in {folder.parent}")


def _workon_env(workspace: Path, home: Path, environ: Mapping[str, str]) -> _Found | None:
    """A virtualenvwrapper (or pipenv) environment whose `.project` file names this repository."""
    folder = _workon_home(home, environ)
    try:
        entries = sorted(os.listdir(folder))[:_MAX_WORKON_ENVS]
    except OSError:
        return None
    for entry in entries:
        named = (read_small_text(folder / entry / ".project", _SMALL_FILE) or "").strip()
        if named and _real(Path(named)) == workspace:
            return _Found("virtualenvwrapper", f"workon:{entry}", folder / entry,
                          f"{folder / entry}/.project names this repository")
    return None


def _tox_envs(workspace: Path):
    tox = workspace / ".tox"
    try:
        names = sorted(os.listdir(tox), key=lambda n: (not n.startswith("py"), n))[:_MAX_NAMES]
    except OSError:
        return
    for name in names:
        if not name.startswith(".") and name not in ("log", "dist"):
            yield _Found("tox", f".tox/{name}", tox / name, f"tox's {name} environment in the repository")


def _pyenv_version(workspace: Path, home: Path, environ: Mapping[str, str], skipped: list[str]) -> _Found | None:
    """PYENV_VERSION, else the repository's `.python-version`, as a folder of PYENV_ROOT/versions."""
    root = Path(environ.get("PYENV_ROOT") or home / ".pyenv")
    versions = _real(root / "versions")
    if versions is None or not versions.is_dir():
        return None
    source = "PYENV_VERSION"
    text = environ.get("PYENV_VERSION")
    if not text:
        text, source = read_small_text(workspace / ".python-version", _SMALL_FILE), "the repository's .python-version"
    if not text:
        return None
    for name in text.replace(":", " ").split()[:_MAX_NAMES]:  # a hostile file may list thousands
        if name.startswith("#") or name == "system":
            continue
        if not _PYENV_NAME.match(name) or ".." in name:
            skipped.append(f"pyenv: {name[:60]!r} from {source} is not a version name")
            continue
        folder = _real(versions / name)
        if folder is None or not _inside(folder, versions):
            skipped.append(f"pyenv: {name} from {source} is not installed under {versions}")
            continue
        return _Found("pyenv", f"pyenv:{name}", folder, f"pyenv {name} ({source})")
    return None


# ---------------------------------------------------------------------- the sandbox's view

def sandbox_variables(env: PythonEnv, path_variable: str, own_prefix: str | None = None) -> dict[str, str]:
    """PATH (the environment's bin first) and VIRTUAL_ENV / CONDA_PREFIX, as an activated shell has them.

    gptoss-agent's own virtualenv (`own_prefix`, default this process's) leaves PATH: started from an
    activated one, `python` would otherwise be the agent's interpreter, not the project's."""
    variables: dict[str, str] = {}
    entries = [p for p in path_variable.split(os.pathsep) if p]
    own = _real(Path(own_prefix or sys.prefix))
    if own is not None and (own / "pyvenv.cfg").exists() and _real(env.prefix or Path("/nonexistent")) != own:
        entries = [p for p in entries if _real(Path(p)) != own / "bin"]
    if env.bin_dir is not None:
        first = str(env.bin_dir)
        entries = [first] + [p for p in entries if p != first]
    variables["PATH"] = os.pathsep.join(entries) or "/usr/local/bin:/usr/bin:/bin"
    if env.is_venv and env.prefix is not None:
        variables["VIRTUAL_ENV"] = str(env.prefix)
    if env.is_conda and env.prefix is not None:
        variables["CONDA_PREFIX"] = str(env.prefix)
    return variables


# ---------------------------------------------------------------------- small helpers

def _real(path: Path) -> Path | None:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


def _inside(path: Path | None, folder: Path | None) -> bool:
    return path is not None and folder is not None and (path == folder or path.is_relative_to(folder))


def _short(path: Path, workspace: Path, home: Path) -> str:
    """A name for the status bar: relative to the repository, `~/…`, or the folder's name."""
    real = _real(path) or path
    if _inside(real, workspace):
        return str(real.relative_to(workspace)) or "."
    if _inside(real, home):
        return "~/" + str(real.relative_to(home))
    return str(path)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _toml(path: Path) -> dict:
    text = read_small_text(path, _SMALL_FILE)
    if not text:
        return {}
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["PythonEnv", "detect", "doctor_lines", "environment_shape", "visible_folders", "unbindable",
           "sandbox_variables"]


def doctor_lines(env: PythonEnv) -> list[str]:
    """What `gptoss-agent doctor` prints about the project's Python: which, why, what the sandbox shows."""
    lines = [f"python: {env.describe()}"]
    lines += [f"  - passed over: {why}" for why in env.skipped]
    lines += [f"  - shown read-only in the sandbox: {path}" for path in env.visible]
    lines += [f"  - PROBLEM: {problem}" for problem in env.problems]
    return lines


def status_name(env: PythonEnv | None) -> str | None:
    """The status bar's short name, for an environment of the project's own (a venv, conda, the user's
    setting); None for a plain interpreter, which says nothing a user would look for there."""
    if env is None or env.problems or not (env.is_venv or env.is_conda or env.kind == "override"):
        return None
    return env.name
