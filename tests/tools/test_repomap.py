"""The repo map on a small multi-file project, its cache, and tags for every supported language."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from gptoss_agent.tools.files import repo_files
from gptoss_agent.tools.repomap import build_index, build_map, mentioned_files, ranked_definitions, repo_map
from gptoss_agent.tools.tags import extract

PROJECT = {
    "app/engine.py": "class Engine:\n    def __init__(self, fuel):\n        self.fuel = fuel\n\n    def start(self):\n        return ignite(self.fuel)\n\n\ndef ignite(fuel):\n    return fuel > 0\n",
    "app/car.py": "from app.engine import Engine\n\n\nclass Car:\n    def __init__(self):\n        self.engine = Engine(10)\n\n    def drive(self):\n        return self.engine.start()\n",
    "app/truck.py": "from app.engine import Engine\n\n\nclass Truck:\n    def __init__(self):\n        self.engine = Engine(50)\n",
    "app/boat.py": "from app.engine import Engine\n\n\ndef launch():\n    return Engine(5).start()\n",
    "app/report.py": "def format_report(rows):\n    return '\\n'.join(str(r) for r in rows)\n",
    "tests/test_car.py": "from app.car import Car\n\n\ndef test_drive():\n    assert Car().drive()\n",
    "node_modules/lib/index.js": "function vendored() { return 1; }\n",
    "static/app.min.js": "function a(){return 1}" * 200 + "\n",
}


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A", "-f"], cwd=root, check=True)
    return root


def index_of(root, tmp_path):
    return build_index(root, repo_files(root), cache_file=tmp_path / "cache.json")


def test_the_central_class_comes_first_with_signatures_and_lines(project, tmp_path, codec):
    index = index_of(project, tmp_path)
    ranked = ranked_definitions(index)
    assert (ranked[0][0], ranked[0][1].name) == ("app/engine.py", "Engine")
    text = repo_map(index, 200, codec.count)
    assert text.startswith("app/engine.py:\n  1: class Engine:")
    assert "5: def start(self):" in text


def test_vendored_and_minified_files_are_skipped(project, tmp_path):
    index = index_of(project, tmp_path)
    assert "node_modules/lib/index.js" not in index.files and "static/app.min.js" not in index.files
    assert any("app.min.js" in s for s in index.skipped)


def test_the_budget_is_respected_exactly(project, tmp_path, codec):
    index = index_of(project, tmp_path)
    full = repo_map(index, 10_000, codec.count)
    for budget in (20, 45, 80, codec.count(full) - 1):
        text = repo_map(index, budget, codec.count)
        assert codec.count(text) <= budget
        assert text != full  # cut (a member's declaration may give way to its name alone, so not always shorter)
    assert repo_map(index, codec.count(full), codec.count) == full
    assert repo_map(index, 0, codec.count) == ""


def test_personalisation_moves_the_task_file_up(project, tmp_path, codec):
    index = index_of(project, tmp_path)
    plain = [p for p, _, _ in ranked_definitions(index)]
    focus = mentioned_files("Please improve format_report in app/report.py", index.files)
    assert focus == ["app/report.py"]
    focused = [p for p, _, _ in ranked_definitions(index, focus)]
    assert focused.index("app/report.py") < plain.index("app/report.py")
    assert focused[0] == "app/report.py"


def test_second_run_parses_nothing_and_touching_a_file_reparses_one(project, tmp_path, codec):
    files = repo_files(project)
    first = build_map(project, files, 300, lambda: codec.count, cache_file=tmp_path / "c.json")
    assert first.parsed == 6 and not first.from_cache
    second = build_map(project, files, 300, lambda: pytest.fail("no tokenizer needed"), cache_file=tmp_path / "c.json")
    assert second.parsed == 0 and second.from_cache and second.text == first.text
    time.sleep(0.01)
    (project / "app/report.py").write_text(PROJECT["app/report.py"] + "\n\ndef summary(rows):\n    return len(rows)\n")
    third = build_map(project, files, 300, lambda: codec.count, cache_file=tmp_path / "c.json")
    assert third.parsed == 1 and "summary" in repo_map(index_of(project, tmp_path), 10_000, codec.count)


def test_a_file_with_syntax_errors_still_yields_what_parses(project, tmp_path):
    tags = extract("broken.py", b"def ok():\n    pass\n\ndef broken(:\n    return\n\nclass Still:\n    pass\n")
    assert [d.name for d in tags.definitions] == ["ok", "broken", "Still"]
    assert extract("notes.txt", b"whatever") is None


@pytest.mark.parametrize("name, source, expected", [
    ("a.py", b"class Calc:\n    def add(self):\n        pass\ndef helper():\n    pass\n",
     [("Calc", "class"), ("add", "method"), ("helper", "function")]),
    ("a.js", b"class Shape { area() { return 1; } }\nfunction compute() {}\nconst f = (x) => x;\n",
     [("Shape", "class"), ("area", "method"), ("compute", "function"), ("f", "function")]),
    ("a.ts", b"interface Point { x: number }\nclass Repo { find(): Point { return {x: 1}; } }\n",
     [("Point", "interface"), ("Repo", "class"), ("find", "method")]),
    ("a.go", b"package main\ntype Server struct{}\nfunc (s *Server) Serve() {}\nfunc main() {}\n",
     [("Server", "type"), ("Serve", "method"), ("main", "function")]),
    ("a.rs", b"struct Pool;\ntrait Run { fn run(&self); }\nfn spawn() {}\n",
     [("Pool", "struct"), ("Run", "trait"), ("spawn", "function")]),
    ("A.java", b"class App { void main() {} }\ninterface Svc {}\n", [("App", "class"), ("main", "method"), ("Svc", "interface")]),
    ("a.c", b"struct node { int v; };\nint add(int a, int b) { return a + b; }\n", [("node", "struct"), ("add", "function")]),
    ("a.cpp", b"class Widget { };\nvoid draw() {}\n", [("Widget", "class"), ("draw", "function")]),
    ("a.rb", b"module Shop\n  class Cart\n    def total\n    end\n  end\nend\n",
     [("Shop", "module"), ("Cart", "class"), ("total", "method")]),
])
def test_each_language_yields_definitions(name, source, expected):
    assert [(d.name, d.kind) for d in extract(name, source).definitions] == expected


def test_map_command_prints_the_map_and_reuses_it(project, vocab_dir):
    env = {**os.environ}
    first = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "map", "--tokens", "120", "--cwd", str(project)],
                           capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("app/engine.py:") and "6 parsed this run" in first.stderr
    second = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "map", "--tokens", "120", "--cwd", str(project)],
                            capture_output=True, text=True, env=env)
    assert second.stdout == first.stdout and "0 parsed this run, map reused" in second.stderr


def test_find_symbol_tool(project):
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.symbols import find_symbol

    result = find_symbol.function(ToolContext(workspace=project), name="Engine")
    assert result.ok and "app/engine.py:1: class Engine:" in result.output
    assert "used in 3 file(s): app/boat.py, app/car.py, app/truck.py" in result.output
    assert not find_symbol.function(ToolContext(workspace=project), name="Nope").ok


def test_focus_puts_the_focused_file_first_then_its_neighbours(project, tmp_path, codec):
    index = index_of(project, tmp_path)
    text = repo_map(index, 10_000, codec.count, focus=["app/report.py"])
    assert text.startswith("app/report.py:\n  1: def format_report(rows):")  # used by nothing, still first
    files = [line[:-1] for line in repo_map(index, 10_000, codec.count, focus=["app/car.py"]).splitlines()
             if line.endswith(":") and not line.startswith(" ")]
    assert files[0] == "app/car.py"
    # its neighbours: the engine it uses and the test that uses it, before the files it has nothing to do with
    assert set(files[1:3]) == {"app/engine.py", "tests/test_car.py"}
    assert files.index("app/report.py") > 2


def test_focus_is_first_even_when_the_budget_is_small_and_paths_are_spelt_differently(project, tmp_path, codec):
    files = repo_files(project)
    for spelling in ("./app/report.py", str(project / "app" / "report.py"), "app/"):
        result = build_map(project, files, 40, lambda: codec.count, [spelling], cache_file=tmp_path / "c.json")
        assert result.text.startswith("app/"), spelling
    result = build_map(project, files, 40, lambda: codec.count, ["./app/report.py"], cache_file=tmp_path / "c.json")
    assert result.text.startswith("app/report.py:")


def test_map_command_focus_puts_the_file_first(project, vocab_dir):
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "map", "--tokens", "60", "--cwd", str(project),
                           "--focus", "app/report.py"], capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("app/report.py:")


def test_identifiers_in_the_task_text_move_their_definitions_up(project, tmp_path, codec):
    from gptoss_agent.tools.repomap_rank import mentioned_identifiers

    index = index_of(project, tmp_path)
    plain = [d.name for _, d, _ in ranked_definitions(index)]
    asked = [d.name for _, d, _ in ranked_definitions(index, mentioned=mentioned_identifiers("why does launch() fail?"))]
    assert plain.index("launch") > plain.index("Car")  # used by nothing: low without the task text
    assert asked.index("launch") < asked.index("Car") and asked.index("launch") <= 2


def test_only_words_that_read_as_code_count_as_mentioned():
    from gptoss_agent.tools.repomap_rank import mentioned_identifiers

    text = ("Fix the tests. Please make parse_args accept --x, and QuerySet.get_or_create(); the Router drops "
            "`Vars` and launch() fails.")
    assert mentioned_identifiers(text) == {"parse_args", "QuerySet", "get_or_create", "Router", "Vars", "launch"}


def test_a_tight_budget_names_the_central_types_members_it_cannot_show_in_full(tmp_path, codec):
    # a Response with many methods, used everywhere: 1024 tokens never hold every declaration of a real
    # project's central type, yet a reader needs to know it has `raise_for_status` and `iter_content`
    methods = ["json", "raise_for_status", "iter_content", "iter_lines", "close", "links", "next_page", "ok_status"]
    body = "".join(f"    def {m}(self, first_argument, second_argument=None, *rest, **options):\n        pass\n\n"
                   for m in methods)
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "models.py").write_text("class Response:\n" + body)
    for n in range(4):
        (root / "pkg" / f"use{n}.py").write_text("from pkg.models import Response\n\n\ndef f():\n    return Response()\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    index = index_of(root, tmp_path)
    text = repo_map(index, 60, codec.count)
    assert codec.count(text) <= 60
    assert "class Response:" in text and "other members:" in text
    assert sum(f"def {m}(" in text for m in methods) < len(methods)  # not room for every declaration …
    assert all(re.search(rf"\b{m}\b", text) for m in methods)  # … yet every method is named


def test_the_names_an_entry_file_re_exports_are_listed_when_their_declarations_do_not_fit(tmp_path, codec):
    # rxjs's index.ts re-exports `of`, `firstValueFrom` and ~200 more: nothing in the package calls most of
    # them, and their declarations cannot all fit, yet they are what its users are told to call
    operators = [f"operator{n}" for n in range(24)]
    root = tmp_path / "project"
    (root / "src" / "internal").mkdir(parents=True)
    for name in operators:
        (root / "src" / "internal" / f"{name}.ts").write_text(
            f"export function {name}<T, R>(project: (value: T, index: number) => R, thisArg?: unknown): "
            f"OperatorFunction<T, R> {{\n  return project as never;\n}}\n")
    (root / "src" / "index.ts").write_text(
        "".join(f"export {{ {name} }} from './internal/{name}';\n" for name in operators))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    index = index_of(root, tmp_path)
    text = repo_map(index, 200, codec.count)
    assert codec.count(text) <= 200
    assert "src/index.ts:\n  exports: " in text
    assert sum(f"function {name}<" in text for name in operators) < len(operators)  # not room for all …
    assert all(re.search(rf"\b{name}\b", text) for name in operators)  # … yet every export is named
