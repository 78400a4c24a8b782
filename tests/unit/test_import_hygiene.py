"""Import hygiene: what each entry point loads, which way the layers import, and which names we install.

`--help` and the headless path must start without the TUI or llama.cpp; a layer may import only the layers
below it (a front-end can be replaced without touching the agent, a tool cannot reach up into the loop); and
installing gptoss-agent must never put a generic top-level name such as `agent` or `tools` on the import path,
where another distribution's package of the same name would clobber ours, or ours theirs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {"agent": "gptoss_agent.agent", "tools": "gptoss_agent.tools", "prompts": "gptoss_agent.prompts"}

# Lowest first. A module belongs to the most specific prefix listed; it may import its own layer and any below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("gptoss_agent.prompts", "gptoss_agent.agent.types", "gptoss_agent.agent.events",
                    "gptoss_agent.agent.safe_text", "gptoss_agent.agent.fences", "gptoss_agent.agent.protocols",
                    "gptoss_agent.agent.prompts", "gptoss_agent.agent.config", "gptoss_agent.agent.locations",
                    "gptoss_agent.agent.user_error", "gptoss_agent.agent.approvals",
                    "gptoss_agent.agent.choices")),
    ("model", ("gptoss_agent.agent.model",)),
    ("tools", ("gptoss_agent.tools",)),
    ("agent", ("gptoss_agent.agent",)),
    ("front-ends", ("gptoss_agent.agent.frontends",)),
]
# Below, but still out of reach: a front-end reaches the tools only through the runtime's operations
# (agent/operations.py), so the trust boundary holds in one place (the TUI's /diff once ran a hostile
# `diff.external` on the host by calling a git tool itself).
SKIPPED = {("front-ends", "tools")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([FOLDERS[parts[0]], *parts[1:]])


def _layer(module: str) -> int | None:
    """The index of MODULE's layer: the longest matching prefix wins (agent.model is not agent)."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return None if best is None else best[0]


def _runtime_imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, list[str]]]:
    """(line, candidates) for every import outside `if TYPE_CHECKING:` (type-only imports run nothing).

    `from pkg import name` may import the module pkg.name or a name defined in pkg: the candidates are
    both, most specific first."""
    found: list[tuple[int, list[str]]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, [alias.name]) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.extend((child.lineno, [f"{target}.{alias.name}", target]) for alias in child.names)
            visit(child)

    visit(tree)
    return found


def _our_sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _known(candidates: list[str], modules: set[str]) -> str | None:
    """The first candidate that is one of our modules, else the longest prefix of one that is."""
    for name in candidates:
        if name in modules:
            return name
    parts = candidates[-1].split(".")
    for n in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def test_every_module_of_ours_has_a_layer():
    unplaced = [_module_name(p) for p in _our_sources() if _layer(_module_name(p)) is None]
    assert unplaced == []


def test_layers_import_only_downwards():
    """foundation < model < tools < agent < front-ends: nothing imports a layer above its own, and no
    front-end imports a tool."""
    modules = {_module_name(p) for p in _our_sources()}
    upward = []
    for path in _our_sources():
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, candidates in _runtime_imports(tree, module, path.name == "__init__.py"):
            ours = _known(candidates, modules)
            if ours is None or ours == module:
                continue
            if (LAYERS[_layer(module)][0], LAYERS[_layer(ours)][0]) in SKIPPED:
                upward.append(f"{path.relative_to(REPO)}:{line} ({LAYERS[_layer(module)][0]}) imports {ours} "
                              "directly: go through agent/operations.py")
            elif _layer(ours) > _layer(module):
                upward.append(f"{path.relative_to(REPO)}:{line} ({LAYERS[_layer(module)][0]}) imports {ours} "
                              f"({LAYERS[_layer(ours)][0]})")
    assert upward == [], "\n".join(upward)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above can fail: a tool importing the loop is caught, a type-only import is not counted."""
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gptoss_agent.agent import loop\n"
                     "def f():\n    from gptoss_agent.agent.loop import Agent\n")
    modules = {"gptoss_agent.agent", "gptoss_agent.agent.loop", "gptoss_agent.tools.shell"}
    found = [_known(c, modules) for _, c in _runtime_imports(tree, "gptoss_agent.tools.shell", False)]
    targets = [t for t in found if t]
    assert targets == ["gptoss_agent.agent.loop"]
    assert _layer("gptoss_agent.agent.loop") > _layer("gptoss_agent.tools.shell")
    assert _layer("gptoss_agent.agent.model.harmony") < _layer("gptoss_agent.tools.shell")
    assert (LAYERS[_layer("gptoss_agent.agent.frontends.tui.app")][0], LAYERS[_layer("gptoss_agent.tools.git")][0]) \
        in SKIPPED


def _loaded_after(code: str, *, cwd: Path) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _heavy(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m.split(".")[0] in ("textual", "llama_cpp")
                  or m.startswith("gptoss_agent.agent.frontends.tui"))


def test_help_loads_neither_the_tui_nor_llama_cpp(tmp_path):
    loaded = _loaded_after("import contextlib, io, sys\n"
                           "from gptoss_agent.agent.frontends.cli import main\n"
                           "sys.argv = ['gptoss-agent', '--help']\n"
                           "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                           "    main(['--help'])\n", cwd=tmp_path)
    assert "gptoss_agent.agent.frontends.cli" in loaded
    assert _heavy(loaded) == []


def test_a_headless_run_on_the_replay_backend_loads_neither_the_tui_nor_llama_cpp(tmp_path, vocab_dir):
    """`gptoss-agent exec` with a scripted model, to the end of a real run: no TUI, no llama.cpp."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "README.md").write_text("hello\n")
    script = tmp_path / "replay.json"
    script.write_text(json.dumps(["<|channel|>final<|message|>Done.<|return|>"]))
    loaded = _loaded_after("import contextlib, io, sys\n"
                           "from gptoss_agent.agent.frontends.cli import main\n"
                           "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                           f"    main(['exec', '--backend', 'replay:{script}', 'say done', '--cwd', '{repo}'])\n",
                           cwd=repo)
    assert "gptoss_agent.agent.loop" in loaded, "the run did not reach the loop"
    assert _heavy(loaded) == []


def test_the_package_installs_only_names_under_gptoss_agent():
    """The wheel's package list: every package (each folder of ours that holds code) lives under gptoss_agent."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = list(config["packages"]) + list(config.get("package-data", {})) + list(config.get("package-dir", {}))
    assert all(n.startswith("gptoss_agent.") for n in names), names
    code_folders = {_module_name(p).rpartition(".")[0] if p.name != "__init__.py" else _module_name(p)
                    for p in _our_sources()}
    assert sorted(code_folders - set(config["packages"])) == [], "folders with code missing from the package list"


@pytest.mark.parametrize("generic", sorted(FOLDERS))
def test_the_installed_package_puts_no_generic_name_on_the_path(generic, tmp_path):
    """From a folder outside the checkout, `agent`, `tools` and `prompts` do not resolve to our code."""
    probe = ("import importlib.util, json, sys\n"
             f"spec = importlib.util.find_spec({generic!r})\n"
             "ours = importlib.util.find_spec('gptoss_agent.agent.loop')\n"
             "print(json.dumps([spec and spec.origin, ours and ours.origin]))\n")
    done = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    generic_origin, ours = json.loads(done.stdout)
    assert ours is not None, "gptoss_agent is not installed in this Python"
    assert generic_origin is None or not Path(generic_origin).resolve().is_relative_to(REPO)
