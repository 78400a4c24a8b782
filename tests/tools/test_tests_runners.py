"""run_tests on project shapes beyond a plain pytest suite: unittest-only, doctests through unittest's
load_tests and through pytest's --doctest-modules in setup.cfg, a configured command, a node package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox
from gptoss_agent.tools.tests import run_tests

MODULE = '''
def double(x):
    """
    >>> double(2)
    4
    >>> double(3)
    7
    """
    return x * 2
'''

UNITTEST_SUITE = '''
import doctest
import unittest

import shapes


def load_tests(loader, tests, ignore):
    tests.addTests(doctest.DocTestSuite(shapes))
    return tests


class Double(unittest.TestCase):
    def test_two(self):
        self.assertEqual(shapes.double(2), 4)

    def test_wrong(self):
        self.assertEqual(shapes.double(5), 11)
'''


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def venv_without_pytest(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True, timeout=120)


def test_a_unittest_only_project_runs_unittest_with_its_doctests(tmp_path):
    root = make_project(tmp_path / "p", {"shapes.py": MODULE, "tests/test_shapes.py": UNITTEST_SUITE,
                                         "setup.cfg": "[metadata]\nname = shapes\n"})
    venv_without_pytest(root)
    ctx = ToolContext(workspace=root, sandbox=Sandbox(root))
    result = run_tests.function(ctx)
    assert result.data["runner"] == "unittest", result.output
    assert (result.data["passed"], result.data["failed"]) == (1, 2)  # one doctest fails, one test fails
    assert "No module named pytest" not in result.output
    assert "test_shapes.Double.test_wrong" in result.data["failing"]


def test_pytest_doctest_modules_configured_in_setup_cfg_are_counted(tmp_path):
    root = make_project(tmp_path / "p", {
        "shapes.py": MODULE, "setup.cfg": "[tool:pytest]\naddopts = --doctest-modules\n",
        "test_shapes.py": "import shapes\n\ndef test_two():\n    assert shapes.double(2) == 4\n"})
    ctx = ToolContext(workspace=root, sandbox=Sandbox(root))
    result = run_tests.function(ctx)
    assert result.data["runner"] == "pytest" and not any(key.startswith("has_pytest") for key in ctx.probes)
    assert (result.data["passed"], result.data["failed"]) == (1, 1)
    assert result.data["failing"] == ["shapes.double"] or "shapes.py::shapes.double" in result.data["failing"][0]


def test_a_unittest_suite_that_hangs_names_the_test(tmp_path):
    root = make_project(tmp_path / "p", {"tests/test_slow.py": (
        "import time, unittest\n\nclass Slow(unittest.TestCase):\n    def test_fast(self):\n        pass\n\n"
        "    def test_zz_stuck(self):\n        time.sleep(120)\n")})
    venv_without_pytest(root)
    ctx = ToolContext(workspace=root, sandbox=Sandbox(root), test_timeout_s=6)
    result = run_tests.function(ctx)
    assert result.data["runner"] == "unittest" and result.data["timed_out"]
    assert result.data["running"] == "test_slow.Slow.test_zz_stuck"


def test_a_configured_unittest_command_reports_real_counts(tmp_path):
    root = make_project(tmp_path / "p", {"shapes.py": MODULE, "tests/test_shapes.py": UNITTEST_SUITE})
    ctx = ToolContext(workspace=root, sandbox=Sandbox(root), test_command="python3 -m unittest discover -s tests")
    result = run_tests.function(ctx)
    assert result.data["runner"] == "custom" and result.data["results"] == "parsed"
    assert (result.data["passed"], result.data["failed"]) == (1, 2)


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="node/npm not installed")
def test_a_node_package_with_the_builtin_runner(tmp_path):
    root = make_project(tmp_path / "p", {
        "package.json": '{"name": "calc", "version": "1.0.0", "scripts": {"test": "node --test"}}',
        "test/math.test.js": ("const test = require('node:test');\nconst assert = require('node:assert');\n"
                              "test('adds', () => assert.strictEqual(1 + 2, 3));\n"
                              "test('breaks', () => assert.strictEqual(1, 2));\n")})
    ctx = ToolContext(workspace=root, sandbox=Sandbox(root))
    result = run_tests.function(ctx)
    assert result.data["runner"] == "npm", result.output
    assert (result.data["passed"], result.data["failed"], result.data["failing"]) == (1, 1, ["breaks"])


GO_MODULE = {"go.mod": "module example.com/calc\n\ngo 1.19\n",
             "calc.go": "package calc\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n",
             "calc_test.go": ("package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n"
                              "\tif got := Add(2, 3); got != 5 {\n\t\tt.Errorf(\"Add(2, 3) = %d, want 5\", got)\n\t}\n}\n")}


@pytest.mark.skipif(shutil.which("go") is None, reason="go not installed (CI installs golang-go)")
def test_go_keeps_a_private_build_cache_per_repository(tmp_path, monkeypatch):
    from gptoss_agent.tools.tests import build_cache

    monkeypatch.setenv("GPTOSS_AGENT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GOPROXY", "off")
    root = make_project(tmp_path / "p", GO_MODULE)
    result = run_tests.function(ToolContext(workspace=root, sandbox=Sandbox(root)))
    assert result.data["failing"] == ["example.com/calc.TestAdd"]
    assert "FAILED example.com/calc.TestAdd at calc_test.go:7\n  Add(2, 3) = -1, want 5" in result.output
    cache = build_cache(root)
    assert any(cache.iterdir()) and (cache.stat().st_mode & 0o777) == 0o700  # the run filled it, privately
    assert build_cache(make_project(tmp_path / "q", GO_MODULE)) != cache  # another project, another cache


def test_a_planted_link_is_never_used_as_the_build_cache(tmp_path, monkeypatch):
    import hashlib
    import os

    from gptoss_agent.tools.tests import build_cache

    monkeypatch.setenv("GPTOSS_AGENT_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project(tmp_path / "p", {"go.mod": "module m\n"})
    key = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
    (tmp_path / "cache" / "go-build").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cache" / "go-build" / key).symlink_to(tmp_path / "elsewhere")
    assert build_cache(root) is None


def test_a_projects_own_alarm_stays_in_charge_of_its_test(tmp_path):
    """A suite that times its tests with SIGALRM (as pytest-timeout does) keeps its limit, not run_tests' one."""
    root = make_project(tmp_path / "p", {"test_own.py": (
        "import signal, time\n\n\ndef handler(*args):\n    raise TimeoutError('the project alarm')\n\n\n"
        "def setup_function(function):\n    signal.signal(signal.SIGALRM, handler)\n"
        "    signal.setitimer(signal.ITIMER_REAL, 1)\n\n\ndef test_slow():\n    time.sleep(30)\n")})
    ctx = ToolContext(workspace=root, sandbox=Sandbox(root), test_timeout_s=40)
    result = run_tests.function(ctx)
    assert result.data["failing"] == ["test_own.py::test_slow"] and result.data["stopped"] == []
    assert "TimeoutError: the project alarm" in result.output and "per-test limit" not in result.output


def test_a_unittest_project_with_a_test_folder_is_discovered_there(tmp_path):
    root = make_project(tmp_path / "p", {"shapes.py": MODULE, "test/test_shapes.py": UNITTEST_SUITE})
    venv_without_pytest(root)
    result = run_tests.function(ToolContext(workspace=root, sandbox=Sandbox(root)))
    assert result.data["runner"] == "unittest" and (result.data["passed"], result.data["failed"]) == (1, 2)
    assert "FAILED test_shapes.Double.test_wrong at test/test_shapes.py:18" in result.output
