"""Secrets stay out: credential files wherever they sit, and secret-looking environment variables.

Every test plants a real credential file with a recognisable value and
checks that a command printing it (directly, through a link in the
repository, or through a re-bound toolchain folder) shows nothing of it, while
the toolchain next to it still runs.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from sandbox_agent import run_agent

CREDENTIALS = [".ssh/id_rsa", ".aws/credentials", ".netrc", ".git-credentials", ".npmrc", ".pypirc",
               ".docker/config.json", ".kube/config", ".config/gh/hosts.yml", ".config/pip/pip.conf",
               ".gnupg/private-keys-v1.d/key", ".cargo/credentials.toml", ".config/gcloud/credentials.db",
               ".vault-token", ".pgpass"]


def _plant(path: Path) -> str:
    value = f"SECRET-{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return value


@pytest.mark.parametrize("relative", CREDENTIALS)
def test_credential_files_in_home_are_invisible(make_sandbox, fake_home, relative):
    value = _plant(fake_home / relative)
    result = make_sandbox().run(["sh", "-c", f"cat ~/{relative}; cat {fake_home / relative}; true"])
    assert value not in result.output


def test_cargo_credentials_stay_hidden_while_cargo_bin_runs(make_sandbox, fake_home, monkeypatch):
    bin_dir = fake_home / ".cargo" / "bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "hello-tool"
    tool.write_text("#!/bin/sh\necho TOOL-RAN\n")
    tool.chmod(0o755)
    value = _plant(fake_home / ".cargo" / "credentials.toml")
    config = _plant(fake_home / ".cargo" / "config.toml")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = make_sandbox().run(["sh", "-c", f"hello-tool; cat {fake_home}/.cargo/credentials.toml "
                                             f"{fake_home}/.cargo/config.toml; ls -a {fake_home}/.cargo; true"])
    assert "TOOL-RAN" in result.output
    assert value not in result.output and config not in result.output


def test_a_credential_inside_a_rebound_toolchain_folder_is_masked(make_sandbox, fake_home, monkeypatch):
    bin_dir = fake_home / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "lint-tool"
    tool.write_text("#!/bin/sh\necho LINT-RAN\n")
    tool.chmod(0o755)
    value = _plant(bin_dir / "pip.conf")
    token = _plant(bin_dir / "deploy-credentials.json")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = make_sandbox().run(["sh", "-c", f"lint-tool; cat {bin_dir}/pip.conf {bin_dir}/deploy-credentials.json; true"])
    assert "LINT-RAN" in result.output
    assert value not in result.output and token not in result.output


@pytest.mark.parametrize("name", [".netrc", ".npmrc", ".git-credentials", ".env", "aws-credentials", "prod.pem"])
def test_credentials_in_a_parent_folder_of_the_repository_are_invisible(make_sandbox, sandbox_repo, name):
    value = _plant(sandbox_repo.parent / name)
    result = make_sandbox().run(["sh", "-c", f"cat ../{name}; cat {sandbox_repo.parent / name}; true"])
    assert value not in result.output


def test_a_link_in_the_repository_to_a_home_credential_shows_nothing(make_sandbox, fake_home, sandbox_repo):
    value = _plant(fake_home / ".netrc")
    os.symlink(fake_home / ".netrc", sandbox_repo / "README.txt")
    os.symlink(fake_home, sandbox_repo / "home-link")
    result = make_sandbox().run(["sh", "-c", "cat README.txt; cat home-link/.netrc; true"])
    assert value not in result.output


def test_other_users_homes_are_invisible(make_sandbox):
    home = Path("/home")
    if not home.is_dir() or not os.access(home, os.W_OK):
        pytest.skip("cannot plant a file under /home as this user")
    other = home / f"gptoss-other-{uuid.uuid4().hex[:8]}"
    try:
        value = _plant(other / ".bash_history")
        result = make_sandbox().run(["sh", "-c", f"cat {other}/.bash_history 2>/dev/null; ls /home 2>/dev/null; true"])
        assert value not in result.output and other.name not in result.output
    finally:
        (other / ".bash_history").unlink(missing_ok=True)
        other.rmdir()


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD",
                                  "SESSION_COOKIE", "NPM_AUTH", "HF_TOKEN", "MY_PRIVATE_THING",
                                  "GOOGLE_APPLICATION_CREDENTIALS", "SENTRY_DSN"])
def test_secret_environment_variables_never_reach_a_command(make_sandbox, monkeypatch, name):
    value = f"value-{uuid.uuid4().hex}"
    monkeypatch.setenv(name, value)
    result = make_sandbox().run(["env"])
    assert value not in result.output and name not in result.output


def test_a_caller_cannot_pass_a_secret_variable_either(make_sandbox):
    result = make_sandbox().run(["env"], env={"UPLOAD_TOKEN": "tok-123", "PYTEST_ADDOPTS": "-q"})
    assert "tok-123" not in result.output and "PYTEST_ADDOPTS=-q" in result.output


def test_variables_the_user_names_pass_on_purpose(make_sandbox, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_TOKEN", "chosen-by-user")
    monkeypatch.setenv("OTHER_TOKEN", "not-chosen")
    monkeypatch.setenv("GPTOSS_AGENT_SANDBOX_ENV", "PIP_INDEX_TOKEN")
    result = make_sandbox().run(["env"])
    assert "PIP_INDEX_TOKEN=chosen-by-user" in result.output and "not-chosen" not in result.output


def test_ordinary_variables_still_pass(make_sandbox, monkeypatch):
    monkeypatch.setenv("LANG", "C.UTF-8")
    result = make_sandbox().run(["env"])
    assert "PATH=" in result.output and "LANG=C.UTF-8" in result.output


def test_an_abstract_unix_socket_of_the_host_is_unreachable(make_sandbox):
    name = f"gptoss-test-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX)
    server.bind("\0" + name)
    server.listen(1)
    try:
        result = make_sandbox().run(["python3", "-c", "import socket; s = socket.socket(socket.AF_UNIX); "
                                                      f"s.connect('\\0{name}'); print('CONNECTED')"])
        assert "CONNECTED" not in result.output
    finally:
        server.close()


def test_the_agents_own_environment_is_unreadable_from_proc(sandbox_repo, mechanism):
    secret = f"sk-agent-{uuid.uuid4().hex}"
    report = run_agent(sandbox_repo, mechanism, ["sh", "-c", "cat /proc/$AGENT_PID/environ; cat /proc/$PPID/environ; "
                                                             "cat /proc/*/environ; true"],
                       env={"OPENAI_API_KEY": secret})
    assert report["alive"] and secret not in report["output"]


def test_a_credential_planted_beside_a_toolchain_between_two_commands_is_hidden_too(make_sandbox, fake_home,
                                                                                     monkeypatch):
    bin_dir = fake_home / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sandbox = make_sandbox()
    assert sandbox.run(["true"]).ok  # the first command caches what it found beside the toolchain
    value = _plant(bin_dir / ".netrc")
    result = sandbox.run(["sh", "-c", f"cat {bin_dir}/.netrc; true"])
    assert value not in result.output
