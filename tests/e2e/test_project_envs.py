"""`gptoss-agent fix` on real project shapes with the project's own Python environment (issue 13, items 1, 2, 5).

Each environment is a real venv (`python -m venv --without-pip --system-site-packages`: offline, and
pytest comes from the base interpreter) holding a module only it has, so a test passes only when the
command really ran with that environment. The model is replayed; the sandbox, git and pytest are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import FIX_PATCH, call, final, git, write_replay

CALC = "import only_in_env\n\n\ndef add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = ("from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
         "def test_mul():\n    assert mul(2, 3) == 6\n")
PROBE = "import only_in_env, sys; print('probe-prefix=' + sys.prefix)"


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def make_venv(path: Path, *, marker: bool = True) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(path)], check=True,
                   capture_output=True)
    if marker:
        site = next(path.glob("lib/python3*/site-packages"))
        (site / "only_in_env.py").write_text("VALUE = 1\n")
    return path


def agent(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 180):
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args, "--cwd", str(cwd)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def fix_replay(tmp_path: Path) -> Path:
    """The model checks the interpreter the way it usually does (`bash -lc`), fixes add(), runs the tests."""
    return write_replay(tmp_path / "replay.json", [
        call("container.exec", {"cmd": ["bash", "-lc", f'python -c "{PROBE}"']}, analysis="Which Python?"),
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="add subtracts"),
        call("functions.run_tests", {}),
        final("add() subtracted; it now adds."),
    ])


def assert_fixed_with(done, repo: Path, prefix: Path) -> None:
    assert done.returncode == 0, done.stderr + done.stdout
    stream = events(done.stdout)
    probe = next(e for e in stream if e["type"] == "tool_result" and e["name"] == "container.exec")
    assert f"probe-prefix={prefix}" in probe["output"], probe["output"]
    tests = [e for e in stream if e["type"] == "tests"]
    assert (tests[0]["failed"], tests[-1]["failed"], tests[-1]["passed"]) == (1, 0, 2)
    assert git(repo, "log", "-1", "--format=%s").startswith("Fix failing tests")
    assert git(repo, "show", "--stat", "--format=", "HEAD").split("|")[0].strip() == "calc.py"


@pytest.fixture
def home(tmp_path, vocab_dir):
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def test_a_venv_in_home_activated_in_the_users_shell(tmp_path, home):
    venv = make_venv(home / ".virtualenvs" / "calc")
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_calc.py": TESTS, "pyproject.toml": ""})
    shell = {"HOME": str(home), "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{os.environ['PATH']}"}
    done = agent("fix", "--backend", f"replay:{fix_replay(tmp_path)}", "--json", cwd=repo, env=shell)
    assert_fixed_with(done, repo, venv)


def test_a_venv_outside_repository_and_home_named_by_the_python_flag(tmp_path, home):
    venv = make_venv(tmp_path / "envs" / "calc")
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_calc.py": TESTS, "pyproject.toml": ""})
    done = agent("fix", "--python", str(venv / "bin" / "python"), "--backend", f"replay:{fix_replay(tmp_path)}",
                 "--json", cwd=repo, env={"HOME": str(home)})
    assert_fixed_with(done, repo, venv)


def test_an_untracked_in_repo_venv_is_used_and_does_not_make_the_tree_dirty(tmp_path, home):
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_calc.py": TESTS, "pyproject.toml": ""})
    venv = make_venv(repo / ".venv")
    (repo / "tests" / "__pycache__").mkdir()
    (repo / "tests" / "__pycache__" / "test_calc.cpython-311.pyc").write_bytes(b"\0")
    done = agent("fix", "--backend", f"replay:{fix_replay(tmp_path)}", "--json", cwd=repo, env={"HOME": str(home)})
    assert_fixed_with(done, repo, venv)
    assert git(repo, "status", "--porcelain", "--untracked-files=normal").split() == ["??", ".venv/", "??",
                                                                                      "tests/__pycache__/"]


def test_the_users_own_edit_is_refused_before_the_suite_runs(tmp_path, home):
    marker = "import pathlib\npathlib.Path(__file__).with_name('suite-ran').write_text('yes')\n"
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_calc.py": TESTS, "conftest.py": marker})
    make_venv(repo / ".venv")
    (repo / "calc.py").write_text(CALC + "\n# my edit\n")
    done = agent("fix", "--backend", "replay:/nonexistent.json", cwd=repo, env={"HOME": str(home)})
    assert done.returncode == 2 and "uncommitted changes (calc.py)" in done.stderr
    assert ".venv" not in done.stderr
    assert not (repo / "suite-ran").exists()  # refused first, not after a full run


SRC_LAYOUT = {
    "pyproject.toml": "[project]\nname = 'mypkg'\nversion = '1.0'\n\n"
                      "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "src/mypkg/__init__.py": "def double(x):\n    return 2 * x\n",
    "tests/test_double.py": "from mypkg import double\n\n\ndef test_double():\n    assert double(2) == 4\n",
}


def test_an_uninstalled_src_layout_is_told_to_the_user_with_the_command_and_exit_2(tmp_path, home):
    repo = make_repo(tmp_path / "mypkg", SRC_LAYOUT)
    venv = make_venv(repo / ".venv", marker=False)
    done = agent("fix", "--backend", "replay:/nonexistent.json", cwd=repo, env={"HOME": str(home)})
    assert done.returncode == 2, done.stderr + done.stdout
    assert f"{venv}/bin/python -m pip install -e ." in done.stderr
    assert "mypkg" in done.stderr and "not installed" in done.stderr
    assert done.stderr.count("pip install") == 1  # told once
    # what `pip install -e .` does for an src/ layout (pip cannot build offline here): a .pth to src/
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "__editable__.mypkg.pth").write_text(str(repo / "src") + "\n")
    again = agent("fix", "--backend", "replay:/nonexistent.json", cwd=repo, env={"HOME": str(home)})
    assert again.returncode == 0 and "already passes" in again.stderr


def test_a_missing_dependency_is_told_with_the_command_and_exit_2(tmp_path, home):
    repo = make_repo(tmp_path / "report", {
        "pyproject.toml": "[project]\nname = 'report'\nversion = '1.0'\ndependencies = ['tabulate_not_here>=0.9']\n",
        "report.py": "import tabulate_not_here\n\n\ndef table(rows):\n    return tabulate_not_here.tabulate(rows)\n",
        "tests/test_report.py": "from report import table\n\n\ndef test_table():\n    assert table([[1]])\n"})
    venv = make_venv(repo / ".venv", marker=False)
    done = agent("fix", "--backend", "replay:/nonexistent.json", "--json", cwd=repo, env={"HOME": str(home)})
    assert done.returncode == 2, done.stderr + done.stdout
    stream = events(done.stdout)
    assert stream[-1]["type"] == "run_finished" and stream[-1]["status"] == "failed"
    assert "environment problem (missing dependency)" in stream[-1]["reason"]
    (told,) = [e["message"] for e in stream if e["type"] == "error"]
    assert "tabulate_not_here" in told and told.endswith(f"run: {venv}/bin/python -m pip install -e .")
    assert not any(e["type"] == "tool_call" for e in stream)  # the model was never asked


def test_a_real_bug_beside_an_environment_failure_is_fixed_committed_and_the_rest_told(tmp_path, home):
    repo = make_repo(tmp_path / "calc", {
        "pyproject.toml": "[project]\nname = 'calc'\nversion = '1.0'\n",
        "calc.py": "from importlib.metadata import version\n\n\ndef add(a, b):\n    return a - b\n\n\n"
                   "def installed():\n    return version('calc')\n",
        "tests/test_calc.py": "from calc import add, installed\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                              "def test_version():\n    assert installed() == '1.0'\n"})
    venv = make_venv(repo / ".venv", marker=False)
    replay = write_replay(tmp_path / "replay.json", [
        call("repo_browser.apply_patch", {"patch": FIX_PATCH}, analysis="add subtracts"),
        final("add() now adds."),
    ])
    done = agent("fix", "--backend", f"replay:{replay}", "--json", cwd=repo, env={"HOME": str(home)})
    assert done.returncode == 2, done.stderr + done.stdout
    stream = events(done.stdout)
    assert any(e["type"] == "commit" for e in stream)
    assert git(repo, "log", "-1", "--format=%s").startswith("Fix failing tests")
    assert stream[-1]["status"] == "completed"
    assert f"{venv}/bin/python -m pip install -e ." in stream[-1]["reason"]


def test_doctor_names_the_projects_python_and_why(tmp_path, home):
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC})
    venv = make_venv(repo / ".venv")
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "doctor", "--cwd", str(repo)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HOME": str(home)})
    assert f"python: .venv ({venv}/bin/python): the repository's own .venv/" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "doctor", "--cwd", str(repo)], capture_output=True,
                             text=True, timeout=120,
                             env={**os.environ, "HOME": str(home), "GPTOSS_AGENT_PYTHON": "/no/such/python"})
    assert "PROBLEM: the python setting names /no/such/python, which does not exist" in missing.stdout


def test_exec_tells_the_model_and_the_user_when_the_tests_fail_for_the_environment(tmp_path, home):
    repo = make_repo(tmp_path / "mypkg", SRC_LAYOUT)
    venv = make_venv(repo / ".venv", marker=False)
    replay = write_replay(tmp_path / "replay.json", [
        call("functions.run_tests", {}),
        final("The tests cannot import mypkg: the project needs installing in .venv."),
    ])
    done = agent("exec", "--backend", f"replay:{replay}", "--json", "Run the tests", cwd=repo,
                 env={"HOME": str(home)})
    assert done.returncode == 2, done.stderr + done.stdout
    stream = events(done.stdout)
    result = next(e for e in stream if e["type"] == "tool_result" and e["name"] == "functions.run_tests")
    assert "Environment problem, not a code problem" in result["output"]
    assert f"{venv}/bin/python -m pip install -e ." in result["output"]
    assert stream[-1]["type"] == "run_finished" and stream[-1]["status"] == "completed"
    assert f"run: {venv}/bin/python -m pip install -e ." in done.stderr
    assert done.stderr.count("pip install") == 1


def test_poetrys_environment_in_its_cache_folder(tmp_path, home):
    import base64
    import hashlib

    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "tests/test_calc.py": TESTS,
                                         "pyproject.toml": "[tool.poetry]\nname = \"calc\"\nversion = \"0.1.0\"\n"})
    digest = base64.urlsafe_b64encode(hashlib.sha256(os.path.realpath(repo).encode()).digest()).decode()[:8]
    venv = make_venv(home / ".cache" / "pypoetry" / "virtualenvs" / f"calc-{digest}-py3.11")
    done = agent("fix", "--backend", f"replay:{fix_replay(tmp_path)}", "--json", cwd=repo, env={"HOME": str(home)})
    assert_fixed_with(done, repo, venv)


def test_pytest_configured_but_missing_from_the_environment_is_told_with_exit_2(tmp_path, home):
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC.replace("import only_in_env\n", ""),
                                         "tests/test_calc.py": TESTS,
                                         "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n"})
    venv = repo / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # no pytest in it
    done = agent("fix", "--backend", "replay:/nonexistent.json", cwd=repo, env={"HOME": str(home)})
    assert done.returncode == 2, done.stderr + done.stdout
    assert f"run: {venv}/bin/python -m pip install pytest" in done.stderr
