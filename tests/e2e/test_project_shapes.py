"""`gptoss-agent fix` on the project shapes people really have (issue 13: runners, locations, timeouts).

Each shape is a small real-world layout built from real code: a flat module, a src/ layout installed
through a .pth file, tests inside the package, a unittest-only project whose environment has no pytest,
doctests loaded by unittest and by pytest's --doctest-modules, pytest configured in setup.cfg (with
--color=yes), a Go module, a Rust crate and a Node package. The model is replayed; git, the sandbox and
every runner are real. Each run must find the failing tests under their real ids, point at the test's
line and at the project line that raised (not mock, not the standard library, not a venv), and end with
the fix applied and committed.

Toolchains come from the machine (CI installs golang-go; cargo and node are used where present). A
shape whose toolchain is missing is skipped with the reason. jest and vitest are not shapes here: they
come only from the npm registry, which the offline suite cannot reach; their output formats are read
from recorded runs in tests/unit/test_test_summaries.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.repos import call, final, git, write_replay


def patch(path: str, context: str, old: str, new: str) -> str:
    """A one-line fix in the apply_patch format, anchored on the line before it."""
    return (f"*** Begin Patch\n*** Update File: {path}\n {context}\n-{old}\n+{new}\n*** End Patch")


@dataclass
class Shape:
    """A project layout, the failures `fix` must find in it, and the one-line fix."""

    files: dict[str, str]
    runner: str
    failing: list[str]  # the ids the first test run reports
    locations: list[str]  # strings the model's first run_tests result must show (test line, raising line)
    fix: str
    needs: tuple[str, ...] = ()  # programs the shape needs on PATH
    venv: str | None = None  # "plain": no pytest inside; "pth": pytest from the base, src/ installed by a .pth
    passed_after: int | None = None


CALC = "def add(a, b):\n    return a - b\n\n\ndef mean(values):\n    return sum(values) / len(values)\n"

SHAPES: dict[str, Shape] = {
    # a module and its tests side by side, no configuration at all
    "flat": Shape(
        files={"calc.py": CALC,
               "test_calc.py": ("import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n\n\n"
                                "def test_mean_of_nothing():\n    assert calc.mean([]) == 0\n")},
        runner="pytest",
        failing=["test_calc.py::test_add", "test_calc.py::test_mean_of_nothing"],
        locations=["FAILED test_calc.py::test_add at test_calc.py:5",
                   "FAILED test_calc.py::test_mean_of_nothing at test_calc.py:9 (raised at calc.py:6)"],
        fix=("*** Begin Patch\n*** Update File: calc.py\n def add(a, b):\n-    return a - b\n+    return a + b\n"
             "@@ def mean(values):\n-    return sum(values) / len(values)\n"
             "+    return sum(values) / len(values) if values else 0\n*** End Patch"),
        passed_after=2),
    # src/ layout, installed in the project's venv the way `pip install -e .` does it: a .pth file
    "src-layout": Shape(
        files={"pyproject.toml": ('[project]\nname = "slugs"\nversion = "1.0"\n\n[tool.pytest.ini_options]\n'
                                  'testpaths = ["tests"]\n'),
               "src/slugs/__init__.py": "from slugs.core import slugify\n",
               "src/slugs/core.py": ("import re\n\n\ndef slugify(text):\n"
                                     "    return re.sub(r\"[^a-z0-9]+\", \"_\", text.lower()).strip(\"-\")\n"),
               "tests/test_slugs.py": ("from unittest import mock\n\nimport slugs\n\n\n"
                                       "def test_words():\n    assert slugs.slugify(\"Hello World\") == \"hello-world\"\n\n\n"
                                       "def test_called_once():\n    spy = mock.Mock(side_effect=slugs.slugify)\n"
                                       "    spy(\"A b\")\n    spy.assert_called_once_with(\"a b\")\n"),
               ".gitignore": ".venv/\n"},
        runner="pytest", venv="pth",
        failing=["tests/test_slugs.py::test_words", "tests/test_slugs.py::test_called_once"],
        locations=["FAILED tests/test_slugs.py::test_words at tests/test_slugs.py:7",
                   # the assertion is raised inside unittest.mock: the location stays on the test's line
                   "FAILED tests/test_slugs.py::test_called_once at tests/test_slugs.py:13\n",
                   "outside the project: mock.py"],
        fix=("*** Begin Patch\n*** Update File: src/slugs/core.py\n def slugify(text):\n"
             "-    return re.sub(r\"[^a-z0-9]+\", \"_\", text.lower()).strip(\"-\")\n"
             "+    return re.sub(r\"[^a-z0-9]+\", \"-\", text.lower()).strip(\"-\")\n"
             "*** Update File: tests/test_slugs.py\n     spy(\"A b\")\n"
             "-    spy.assert_called_once_with(\"a b\")\n+    spy.assert_called_once_with(\"A b\")\n*** End Patch"),
        passed_after=2),
    # tests inside the package they test
    "tests-in-package": Shape(
        files={"inventory/__init__.py": "",
               "inventory/stock.py": ("class Stock:\n    def __init__(self):\n        self.items = {}\n\n"
                                      "    def add(self, name, count):\n        self.items[name] = count\n\n"
                                      "    def total(self):\n        return sum(self.items.values())\n"),
               "inventory/tests/__init__.py": "",
               "inventory/tests/test_stock.py": ("from inventory.stock import Stock\n\n\n"
                                                 "class TestStock:\n    def test_adding_twice_adds_up(self):\n"
                                                 "        stock = Stock()\n        stock.add(\"nut\", 2)\n"
                                                 "        stock.add(\"nut\", 3)\n        assert stock.total() == 5\n")},
        runner="pytest",
        failing=["inventory/tests/test_stock.py::TestStock::test_adding_twice_adds_up"],
        locations=["FAILED inventory/tests/test_stock.py::TestStock::test_adding_twice_adds_up at "
                   "inventory/tests/test_stock.py:9"],
        fix=patch("inventory/stock.py", "    def add(self, name, count):", "        self.items[name] = count",
                  "        self.items[name] = self.items.get(name, 0) + count"),
        passed_after=1),
    # unittest only, and the project's environment has no pytest at all
    "unittest-only": Shape(
        files={"temperature.py": "def to_celsius(f):\n    return (f - 32) * 9 / 5\n",
               "tests/test_temperature.py": ("import unittest\n\nfrom temperature import to_celsius\n\n\n"
                                             "class ToCelsius(unittest.TestCase):\n    def test_freezing(self):\n"
                                             "        self.assertEqual(to_celsius(32), 0)\n\n"
                                             "    def test_boiling(self):\n"
                                             "        self.assertAlmostEqual(to_celsius(212), 100)\n"),
               ".gitignore": ".venv/\n"},
        runner="unittest", venv="plain",
        failing=["test_temperature.ToCelsius.test_boiling"],
        locations=["FAILED test_temperature.ToCelsius.test_boiling at tests/test_temperature.py:11"],
        fix=patch("temperature.py", "def to_celsius(f):", "    return (f - 32) * 9 / 5", "    return (f - 32) * 5 / 9"),
        passed_after=2),
    # doctests loaded through unittest's load_tests, in an environment without pytest
    "doctest-unittest": Shape(
        files={"roman.py": ('def to_roman(n):\n    """\n    >>> to_roman(4)\n    \'IV\'\n    >>> to_roman(9)\n'
                            '    \'IX\'\n    """\n    numerals = [(10, "X"), (5, "V"), (4, "IV"), (1, "I")]\n'
                            '    out = ""\n    for value, letters in numerals:\n        while n >= value:\n'
                            '            out += letters\n            n -= value\n    return out\n'),
               "tests/test_roman.py": ("import doctest\nimport unittest\n\nimport roman\n\n\n"
                                       "def load_tests(loader, tests, ignore):\n"
                                       "    tests.addTests(doctest.DocTestSuite(roman))\n    return tests\n\n\n"
                                       "class Roman(unittest.TestCase):\n    def test_ten(self):\n"
                                       "        self.assertEqual(roman.to_roman(10), \"X\")\n"),
               ".gitignore": ".venv/\n"},
        runner="unittest", venv="plain",
        failing=["roman.to_roman"],
        locations=["FAILED roman.to_roman at roman.py:5", "Failed example:", "to_roman(9)"],
        fix=patch("roman.py", "    \"\"\"", "    numerals = [(10, \"X\"), (5, \"V\"), (4, \"IV\"), (1, \"I\")]",
                  "    numerals = [(10, \"X\"), (9, \"IX\"), (5, \"V\"), (4, \"IV\"), (1, \"I\")]"),
        passed_after=2),
    # doctests collected by pytest, configured in tox.ini, with colour forced on as humanize does
    "doctest-pytest-tox": Shape(
        files={"tox.ini": "[tox]\nenvlist = py3\n\n[pytest]\naddopts = --doctest-modules --color=yes\n",
               "sizes.py": ('def human(size):\n    """\n    >>> human(3072)\n    \'3.0 KiB\'\n    """\n'
                            '    return f"{size / 1000:.1f} KiB"\n'),
               "test_sizes.py": "from sizes import human\n\n\ndef test_bytes():\n    assert human(10240) == \"10.0 KiB\"\n"},
        runner="pytest",
        failing=["sizes.py::sizes.human", "test_sizes.py::test_bytes"],
        locations=["FAILED sizes.py::sizes.human at sizes.py:3", "FAILED test_sizes.py::test_bytes at test_sizes.py:5"],
        fix=patch("sizes.py", "    \"\"\"", "    return f\"{size / 1000:.1f} KiB\"",
                  "    return f\"{size / 1024:.1f} KiB\""),
        passed_after=2),
    # pytest configured in setup.cfg; the failure is raised deep in the project's code
    "setup-cfg": Shape(
        files={"setup.cfg": ("[metadata]\nname = ledger\n\n[tool:pytest]\ntestpaths = tests\n"
                             "addopts = -ra --color=yes --strict-markers\nmarkers =\n    slow: slow tests\n"),
               "ledger/__init__.py": "",
               "ledger/parse.py": ("def amount(text):\n    whole, cents = text.split(\".\")\n"
                                   "    return int(whole) * 100 + int(cents)\n"),
               "ledger/book.py": ("from ledger.parse import amount\n\n\ndef balance(lines):\n"
                                  "    return sum(amount(line) for line in lines)\n"),
               "tests/conftest.py": "",
               "tests/test_book.py": ("from ledger.book import balance\n\n\ndef test_whole_amounts():\n"
                                      "    assert balance([\"1.50\", \"2\"]) == 350\n")},
        runner="pytest",
        failing=["tests/test_book.py::test_whole_amounts"],
        locations=["FAILED tests/test_book.py::test_whole_amounts at tests/test_book.py:5 "
                   "(raised at ledger/parse.py:2)"],
        fix=patch("ledger/parse.py", "def amount(text):", "    whole, cents = text.split(\".\")",
                  "    whole, _, cents = text.partition(\".\")\n+    cents = cents or \"0\""),
        passed_after=1),
    "go-module": Shape(
        files={"go.mod": "module example.com/stack\n\ngo 1.19\n",
               "stack.go": ("package stack\n\n// Stack is a last-in first-out list of ints.\n"
                            "type Stack struct{ items []int }\n\n// Push adds v on top.\n"
                            "func (s *Stack) Push(v int) { s.items = append(s.items, v) }\n\n"
                            "// Pop removes the top value; ok is false when the stack is empty.\n"
                            "func (s *Stack) Pop() (v int, ok bool) {\n\tv = s.items[len(s.items)-1]\n"
                            "\ts.items = s.items[:len(s.items)-1]\n\treturn v, true\n}\n"),
               "stack_test.go": ("package stack\n\nimport \"testing\"\n\nfunc TestPopEmpty(t *testing.T) {\n"
                                 "\tvar s Stack\n\tif _, ok := s.Pop(); ok {\n\t\tt.Fatal(\"popped from an empty stack\")\n"
                                 "\t}\n}\n\nfunc TestPushPop(t *testing.T) {\n\tvar s Stack\n\ts.Push(4)\n"
                                 "\tif v, _ := s.Pop(); v != 4 {\n\t\tt.Errorf(\"Pop() = %d, want 4\", v)\n\t}\n}\n")},
        runner="go", needs=("go",),
        failing=["example.com/stack.TestPopEmpty"],
        locations=["FAILED example.com/stack.TestPopEmpty at stack_test.go:7 (raised at stack.go:11)",
                   "panic: runtime error: index out of range [-1]"],
        fix=patch("stack.go", "func (s *Stack) Pop() (v int, ok bool) {", "\tv = s.items[len(s.items)-1]",
                  "\tif len(s.items) == 0 {\n+\t\treturn 0, false\n+\t}\n+\tv = s.items[len(s.items)-1]"),
        passed_after=2),
    "rust-crate": Shape(
        files={"Cargo.toml": "[package]\nname = \"wordcount\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
               ".gitignore": "/target\nCargo.lock\n",  # what `cargo new --lib` wrote for libraries
               "src/lib.rs": ("/// Counts the words of `text`, separated by any whitespace.\n"
                              "pub fn count(text: &str) -> usize {\n    text.split(' ').count()\n}\n\n"
                              "#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn two_words() {\n"
                              "        assert_eq!(count(\"hello world\"), 2);\n    }\n\n    #[test]\n"
                              "    fn empty() {\n        assert_eq!(count(\"\"), 0);\n    }\n}\n")},
        runner="cargo", needs=("cargo",),
        failing=["tests::empty"],
        locations=["FAILED tests::empty at src/lib.rs:17", "assertion `left == right` failed"],
        fix=patch("src/lib.rs", "pub fn count(text: &str) -> usize {", "    text.split(' ').count()",
                  "    text.split_whitespace().count()"),
        passed_after=2),
    "node-package": Shape(
        files={"package.json": '{"name": "cart", "version": "1.0.0", "scripts": {"test": "node --test"}}\n',
               "cart.js": ("function total(items) {\n  return items.reduce((sum, item) => sum + item.price, 0);\n}\n\n"
                           "function cheapest(items) {\n  return items.sort((a, b) => a.price - b.price)[0].name;\n}\n\n"
                           "module.exports = { total, cheapest };\n"),
               "test/cart.test.js": ("const test = require('node:test');\nconst assert = require('node:assert');\n"
                                     "const { total, cheapest } = require('../cart');\n\n"
                                     "test('total of two', () => {\n"
                                     "  assert.strictEqual(total([{ price: 2 }, { price: 3 }]), 5);\n});\n\n"
                                     "test('cheapest of none', () => {\n  assert.strictEqual(cheapest([]), undefined);\n"
                                     "});\n")},
        runner="npm", needs=("node", "npm"),
        failing=["cheapest of none"],
        locations=["FAILED cheapest of none at test/cart.test.js:10 (raised at cart.js:6)", "TypeError"],
        fix=patch("cart.js", "function cheapest(items) {",
                  "  return items.sort((a, b) => a.price - b.price)[0].name;",
                  "  return items.length ? items.sort((a, b) => a.price - b.price)[0].name : undefined;"),
        passed_after=2),
}


def make_project(root: Path, shape: Shape) -> Path:
    root.mkdir(parents=True)
    for relative, text in shape.files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    if shape.venv is not None:
        make_venv(root, shape.venv)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def make_venv(root: Path, kind: str) -> None:
    """`plain`: a venv with no pytest (offline, no pip); `pth`: pytest from the base, src/ installed by a .pth."""
    options = ["--without-pip"] + (["--system-site-packages"] if kind == "pth" else [])
    subprocess.run([sys.executable, "-m", "venv", *options, str(root / ".venv")], check=True, capture_output=True,
                   timeout=120)
    if kind == "pth":
        site = next((root / ".venv").glob("lib/python3*/site-packages"))
        (site / "_slugs.pth").write_text(str(root / "src") + "\n")  # what an editable install writes


def agent(*args: str, cwd: Path, env: dict[str, str], timeout: int = 300):
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args, "--cwd", str(cwd)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env})


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def offline_toolchain_env(tmp_path: Path) -> dict[str, str]:
    """Offline and private: module and build caches in this test's folder, never a download."""
    return {"GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOPATH": str(tmp_path / "gopath"),
            "CARGO_NET_OFFLINE": "true"}


@pytest.mark.parametrize("name", list(SHAPES))
def test_fix_on_a_real_project_shape(name, tmp_path, vocab_dir):
    shape = SHAPES[name]
    missing = [program for program in shape.needs if shutil.which(program) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed here (CI installs golang-go; cargo and node come from "
                    "the machine or Debian's cargo and nodejs packages)")
    repo = make_project(tmp_path / name, shape)
    replay = write_replay(tmp_path / "replay.json", [
        call("functions.run_tests", {}, analysis="See what fails and where."),
        call("repo_browser.apply_patch", {"patch": shape.fix}, analysis="Fix the code the failure points at."),
        call("functions.run_tests", {}),
        final("Fixed the failing tests."),
    ])
    done = agent("fix", "--backend", f"replay:{replay}", "--json", cwd=repo, env=offline_toolchain_env(tmp_path))
    stream = events(done.stdout)
    first = next(e for e in stream if e["type"] == "tests")
    assert sorted(first["failing"]) == sorted(shape.failing), (first, done.stderr)
    report = next(e for e in stream if e["type"] == "tool_result" and e["name"] == "functions.run_tests")
    assert f"({shape.runner}, exit code" in report["output"], report["output"]
    for expected in shape.locations:
        assert expected in report["output"], report["output"]
    assert "\x1b" not in report["output"] and "#x1B" not in report["output"]  # --color=yes left no residue
    assert done.returncode == 0, done.stderr + done.stdout
    last = [e for e in stream if e["type"] == "tests"][-1]
    assert (last["failed"], last["errors"], last["passed"]) == (0, 0, shape.passed_after), last
    assert git(repo, "log", "-1", "--format=%s").startswith("Fix failing tests")
    assert git(repo, "status", "--porcelain") == ""  # build outputs and the venv are ignored, not committed


def run_suite_with_exec(tmp_path: Path, name: str, files: dict[str, str], limit: str) -> list[dict]:
    """`exec --test-timeout LIMIT` where the model runs the suite once: the events of that run."""
    repo = make_project(tmp_path / name, Shape(files=files, runner="pytest", failing=[], locations=[], fix=""))
    replay = write_replay(tmp_path / "replay.json", [call("functions.run_tests", {}), final("Looked.")])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "--test-timeout", limit, "run the tests",
                 cwd=repo, env={}, timeout=120)
    assert done.returncode == 0, done.stderr
    return events(done.stdout)


def test_a_hanging_test_is_named_and_the_limit_comes_from_the_flag(tmp_path, vocab_dir):
    """A test deaf to the per-test limit hangs the suite: --test-timeout stops it and the report names it."""
    stream = run_suite_with_exec(tmp_path, "hang", {
        "calc.py": CALC,
        "test_calc.py": ("import signal, time\n\nimport calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n\n\n"
                         "def test_waits_for_a_server():\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                         "    time.sleep(600)\n")}, limit="15")
    tests = next(e for e in stream if e["type"] == "tests")
    assert tests["timed_out"] is True and tests["running"] == "test_calc.py::test_waits_for_a_server", tests
    output = next(e for e in stream if e["type"] == "tool_result")["output"]
    assert "timed out after 15s" in output and "Running when time ran out: test_calc.py::test_waits_for_a_server" in output


def test_a_stuck_test_is_stopped_where_it_hangs_and_the_rest_still_run(tmp_path, vocab_dir):
    """The per-test limit (half the suite's) fails the stuck test at the project's line; the others report.
    (30 s: half of it for the stuck test, half for starting pytest in the sandbox on a loaded machine.)"""
    stream = run_suite_with_exec(tmp_path, "stuck", {
        "calc.py": CALC + "\n\ndef wait_for(ready):\n    import time\n\n    while not ready():\n        time.sleep(0.01)\n",
        "test_calc.py": ("import calc\n\n\ndef test_wait():\n    calc.wait_for(lambda: False)\n\n\n"
                         "def test_add():\n    assert calc.add(2, 3) == 5\n")}, limit="30")
    tests = next(e for e in stream if e["type"] == "tests")
    assert tests["timed_out"] is False, tests
    assert sorted(tests["failing"]) == ["test_calc.py::test_add", "test_calc.py::test_wait"]
    output = next(e for e in stream if e["type"] == "tool_result")["output"]
    assert "1 test ran longer than the per-test limit of 15s and was stopped" in output
    assert "FAILED test_calc.py::test_wait at test_calc.py:5 (raised at calc.py:1" in output  # 12 or 13: in the loop
