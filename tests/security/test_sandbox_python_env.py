"""The project's Python environment inside the sandbox: shown, read-only, and never a way to the user's secrets.

The repository picks some of it (its `.venv`, which may be a link; the `home` line of its `pyvenv.cfg`),
so a hostile repository must not make the sandbox show $HOME or a credential folder; and the user's own
venv, shown whole, must stay unwritable (a `.pth` planted there would run in the user's next Python).
Both mechanisms, as root and (in CI) as nobody.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True)
    return path


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def test_the_users_venv_in_home_is_importable_read_only_and_its_pip_conf_hidden(make_sandbox, fake_home, monkeypatch):
    venv = make_venv(fake_home / ".virtualenvs" / "work")
    (site_packages(venv) / "only_in_env.py").write_text("VALUE = 'from-the-venv'\n")
    (venv / "pip.conf").write_text("[global]\nindex-url = https://user:s3cret-token@example.com/simple\n")
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    sandbox = make_sandbox()
    assert sandbox.python_env.prefix == venv
    ran = sandbox.run(["python", "-c", "import only_in_env, sys; print(only_in_env.VALUE, sys.prefix)"])
    assert ran.ok and f"from-the-venv {venv}" in ran.output, ran.output
    leaked = sandbox.run(["cat", str(venv / "pip.conf")])
    assert "s3cret-token" not in leaked.output
    planted = site_packages(venv) / "evil.pth"
    wrote = sandbox.run(["sh", "-c", f"echo 'import os' > {planted}"])
    assert not wrote.ok and not planted.exists()


def test_a_repository_venv_linked_to_home_shows_nothing_of_home(make_sandbox, sandbox_repo, fake_home):
    make_venv(fake_home)  # $HOME itself shaped like a venv: pyvenv.cfg and bin/python
    (fake_home / "notes.txt").write_text("private-notes-42\n")
    (sandbox_repo / ".venv").symlink_to(fake_home)
    sandbox = make_sandbox()
    assert sandbox.python_env.kind != "in-repo"
    assert not any(Path(p).is_relative_to(fake_home) for p in sandbox.python_env.visible)
    read = sandbox.run(["cat", str(fake_home / "notes.txt")])
    assert not read.ok and "private-notes-42" not in read.output


def test_pyvenv_cfg_pointing_into_a_credential_folder_shows_nothing_of_it(make_sandbox, sandbox_repo, fake_home):
    fake_prefix = fake_home / ".aws" / "python"
    (fake_prefix / "bin").mkdir(parents=True)
    os.symlink(sys.executable, fake_prefix / "bin" / "python")
    (fake_prefix / "lib" / "python3.11").mkdir(parents=True)
    (fake_prefix / "lib" / "python3.11" / "os.py").write_text("")
    (fake_home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = AKIA-very-secret\n")
    venv = make_venv(sandbox_repo / ".venv")
    (venv / "pyvenv.cfg").write_text(f"home = {fake_prefix / 'bin'}\n" + (venv / "pyvenv.cfg").read_text())
    sandbox = make_sandbox()
    assert not any(Path(p).is_relative_to(fake_home / ".aws") for p in sandbox.python_env.visible)
    read = sandbox.run(["sh", "-c", f"cat {fake_home / '.aws' / 'credentials'}; ls {fake_prefix}"])
    assert "AKIA-very-secret" not in read.output and "os.py" not in read.output


def test_a_venv_outside_repository_and_home_is_shown_by_the_python_setting(sandbox_repo, mechanism, tmp_path,
                                                                          fake_home):
    from gptoss_agent.tools.sandbox import Limits, Sandbox

    venv = make_venv(tmp_path / "elsewhere" / "env")
    (site_packages(venv) / "only_in_env.py").write_text("VALUE = 'elsewhere'\n")
    (tmp_path / "elsewhere" / "neighbour.txt").write_text("not-for-the-sandbox\n")
    sandbox = Sandbox(sandbox_repo, mode=mechanism, limits=Limits(timeout_s=20), python=str(venv))
    ran = sandbox.run(["bash", "-c", "python -c 'import only_in_env; print(only_in_env.VALUE)'"])
    assert ran.ok and "elsewhere" in ran.output, ran.output
    neighbour = sandbox.run(["cat", str(tmp_path / "elsewhere" / "neighbour.txt")])
    assert "not-for-the-sandbox" not in neighbour.output  # the venv's folder is shown, not its parent
