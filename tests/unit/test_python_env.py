"""tools/python_env.py: the project's environment found the way the user's shell would, on real venvs.

Each venv here is made by `python -m venv --without-pip` (offline, a few milliseconds with symlinks),
in a fake $HOME or a temporary folder, so detection reads the same files it reads on a user's machine.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_agent.tools import python_env
from gptoss_agent.tools.python_env import detect, sandbox_variables


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def places(tmp_path):
    home = tmp_path / "home"
    repo = tmp_path / "repo"
    home.mkdir()
    repo.mkdir()
    return home, repo


def env_for(home: Path, **extra) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", **extra}


def test_nothing_found_means_python3_on_path(places):
    home, repo = places
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert (found.kind, found.interpreter, found.prefix) == ("system", "python3", None)
    assert "python3 on PATH" in found.reason


def test_the_repositorys_dot_venv_is_used_and_its_base_interpreter_shown(places):
    home, repo = places
    make_venv(repo / ".venv")
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.kind == "in-repo" and found.name == ".venv"
    assert found.interpreter == str(repo / ".venv" / "bin" / "python")
    assert found.is_venv
    # the venv itself is in the repository (shown whole already); only the base interpreter is added
    base = Path(os.path.realpath(sys.base_prefix))
    assert all(not p.is_relative_to(repo) for p in found.visible)
    if not base.is_relative_to(Path("/usr")):
        assert base / "lib" in found.visible and base / "bin" in found.visible


def test_an_activated_virtualenv_wins_over_the_repositorys(places, tmp_path):
    home, repo = places
    make_venv(repo / ".venv")
    active = make_venv(home / ".virtualenvs" / "work")
    found = detect(repo, env_for(home, VIRTUAL_ENV=str(active)), own_prefix="/nonexistent")
    assert found.kind == "virtualenv" and found.name == "~/.virtualenvs/work"
    assert Path(os.path.realpath(active)) in found.visible  # the venv folder, lib and pyvenv.cfg with it
    assert Path(os.path.realpath(home)) not in found.visible


def test_gptoss_agents_own_activated_environment_is_not_the_projects(places, tmp_path):
    home, repo = places
    make_venv(repo / ".venv")
    own = make_venv(tmp_path / "agent-venv")
    found = detect(repo, env_for(home, VIRTUAL_ENV=str(own)), own_prefix=str(own))
    assert found.name == ".venv"
    assert any("gptoss-agent's own environment" in s for s in found.skipped)


def test_a_venv_outside_repository_and_home_by_the_user_setting(places, tmp_path):
    home, repo = places
    elsewhere = make_venv(tmp_path / "opt" / "envs" / "proj")
    found = detect(repo, env_for(home), override=str(elsewhere / "bin" / "python"), own_prefix="/nonexistent")
    assert found.kind == "override" and not found.problems
    assert found.interpreter == str(elsewhere / "bin" / "python")
    assert Path(os.path.realpath(elsewhere)) in found.visible


def test_a_user_setting_that_names_nothing_is_a_problem_not_a_silent_fallback(places):
    home, repo = places
    found = detect(repo, env_for(home), override="/no/such/python", own_prefix="/nonexistent")
    assert found.problems and "does not exist" in found.problems[0]


def test_poetry_environment_found_by_name_and_path_hash(places):
    home, repo = places
    (repo / "pyproject.toml").write_text('[tool.poetry]\nname = "My_Project"\nversion = "0.1"\n')
    digest = base64.urlsafe_b64encode(hashlib.sha256(os.path.realpath(repo).encode()).digest()).decode()[:8]
    venv = make_venv(home / ".cache" / "pypoetry" / "virtualenvs" / f"my-project-{digest}-py3.11")
    make_venv(home / ".cache" / "pypoetry" / "virtualenvs" / "other-AAAAAAAA-py3.11")
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.kind == "poetry" and found.prefix == venv
    assert found.install_command() == "poetry install"


def test_pipenv_and_virtualenvwrapper_environments_named_by_their_project_file(places, tmp_path):
    home, repo = places
    workon = tmp_path / "workon"
    make_venv(workon / "unrelated")
    (workon / "unrelated" / ".project").write_text(str(tmp_path / "elsewhere"))
    mine = make_venv(workon / "mine")
    (mine / ".project").write_text(str(repo) + "\n")
    found = detect(repo, env_for(home, WORKON_HOME=str(workon)), own_prefix="/nonexistent")
    assert found.kind == "virtualenvwrapper" and found.prefix == mine


def test_conda_environment_from_conda_prefix(places, tmp_path):
    home, repo = places
    conda_env = make_venv(tmp_path / "miniconda3" / "envs" / "science")
    (conda_env / "pyvenv.cfg").unlink()
    (conda_env / "conda-meta").mkdir()
    found = detect(repo, env_for(home, CONDA_PREFIX=str(conda_env), CONDA_DEFAULT_ENV="science"),
                   own_prefix="/nonexistent")
    assert found.kind == "conda" and found.name == "conda:science" and found.is_conda
    assert sandbox_variables(found, "/usr/bin")["CONDA_PREFIX"] == str(conda_env)


def test_tox_environment_when_nothing_else(places):
    home, repo = places
    make_venv(repo / ".tox" / "py311")
    (repo / ".tox" / ".pkg").mkdir()
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.name == ".tox/py311"


def test_pyenv_version_file_names_a_version_under_pyenv_root(places, tmp_path):
    home, repo = places
    root = tmp_path / "pyenv"
    version = make_venv(root / "versions" / "3.11.9")
    (version / "pyvenv.cfg").unlink()  # a plain installation: needs a standard library
    (version / "lib" / "python3.11").mkdir(parents=True, exist_ok=True)
    (version / "lib" / "python3.11" / "os.py").write_text("")
    (repo / ".python-version").write_text("3.11.9\n")
    found = detect(repo, env_for(home, PYENV_ROOT=str(root)), own_prefix="/nonexistent")
    assert found.kind == "pyenv" and found.interpreter == str(version / "bin" / "python")
    assert set(found.visible) == {version / "bin", version / "lib"}  # never the whole prefix


# ---------------------------------------------------------------------- hostile repositories

def test_a_python_version_that_climbs_out_of_pyenv_root_is_refused(places, tmp_path):
    home, repo = places
    root = tmp_path / "pyenv"
    (root / "versions").mkdir(parents=True)
    make_venv(tmp_path / "outside")
    (repo / ".python-version").write_text("../../outside\n")
    found = detect(repo, env_for(home, PYENV_ROOT=str(root)), own_prefix="/nonexistent")
    assert found.kind == "system"
    assert any("not a version name" in s for s in found.skipped)


def test_a_python_version_linked_to_a_host_file_is_not_read(places, tmp_path):
    home, repo = places
    root = tmp_path / "pyenv"
    (root / "versions").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2-password\n")
    (repo / ".python-version").symlink_to(secret)
    found = detect(repo, env_for(home, PYENV_ROOT=str(root)), own_prefix="/nonexistent")
    assert found.kind == "system"
    assert "hunter2" not in repr(found)


def test_a_dot_venv_linked_to_home_is_never_shown_even_if_home_looks_like_a_venv(places):
    home, repo = places
    make_venv(home)  # $HOME itself holds pyvenv.cfg and bin/python
    (home / ".ssh").mkdir()
    (repo / ".venv").symlink_to(home)
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.kind == "system"
    assert not found.visible
    assert any("is a link" in s for s in found.skipped)  # refused before its target is even looked at


def test_pyvenv_cfg_home_pointing_at_a_credential_folder_is_refused(places):
    home, repo = places
    venv = make_venv(repo / ".venv")
    fake = home / ".aws" / "py"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "python").write_text("")
    (fake / "lib" / "python3.11").mkdir(parents=True)
    (fake / "lib" / "python3.11" / "os.py").write_text("")
    config = (venv / "pyvenv.cfg").read_text()
    (venv / "pyvenv.cfg").write_text(f"home = {fake / 'bin'}\n" + config)
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.kind == "system"
    assert not any(p.is_relative_to(home / ".aws") for p in found.visible)
    assert any("deny list" in s for s in found.skipped)


def test_pyvenv_cfg_home_that_is_not_an_interpreter_is_ignored(places):
    home, repo = places
    venv = make_venv(repo / ".venv")
    (home / "Documents").mkdir()
    (venv / "pyvenv.cfg").write_text(f"home = {home / 'Documents'}\n" + (venv / "pyvenv.cfg").read_text())
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.name == ".venv"
    assert not any(p.is_relative_to(home) for p in found.visible)


def test_a_poetry_name_with_slashes_finds_nothing_outside_the_virtualenvs_folder(places, tmp_path):
    home, repo = places
    (repo / "pyproject.toml").write_text('[tool.poetry]\nname = "../../../../tmp"\n')
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    assert found.kind == "system"


# ---------------------------------------------------------------------- the sandbox's variables

def test_sandbox_variables_put_the_environment_first_and_set_virtual_env(places):
    home, repo = places
    venv = make_venv(repo / ".venv")
    found = detect(repo, env_for(home), own_prefix="/nonexistent")
    variables = sandbox_variables(found, f"/usr/bin:{venv}/bin:/bin")
    assert variables["PATH"].split(":") == [str(venv / "bin"), "/usr/bin", "/bin"]
    assert variables["VIRTUAL_ENV"] == str(venv)
    assert sandbox_variables(python_env.PythonEnv("system", "python3", "python3", ""), "/usr/bin") == {
        "PATH": "/usr/bin"}


def test_gptoss_agents_own_venv_leaves_the_sandboxs_path(places, tmp_path):
    home, repo = places
    own = make_venv(tmp_path / "agent-venv")
    found = detect(repo, env_for(home, VIRTUAL_ENV=str(own)), own_prefix=str(own))
    assert found.kind == "system"
    variables = sandbox_variables(found, f"{own}/bin:/usr/bin", own_prefix=str(own))
    assert variables["PATH"] == "/usr/bin"  # `python3` is then the user's, not the agent's


def test_a_bare_interpreter_name_in_the_setting_is_found_on_path(places, tmp_path):
    home, repo = places
    venv = make_venv(tmp_path / "envs" / "py")
    found = detect(repo, env_for(home, PATH=f"{venv}/bin:/usr/bin"), override="python", own_prefix="/nonexistent")
    assert not found.problems and found.interpreter == str(venv / "bin" / "python")
