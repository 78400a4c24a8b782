"""Attack A3 on the project-interpreter detection, each finding replayed against the real sandbox.

The trick behind most of them: a venv inside the work tree (committed by the repository, or written by the
model through an earlier command) whose pyvenv.cfg `home` leads, through `/proc/self/cwd` or a link planted
in the tree, to any host folder, which the sandbox then re-bound. The rule now: an environment the model
could have written never widens what a command sees outside the work tree; only the user does.
Both mechanisms, as root and (in CI) as nobody.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gptoss_agent.tools import python_env
from gptoss_agent.tools.python_env import detect

SECRET = "A3-PRIVATE-NOTES"


def make_venv(path: Path, python: str = sys.executable) -> Path:
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True)
    return path


def private_folder(tmp_path: Path) -> Path:
    """A host folder no command may see: it stands for /root/a3-private, another repository, a state dir."""
    folder = tmp_path / "private"
    (folder / "app" / "config").mkdir(parents=True)
    (folder / "notes.txt").write_text(SECRET + "\n")
    return folder


def fake_prefix_in_repo(repo: Path, target: Path) -> None:
    """fb/ looks like an interpreter installation (a standard library), and fb/bin is a link to `target`."""
    (repo / "fb" / "lib" / "python3.11").mkdir(parents=True)
    (repo / "fb" / "lib" / "python3.11" / "os.py").write_text("# stdlib\n")
    (repo / "fb" / "bin").symlink_to(target)


def planted_venv(repo: Path, home_line: str) -> Path:
    venv = repo / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {home_line}\n")
    (venv / "bin" / "python").write_text("#!/bin/sh\nexec python3 \"$@\"\n")
    (venv / "bin" / "python").chmod(0o755)
    return venv


def shows(env, folder: Path) -> bool:
    return any(Path(p).is_relative_to(folder) or folder.is_relative_to(p) for p in env.visible)


# ---------------------------------------------------------------------- 1, 4: a planted venv's `home`

@pytest.mark.parametrize("how", ["proc-self-cwd", "proc-self-cwd-parent", "absolute-link-in-tree"])
def test_a_venv_planted_in_the_tree_never_shows_a_host_folder(make_sandbox, sandbox_repo, tmp_path, monkeypatch,
                                                               how):
    target = private_folder(tmp_path)
    fake_prefix_in_repo(sandbox_repo, target)
    home_line = {"proc-self-cwd": "/proc/self/cwd/fb/bin",
                 "proc-self-cwd-parent": "/proc/self/cwd/../project/fb/bin",
                 "absolute-link-in-tree": str(sandbox_repo / "fb" / "bin")}[how]
    planted_venv(sandbox_repo, home_line)  # untracked: what a model's earlier `exec` can write
    (sandbox_repo / "sub").mkdir()
    monkeypatch.chdir(sandbox_repo / "sub" if how == "proc-self-cwd-parent" else sandbox_repo)
    sandbox = make_sandbox()
    assert sandbox.python_env.kind != "in-repo" and not shows(sandbox.python_env, target)
    read = sandbox.run(["sh", "-c", f"cat {target}/notes.txt; ls {target}"])
    assert SECRET not in read.output and "app" not in read.output.split()


def test_a_venv_whose_base_is_a_host_folder_shaped_like_an_interpreter_is_not_shown(make_sandbox, sandbox_repo,
                                                                                   tmp_path):
    # outside the tree, a real prefix (python + standard library), but in /tmp and not where interpreters live
    base = tmp_path / "fake-python"
    (base / "lib" / "python3.11").mkdir(parents=True)
    (base / "lib" / "python3.11" / "os.py").write_text("#\n")
    (base / "bin").mkdir()
    shutil.copy(sys.executable, base / "bin" / "python")
    (base / "notes.txt").write_text(SECRET)
    (base / "lib" / "notes.txt").write_text(SECRET)
    venv = make_venv(sandbox_repo / ".venv")
    (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\n" + (venv / "pyvenv.cfg").read_text())
    sandbox = make_sandbox()
    assert not any(Path(p).is_relative_to(base) for p in sandbox.python_env.visible)
    read = sandbox.run(["sh", "-c", f"cat {base}/lib/notes.txt {base}/notes.txt"])
    assert SECRET not in read.output


# ---------------------------------------------------------------------- 5: pseudo filesystems

@pytest.mark.parametrize("target", ["/proc", "/dev", "/sys", "/run"])
def test_pseudo_filesystems_are_never_an_environments_folder(sandbox_repo, tmp_path, target):
    fake_prefix_in_repo(sandbox_repo, Path(target))
    planted_venv(sandbox_repo, "/proc/self/cwd/fb/bin")
    home = tmp_path / "home"
    home.mkdir()
    env = detect(sandbox_repo, {"HOME": str(home), "PATH": "/usr/bin:/bin"}, own_prefix="/nonexistent")
    assert not any(Path(p).is_relative_to(target) for p in env.visible)
    why = python_env.unbindable(Path(target) / "x", sandbox_repo, home)
    assert f"in {target}" in why


def test_host_devices_stay_out_of_reach_with_a_planted_venv(make_sandbox, sandbox_repo, monkeypatch):
    fake_prefix_in_repo(sandbox_repo, Path("/dev"))
    planted_venv(sandbox_repo, "/proc/self/cwd/fb/bin")
    monkeypatch.chdir(sandbox_repo)
    sandbox = make_sandbox()
    probe = ("import os\nfor d in ('/dev/kmsg', '/dev/loop0', '/dev/console', '/dev/kvm', '/dev/fuse'):\n"
             "    try:\n        os.close(os.open(d, os.O_RDONLY | os.O_NONBLOCK)); print('OPENED', d)\n"
             "    except OSError:\n        pass\n")
    ran = sandbox.run(["python3", "-c", probe])
    assert "OPENED" not in ran.output, ran.output


# ---------------------------------------------------------------------- 2, 3: other users, the agent's own folders

def test_another_users_home_is_never_shown(tmp_path):
    me = tmp_path / "me"
    why = python_env.unbindable(Path("/home/a3victim/proj"), tmp_path / "repo", me)
    assert "another user's home" in why
    assert python_env.unbindable(Path("/root/a3-private"), tmp_path / "repo", me)


def test_the_agents_state_folder_is_never_shown_even_by_the_python_setting(sandbox_repo, mechanism, tmp_path,
                                                                           monkeypatch):
    from gptoss_agent.tools.sandbox import Limits, Sandbox

    state = tmp_path / "state"
    monkeypatch.setenv("GPTOSS_AGENT_STATE_DIR", str(state))
    make_venv(state / "env")  # shaped like an environment, as an attacker would need
    (state / "sessions").mkdir()
    (state / "sessions" / "other-repo.jsonl").write_text(SECRET)
    sandbox = Sandbox(sandbox_repo, mode=mechanism, limits=Limits(timeout_s=20), python=str(state / "env"))
    assert sandbox.python_env.problems and "gptoss-agent's own folder" in sandbox.python_env.problems[0]
    assert not sandbox.python_env.visible
    read = sandbox.run(["sh", "-c", f"cat {state}/sessions/*"])
    assert SECRET not in read.output


# ---------------------------------------------------------------------- 6: full-depth masking

def test_what_hides_deep_in_the_users_environment_is_masked_and_its_code_still_imports(make_sandbox, fake_home,
                                                                                         monkeypatch):
    venv = make_venv(fake_home / ".virtualenvs" / "work")
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "pkg" / "config").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("VALUE = 'imported'\n")
    (site / "pkg" / "secrets.py").write_text("TOKEN = 'code, not a credential'\n")  # code keeps its name
    (site / "pkg" / "config" / ".env").write_text("DB_PASSWORD=" + SECRET)
    private = site / "pkg" / "config" / "settings.ini"
    private.write_text(SECRET)
    private.chmod(0o600)  # root outside is uid 0 to the kernel's checks inside: masked by its mode
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    sandbox = make_sandbox()
    assert sandbox.python_env.prefix == venv, sandbox.python_env.skipped
    ran = sandbox.run(["python", "-c", "import pkg, pkg.secrets; print(pkg.VALUE, pkg.secrets.TOKEN)"])
    assert ran.ok and "imported code, not a credential" in ran.output, ran.output
    read = sandbox.run(["sh", "-c", f"cat {site}/pkg/config/.env {private}"])
    assert SECRET not in read.output


# ---------------------------------------------------------------------- 7: the most common venv

@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="no system python3 at /usr/bin/python3")
def test_a_venv_of_the_system_python_runs_every_command(make_sandbox, sandbox_repo):
    made = subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(sandbox_repo / ".venv")],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("the system python3 has no venv module here")
    sandbox = make_sandbox()
    assert sandbox.python_env.kind == "in-repo"
    assert not any(Path(p).is_relative_to("/usr") for p in sandbox.python_env.visible)  # shown already
    echo = sandbox.run(["echo", "still-works"])
    assert echo.ok and "still-works" in echo.output, echo.output
    ran = sandbox.run(["python", "-c", "import sys, ssl; print(sys.prefix)"])
    assert ran.ok and str(sandbox_repo / ".venv") in ran.output, ran.output


def test_a_dangling_link_with_a_credential_name_in_a_rebound_folder_does_not_break_commands(make_sandbox, fake_home,
                                                                                              monkeypatch):
    # the shape of /usr/lib/ssl/cert.pem when its target is missing: bwrap cannot mask a dangling link
    tools = fake_home / ".local" / "bin"
    tools.mkdir(parents=True)
    (tools / "cert.pem").symlink_to("/nonexistent/ca-certificates.crt")
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    echo = make_sandbox().run(["echo", "still-works"])
    assert echo.ok and "still-works" in echo.output, echo.output


# ---------------------------------------------------------------------- 9, 11: the repository's own "interpreter"

def _commit_all(repo: Path) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "venv"], cwd=repo, check=True, capture_output=True)


def test_a_venv_tracked_by_git_is_not_the_users_environment(sandbox_repo, fake_home):
    make_venv(sandbox_repo / ".venv")
    _commit_all(sandbox_repo)
    env = detect(sandbox_repo, {"HOME": str(fake_home), "PATH": "/usr/bin:/bin"}, own_prefix="/nonexistent")
    assert env.kind != "in-repo"
    assert any("tracked by git" in why for why in env.skipped)
    assert str(sandbox_repo) not in env.install_command()  # never a repository program run on the host


def test_a_planted_interpreter_script_is_never_the_projects_python(sandbox_repo, fake_home):
    venv = make_venv(sandbox_repo / ".venv")
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")  # every run would "pass"
    (venv / "bin" / "python").chmod(0o755)
    env = detect(sandbox_repo, {"HOME": str(fake_home), "PATH": "/usr/bin:/bin"}, own_prefix="/nonexistent")
    assert env.kind != "in-repo" and str(sandbox_repo) not in env.interpreter
    assert any("not a link to an installed interpreter" in why for why in env.skipped)


def test_a_known_runner_that_exits_0_with_no_results_is_not_green():
    from gptoss_agent.agent.frontends.headless import _no_results
    from gptoss_agent.tools.tests import TestReport

    silent = TestReport("pytest", ["python", "-m", "pytest"], exit_code=0, results="unknown")
    assert silent.green and _no_results(silent)  # exit 0 alone: never "the tests pass"
    assert not _no_results(TestReport("custom", ["make", "check"], exit_code=0, results="unknown"))
    assert not _no_results(TestReport("pytest", ["pytest"], passed=3, exit_code=0))
    assert _no_results(TestReport("unittest", ["python", "-m", "unittest"], exit_code=0))  # "Ran 0 tests ... OK"
    assert not _no_results(TestReport("pytest", ["pytest"], skipped=2, exit_code=0))


# ---------------------------------------------------------------------- 8: code bugs that mention an error

@pytest.mark.parametrize("text", [
    "E       assert 'missing: yaml' == \"No module named 'yaml'\"\nE         - No module named 'yaml'",
    "E       AssertionError: assert 'unknown' == 'Network is unreachable'\nE         + Network is unreachable",
    "E       AssertionError: No package metadata was found for errs\nE       assert None is not None",
])
def test_a_failed_assertion_that_mentions_an_environment_error_is_the_models(text):
    from gptoss_agent.tools.environment_problems import ProjectFacts, diagnose

    found = diagnose([("test_errs.py::test_x", text)], "", runner="pytest", program="python",
                     facts=ProjectFacts(frozenset({"errs"}), "errs"), install="pip install {}".format)
    assert not found.problems and found.unexplained == {"test_errs.py::test_x"}


def test_the_error_itself_is_still_an_environment_problem():
    from gptoss_agent.tools.environment_problems import ProjectFacts, diagnose

    texts = [("t::a", "E   ModuleNotFoundError: No module named 'errs'"),
             ("t::b", "E   socket.gaierror: [Errno -3] Temporary failure in name resolution")]
    found = diagnose(texts, "", runner="pytest", program="python", facts=ProjectFacts(frozenset({"errs"}), "errs"),
                     install="pip install {}".format)
    assert found.only_environment and {p.kind for p in found.problems} == {"project not installed", "network needed"}


# ---------------------------------------------------------------------- 10, 12: what `fix` calls the user's work

def _refusal(repo: Path, env) -> str:
    from gptoss_agent.agent.frontends.headless import SetupError, check_before_fix

    ctx = SimpleNamespace(workspace=repo, sandbox=SimpleNamespace(python_env=env))
    with pytest.raises(SetupError) as refused:
        check_before_fix(ctx, allow_dirty=False)
    return str(refused.value)


def test_a_committed_link_named_venv_does_not_make_the_users_new_file_noise(sandbox_repo, fake_home):
    make_venv(sandbox_repo / "src")
    (sandbox_repo / ".venv").symlink_to("src")
    _commit_all(sandbox_repo)
    (sandbox_repo / "src" / "feature.py").write_text("def new(): ...\n")  # the user's, never added
    env = detect(sandbox_repo, {"HOME": str(fake_home), "PATH": "/usr/bin:/bin"}, own_prefix="/nonexistent")
    assert "src/feature.py" in _refusal(sandbox_repo, env)
    # and even told the environment is there, a link is not a folder of noise
    from gptoss_agent.tools.untracked_noise import user_changes

    assert user_changes([("??", "src/feature.py")], [".venv"], sandbox_repo) == {"src/feature.py"}
    assert user_changes([("??", ".venv/")], [], sandbox_repo) == {".venv/"}


def test_an_untracked_real_venv_is_still_noise(sandbox_repo, fake_home):
    from gptoss_agent.agent.frontends.headless import check_before_fix

    make_venv(sandbox_repo / ".venv")
    (sandbox_repo / "__pycache__").mkdir()
    env = detect(sandbox_repo, {"HOME": str(fake_home), "PATH": "/usr/bin:/bin"}, own_prefix="/nonexistent")
    check_before_fix(SimpleNamespace(workspace=sandbox_repo, sandbox=SimpleNamespace(python_env=env)), False)


def test_the_dirty_tree_refusal_shows_file_names_escaped(sandbox_repo, fake_home):
    (sandbox_repo / "notes\x1b]52;c;Y3VybCBldmls\x07\x1b[2J\rFAKE: tests pass").write_text("x")
    env = detect(sandbox_repo, {"HOME": str(fake_home), "PATH": "/usr/bin:/bin"}, own_prefix="/nonexistent")
    message = _refusal(sandbox_repo, env)
    assert "notes" in message and not any(c in message for c in "\x1b\x07\r")


# ---------------------------------------------------------------------- doctor

def test_doctor_says_the_repositorys_python_setting_is_ignored(sandbox_repo, capsys, monkeypatch, tmp_path):
    from gptoss_agent.agent.frontends.cli import _doctor_python

    monkeypatch.setenv("GPTOSS_AGENT_CONFIG", str(tmp_path / "no-user-config.toml"))
    (sandbox_repo / ".gptoss-agent.toml").write_text('python = "/root/.pyenv/versions/3.11.7"\n')
    _doctor_python(str(sandbox_repo))
    out = capsys.readouterr().out
    assert "ignored: python in" in out and ".gptoss-agent.toml" in out
