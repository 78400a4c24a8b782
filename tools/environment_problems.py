"""Environment versus code: test failures that no edit to the repository can fix, and the command that does.

The project is not installed in its environment (an src/ layout, a version read from package metadata),
a dependency is missing, the test runner is missing, or a test needs the network the sandbox never
gives. Asking the model to "fix" these wastes every attempt: `fix` tells the user once, in plain words,
with the command to run, and exits 2.

Pure: `diagnose` reads runner output and per-failure texts; `project_facts` (the one function with I/O)
reads the repository's own declarations with bounds and without following links. Conservative by
design: a failure counts as environmental only when its text says so in a way code rarely does, and a
missing module that looks like a misspelling of the project's own is left to the model.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from gptoss_agent.tools.paths import read_small_text

_NO_MODULE = re.compile(r"No module named '?([A-Za-z_][\w.]*)'?")
_NO_METADATA = re.compile(r"(?:PackageNotFoundError: '?([\w.-]+)'?\s*$|No package metadata was found for ([\w.-]+)"
                          r"|The '([\w.-]+)' distribution was not found)", re.MULTILINE)
_NETWORK = re.compile(r"Temporary failure in name resolution|Name or service not known|Network is unreachable"
                      r"|nodename nor servname|socket\.gaierror|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)"
                      r"|Could not resolve host|dial tcp: lookup|No address associated with hostname"
                      r"|\[Errno -[23]\]|\[Errno 101\]")
_NOT_FOUND = re.compile(r"(?:execvp (\S+): No such file or directory|cannot start (\S+):|(\S+): command not found"
                        r"|sh: \d+: (\S+): not found)")
# The error itself, as a runner prints it: `[E   ]module.Type: message` (pytest's E lines, a traceback's last
# line, unittest's block). Only these lines are read, and only for these types: an assertion that compares
# a message (`assert f() == "No module named 'yaml'"`) or prints one is a code problem, the model's.
_ERROR_LINE = re.compile(r"^(?:E\s+)?(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)(?: \[[\w-]+\])?: (.*)$", re.MULTILINE)
_IMPORT_ERRORS = frozenset({"ModuleNotFoundError", "ImportError"})
_METADATA_ERRORS = frozenset({"PackageNotFoundError", "DistributionNotFound"})
_NETWORK_ERRORS = frozenset({"gaierror", "herror", "OSError", "ConnectionError", "URLError", "MaxRetryError",
                             "NewConnectionError", "NameResolutionError", "ConnectError", "ConnectTimeout",
                             "ClientConnectorError", "ClientConnectorDNSError", "ClientOSError", "SSLError",
                             "ProxyError", "FetchError"})
_RUNNER_MODULES = {"pytest": "pytest", "unittest": "unittest"}
_RUNNER_PACKAGES = {"go": "golang-go", "cargo": "cargo", "npm": "npm", "node": "nodejs"}
# Import names whose distribution is called something else (the common ones).
_DISTRIBUTION_OF = {"yaml": "pyyaml", "pil": "pillow", "sklearn": "scikit-learn", "cv2": "opencv-python",
                    "bs4": "beautifulsoup4", "dateutil": "python-dateutil", "attr": "attrs", "dotenv": "python-dotenv",
                    "jwt": "pyjwt", "magic": "python-magic", "serial": "pyserial", "usb": "pyusb",
                    "google.protobuf": "protobuf", "pkg_resources": "setuptools", "git": "gitpython"}
_SMALL_FILE = 256 * 1024
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


@dataclass(frozen=True)
class ProjectFacts:
    """What the repository says about itself: its importable names, its distribution, its dependencies."""

    local_modules: frozenset[str] = frozenset()  # top-level import names the repository defines
    distribution: str | None = None  # normalised [project] name
    declared: dict[str, str] = field(default_factory=dict)  # normalised dependency → "", "extra:NAME" or "file:PATH"


@dataclass(frozen=True)
class EnvironmentProblem:
    """One cause, told to the user once."""

    kind: str  # project not installed | missing dependency | test runner missing | network needed
    detail: str  # plain words
    command: str  # what fixes it ("" when no command does)
    tests: tuple[str, ...] = ()  # the failing tests it explains; empty: the run as a whole

    def message(self) -> str:
        return self.detail + (f"; run: {self.command}" if self.command else "")


@dataclass(frozen=True)
class Diagnosis:
    problems: tuple[EnvironmentProblem, ...]
    explained: frozenset[str]  # failing test ids an environment problem explains
    unexplained: frozenset[str]  # failing test ids left to the model

    @property
    def only_environment(self) -> bool:
        """Every failure is environmental: no edit can make this suite pass."""
        return bool(self.problems) and not self.unexplained

    def message(self) -> str:
        """One paragraph for the user, each cause once."""
        return "; ".join(problem.message() for problem in self.problems)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def diagnose(failures: Sequence[tuple[str, str]], output: str, *, runner: str, program: str,
             facts: ProjectFacts, install: Callable[[str], str]) -> Diagnosis:
    """Which failures are environmental, and the problems behind them.

    `failures`: (test id, its message and traceback) per failing test; `output`: what the runner printed
    (its tail is enough); `program`: the runner's argv[0]; `install(target)`: the command that installs
    `target` ("-e .", "pytest", "'.[test]'") into the project's environment.
    """
    whole = _whole_run_problem(output, runner, program, install) if not failures else None
    if whole is not None:
        return Diagnosis((whole,), frozenset(), frozenset())
    problems: dict[tuple[str, str], EnvironmentProblem] = {}
    explained: set[str] = set()
    texts = _with_unittest_blocks(failures, output)
    for test_id, text in texts:
        problem = _problem_in(text, facts, install, runner)
        if problem is None:
            continue
        explained.add(test_id)
        key = (problem.kind, problem.command or problem.detail)  # one line per command, or per cause without one
        known = problems.get(key)
        problems[key] = EnvironmentProblem(problem.kind, problem.detail, problem.command,
                                           (known.tests if known else ()) + (test_id,))
    unexplained = frozenset(test_id for test_id, _ in failures) - explained
    return Diagnosis(tuple(problems.values()), frozenset(explained), unexplained)


def _whole_run_problem(output: str, runner: str, program: str, install: Callable[[str], str]) -> \
        EnvironmentProblem | None:
    """A run that reported no failing test at all: the runner itself could not start."""
    module = _RUNNER_MODULES.get(runner)
    missing = _NO_MODULE.search(output)
    if module and missing and missing.group(1) == module and re.search(rf"python[\d.]*: No module named {module}\b",
                                                                       output):
        return EnvironmentProblem("test runner missing", f"{module} is not installed in the project's environment "
                                  f"({program})", install(module))
    found = _NOT_FOUND.search(output)
    if found:
        name = os.path.basename(next(g for g in found.groups() if g))
        if name == os.path.basename(program):
            package = _RUNNER_PACKAGES.get(name)
            hint = f"apt install {package}" if package else ""
            return EnvironmentProblem("test runner missing", f"the test runner `{name}` is not installed (or not on "
                                      "the PATH the sandbox sees)", hint)
    return None


def _errors(text: str, types: frozenset[str]) -> str:
    """The messages of the error lines of `text` whose exception type is one of `types`, one per line."""
    return "\n".join(message for name, message in _ERROR_LINE.findall(text) if name in types)


def _problem_in(text: str, facts: ProjectFacts, install: Callable[[str], str], runner: str) -> \
        EnvironmentProblem | None:
    metadata = _NO_METADATA.search(_errors(text, _METADATA_ERRORS) + "\n" + _metadata_messages(text))
    if metadata:
        name = normalise(next(g for g in metadata.groups() if g))
        if facts.distribution and name == facts.distribution:
            return _not_installed(install, f"the project's package metadata ({name}) is missing")
        return _missing_dependency(name, facts, install)
    missing = _NO_MODULE.search(_errors(text, _IMPORT_ERRORS))
    if missing:
        dotted = missing.group(1)
        top = dotted.split(".")[0]
        if top in facts.local_modules:
            if dotted != top:
                return None  # mypkg.sub missing while mypkg is the project's: a code problem
            return _not_installed(install, f"the project's own package `{top}` cannot be imported")
        if top == _RUNNER_MODULES.get(runner):
            return EnvironmentProblem("test runner missing", f"{top} is not installed in the project's environment",
                                      install(top))
        if difflib.get_close_matches(top, sorted(facts.local_modules), n=1, cutoff=0.8):
            return None  # `import calcc` next to calc: a typo in the code, the model's to fix
        return _missing_dependency(_DISTRIBUTION_OF.get(dotted.lower(), _DISTRIBUTION_OF.get(top.lower(), top)),
                                   facts, install)
    if _NETWORK.search(_errors(text, _NETWORK_ERRORS)):
        return EnvironmentProblem("network needed", "tests need the network, which the sandbox never gives (no edit "
                                  "can change that); run them outside gptoss-agent, or leave them out with a "
                                  "test_cmd that deselects them", "")
    return None


def _metadata_messages(text: str) -> str:
    """PackageNotFoundError prints its message on the next line when it is the distribution's name only
    (`importlib.metadata.PackageNotFoundError: calc-kit`): those names, as `_NO_METADATA` reads them."""
    return "\n".join(f"PackageNotFoundError: {message}" for name, message in _ERROR_LINE.findall(text)
                      if name == "PackageNotFoundError")


def _not_installed(install: Callable[[str], str], why: str) -> EnvironmentProblem:
    return EnvironmentProblem("project not installed", f"{why}: the project is not installed in its environment",
                              install("-e ."))


def _missing_dependency(name: str, facts: ProjectFacts, install: Callable[[str], str]) -> EnvironmentProblem:
    where = facts.declared.get(normalise(name))
    # the extra's and the file's names are the repository's: quoted, so a pasted command runs nothing else
    if where == "":
        target = "-e ."
    elif where and where.startswith("extra:"):
        target = "-e " + shlex.quote(f".[{where[6:]}]")
    elif where and where.startswith("file:"):
        target = "-r " + shlex.quote(where[5:])
    else:  # a name only the test output gives: never turned into an install command (a typosquat's bait)
        return EnvironmentProblem("missing dependency", f"the module `{name}` is not installed in the project's "
                                  "environment, and the project does not declare it: install the distribution "
                                  "that provides it (check its name first)", "")
    return EnvironmentProblem("missing dependency", f"the dependency `{name}` is not installed in the project's "
                              "environment", install(target))


def _with_unittest_blocks(failures: Sequence[tuple[str, str]], output: str) -> list[tuple[str, str]]:
    """Failures without text (unittest's come from its summary) get their block of the output, when shown."""
    blocks: dict[str, str] = {}
    for chunk in re.split(r"^={20,}$", output, flags=re.MULTILINE)[1:]:
        head, _, body = chunk.strip("\n").partition("\n")
        match = re.match(r"(?:ERROR|FAIL): (\S+)(?: \(([^)]*)\))?", head)
        if match:
            body = re.split(r"^-{20,}\nRan \d+ tests?", body, flags=re.MULTILINE)[0]
            for name in filter(None, match.groups()):
                blocks[name] = body
    result = []
    for test_id, text in failures:
        if not text.strip():
            dotted = test_id.replace("/", ".").replace(".py::", ".").replace("::", ".")
            text = next((body for name, body in blocks.items()
                         if name == dotted or name.endswith("." + dotted.rsplit(".", 1)[-1]) and dotted in name
                         or dotted.endswith(name)), "")
        result.append((test_id, text))
    return result


def diagnose_report(ctx, report) -> Diagnosis:
    """`diagnose` for a tools.tests.TestReport run in `ctx` (its sandbox's environment gives the install command)."""
    from gptoss_agent.tools.python_env import PythonEnv

    env = getattr(ctx.sandbox, "python_env", None) or PythonEnv("system", "python3", "python3", "")
    failures = [(f.test_id, f"{f.message}\n{f.traceback}") for f in report.failures]
    if report.timed_out or len(failures) < report.failed + report.errors:
        failures.append(("(unlisted failures)", ""))  # what cannot be seen is never called environmental
    return diagnose(failures, report.output_tail, runner=report.runner, program=os.path.basename(report.command[0]),
                    facts=project_facts(ctx.workspace), install=env.install_command)


def user_message(ctx, diagnosis: Diagnosis) -> str:
    """One paragraph for the user: which interpreter was used (and why), what is wrong, the command."""
    env = getattr(ctx.sandbox, "python_env", None)
    used = f" (the project's Python: {env.name}, chosen as {env.reason})" if env is not None else ""
    return "the tests cannot pass whatever the agent edits" + used + ": " + diagnosis.message()


def model_note(diagnosis: Diagnosis) -> str:
    """What the model reads under a test report: these failures are not code to change, and who acts."""
    # test ids are the repository's text: they stay inside the report's fence, only their number is here
    count = len([t for t in diagnosis.explained if t != "(unlisted failures)"])
    which = f"{count} of the failing tests" if count else "the whole run"
    return ("Environment problem, not a code problem (no edit to the repository can fix it; tell the user, who "
            f"must act): {diagnosis.message()}. Affected: {which}.")


# ---------------------------------------------------------------------- the repository's declarations (I/O)

def project_facts(workspace: Path) -> ProjectFacts:
    """The repository's importable names, distribution name and declared dependencies (files read as data)."""
    local = set(_modules_in(workspace, top=True)) | set(_modules_in(workspace / "src", top=False))
    pyproject = _toml(workspace / "pyproject.toml")
    project = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else {}
    tool = pyproject.get("tool") if isinstance(pyproject.get("tool"), dict) else {}
    poetry = tool.get("poetry") if isinstance(tool.get("poetry"), dict) else {}
    setup_cfg = _ini(workspace / "setup.cfg")
    name = project.get("name") or poetry.get("name") or setup_cfg.get("metadata", {}).get("name")
    declared: dict[str, str] = {}
    for item in _strings(project.get("dependencies")):
        declared.setdefault(_requirement_name(item), "")
    for item in _strings(setup_cfg.get("options", {}).get("install_requires", "").splitlines()):
        declared.setdefault(_requirement_name(item), "")
    for key in (poetry.get("dependencies") or {}) if isinstance(poetry.get("dependencies"), dict) else {}:
        declared.setdefault(normalise(key), "")
    extras = project.get("optional-dependencies")
    for extra, items in (extras.items() if isinstance(extras, dict) else ()):
        if not _PLAIN_NAME.match(extra):
            continue  # an extra's name reaches the user's command line and the model's note: plain names only
        for item in _strings(items):
            declared.setdefault(_requirement_name(item), f"extra:{extra}")
    for extra, items in setup_cfg.get("options.extras_require", {}).items():
        if not _PLAIN_NAME.match(extra):
            continue
        for item in _strings(items.splitlines()):
            declared.setdefault(_requirement_name(item), f"extra:{extra}")
    for candidate in sorted(_requirement_files(workspace)):
        for line in (read_small_text(workspace / candidate, _SMALL_FILE) or "").splitlines():
            if line.strip() and not line.lstrip().startswith(("#", "-")):
                declared.setdefault(_requirement_name(line), f"file:{candidate}")
    declared.pop("", None)
    return ProjectFacts(frozenset(local), normalise(name) if isinstance(name, str) and name else None, declared)


_NOT_MODULES = {"setup", "conftest", "noxfile", "fabfile", "manage", "tasks", "docs", "tests", "test", "examples",
                "benchmarks", "scripts", "build", "dist"}


def _modules_in(folder: Path, *, top: bool) -> list[str]:
    try:
        entries = list(os.scandir(folder))[:2000]
    except OSError:
        return []
    names = []
    for entry in entries:
        name = entry.name
        if name.startswith((".", "_")) and name != "__init__.py":
            continue
        if entry.is_file(follow_symlinks=False) and name.endswith(".py") and name.isascii():
            names.append(name[:-3])
        elif entry.is_dir(follow_symlinks=False) and name.isidentifier():
            if not top or os.path.isfile(os.path.join(entry.path, "__init__.py")):
                names.append(name)
    return [n for n in names if n not in _NOT_MODULES and n.isidentifier()]


def _requirement_files(workspace: Path) -> list[str]:
    found = []
    for folder in ("", "requirements"):
        try:
            entries = os.listdir(workspace / folder) if folder else os.listdir(workspace)
        except OSError:
            continue
        for name in entries:
            if name.endswith(".txt") and ("requirement" in name or folder) and _PLAIN_NAME.match(name):
                found.append(f"{folder}/{name}" if folder else name)
    return found[:50]


def _requirement_name(text: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    return normalise(match.group(1)) if match else ""


def _strings(value) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _toml(path: Path) -> dict:
    try:
        data = tomllib.loads(read_small_text(path, _SMALL_FILE) or "")
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _ini(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(read_small_text(path, _SMALL_FILE) or "")
    except (configparser.Error, ValueError, RecursionError):
        return {}
    return {section: dict(parser.items(section)) for section in parser.sections()}
