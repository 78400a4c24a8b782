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
and a venv's `pyvenv.cfg` is data. So every folder this module asks the sandbox to show passes
`bindable`: it must be a real environment or interpreter prefix (a `pyvenv.cfg` or `conda-meta`, a
`bin/python`, a standard library), never `/`, a private tree, $HOME or a folder above it or above the
repository, never a credential path of the shared deny list; only `bin` and `lib` of a base interpreter
are shown, never its whole prefix.
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

from tools.denylist import HOME_SECRET_PATHS, is_secret_path

_SMALL_FILE = 64 * 1024
_PRIVATE_TREES = (Path("/root"), Path("/home"), Path("/tmp"), Path("/var/tmp"), Path("/run"), Path("/dev/shm"))
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

def detect(workspace: Path, environ: Mapping[str, str] | None = None, *, override: str | None = None,
           own_prefix: str | None = None) -> PythonEnv:
    """The project's environment for `workspace` (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    workspace = Path(os.path.realpath(workspace))
    home = Path(os.path.realpath(environ.get("HOME") or "/root"))
    own = Path(os.path.realpath(own_prefix or sys.prefix))
    skipped: list[str] = []
    if override:
        return _from_override(override, workspace, home, environ.get("PATH", ""))
    for found in _candidates(workspace, home, environ, own, skipped):
        env = _accept(found, workspace, home, skipped)
        if env is not None:
            return env
    return _system(environ, skipped)


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


def _accept(found: _Found, workspace: Path, home: Path, skipped: list[str]) -> PythonEnv | None:
    """`found` as a PythonEnv when it is a real environment whose folders the sandbox may show."""
    prefix = _real(found.prefix)
    if prefix is None or not prefix.is_dir():
        skipped.append(f"{found.name}: {found.prefix} does not exist")
        return None
    shape = environment_shape(prefix)
    if shape is None:
        skipped.append(f"{found.name}: {found.prefix} is not a Python environment (no pyvenv.cfg or conda-meta "
                       "with a bin/python, and no standard library)")
        return None
    visible, refused = visible_folders(prefix, shape, workspace, home)
    if refused:
        skipped.append(f"{found.name}: {refused}")
        return None
    python = _python_in(prefix / "bin")
    return PythonEnv(found.kind, found.name, str(found.prefix / "bin" / python.name), found.reason, found.prefix,
                     found.prefix / "bin", is_venv=shape == "venv", is_conda=shape == "conda", visible=visible,
                     skipped=tuple(skipped))


def _system(environ: Mapping[str, str], skipped: list[str]) -> PythonEnv:
    return PythonEnv("system", "python3", "python3", "no project environment found: python3 on PATH",
                     skipped=tuple(skipped))


def _from_override(value: str, workspace: Path, home: Path, path_variable: str = "") -> PythonEnv:
    """The user's `python` setting: an interpreter or an environment folder (relative: to the repository),
    or a bare name found on PATH (`python3.12`)."""
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
    shape = environment_shape(_real(prefix) or prefix)
    if shape is None:
        return PythonEnv("override", value, str(path), reason,
                         problems=(f"{value} is not a Python environment or installation",))
    visible, refused = visible_folders(_real(prefix), shape, workspace, home)
    if refused:
        return PythonEnv("override", value, str(path), reason, problems=(refused,))
    interpreter = str(path) if not real.is_dir() else str(prefix / "bin" / _python_in(prefix / "bin").name)
    return PythonEnv("override", _short(prefix, workspace, home), interpreter, reason, prefix, prefix / "bin",
                     is_venv=shape == "venv", is_conda=shape == "conda", visible=visible)


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


def visible_folders(prefix: Path, shape: str, workspace: Path, home: Path) -> tuple[tuple[Path, ...], str]:
    """(folders the sandbox shows read-only for this environment, why it may not when it may not).

    A venv: its own folder, and `bin` + `lib` of the base interpreter its pyvenv.cfg and its python link
    name (each checked to be an interpreter prefix). A conda environment: its folder. A plain installation:
    its `bin` and `lib`. Folders inside the repository need no binding (the repository is shown whole).
    """
    wanted: list[Path] = []
    if shape in ("venv", "conda"):
        wanted.append(prefix)
    else:
        wanted += [prefix / "bin", prefix / "lib"]
    if shape == "venv":
        for base in _base_prefixes(prefix):
            if not _has_stdlib(base):
                continue  # pyvenv.cfg is data: a `home` that is not an interpreter is never shown
            wanted += [base / "bin", base / "lib"]
    shown: list[Path] = []
    for path in wanted:
        real = _real(path)
        if real is None or not real.exists() or _inside(real, workspace):
            continue
        why = unbindable(real, workspace, home)
        if why:
            return (), why
        if real not in shown:
            shown.append(real)
    return tuple(shown), ""


def unbindable(path: Path, workspace: Path, home: Path) -> str:
    """Why the sandbox must not show `path` (a resolved folder), or "" when it may."""
    if path == Path("/") or path in _PRIVATE_TREES or path == home:
        return f"{path} is a whole private tree; only an environment's own folders are shown"
    if _inside(home, path) or _inside(workspace, path):
        return f"{path} holds your home folder or the repository; only an environment's own folders are shown"
    if is_secret_path(path.as_posix()):
        return f"{path} is a credential path (deny list); never shown"
    for secret in HOME_SECRET_PATHS:
        if _inside(path, home / secret):
            return f"{path} is inside ~/{secret} (deny list); never shown"
    return ""


def _base_prefixes(venv: Path) -> list[Path]:
    """The base interpreter's prefix, as pyvenv.cfg's `home` and `executable` and the bin/python link say."""
    found: list[Path] = []
    config = _read_small(venv / "pyvenv.cfg") or ""
    for line in config.splitlines():
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value or not os.path.isabs(value):
            continue
        if key == "home":
            home_dir = Path(value)
            found.append(home_dir.parent if home_dir.name == "bin" else home_dir)
        elif key in ("executable", "base-executable"):
            found.append(Path(value).parent.parent)
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
    return unique


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
        named = (_read_small(folder / entry / ".project") or "").strip()
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
        text, source = _read_small(workspace / ".python-version"), "the repository's .python-version"
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


def _read_small(path: Path) -> str | None:
    """A regular file's first 64 KiB: never through a link (a repository's `.python-version` linked to a
    host file would show that file), never a FIFO's hang."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, _SMALL_FILE).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _toml(path: Path) -> dict:
    text = _read_small(path)
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
