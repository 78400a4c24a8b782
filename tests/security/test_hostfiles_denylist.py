"""One credential deny list for every file tool and search, matched on the whole path, plus key content."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.hostfiles_fixtures import ctx, repo, resolution  # noqa: F401
from gptoss_agent.tools import files
from gptoss_agent.tools.denylist import HOME_SECRET_PATHS, holds_private_key, is_secret_path

SECRET_FILES = [
    ".env", ".env.production", "prod.env", ".envrc", ".ssh/config", "deploy/id_rsa", "id_ed25519.pub",
    "keys/ID_ECDSA", "certs/server.pem", "tls/server.key", "store.p12", "app.keystore", ".netrc", "_netrc",
    ".pgpass", ".git-credentials", ".npmrc", "web/.yarnrc.yml", ".pypirc", "pip.conf", ".docker/config.json",
    "ci/.kube/config", "kubeconfig", ".aws/credentials", ".azure/accessTokens.json", ".config/gcloud/adc.json",
    "application_default_credentials.json", ".config/gh/hosts.yml", ".cargo/credentials.toml", "db_credentials.yaml",
    "secrets.yaml", "config/Secret.json", "secrets/notes.txt", "prod.tfvars", "terraform.tfstate", ".htpasswd",
    "a:1:b/.env", "vault.kdbx",
]
ORDINARY_FILES = ["src/id_utils.py", "keyboard.py", "tokenizer.py", "docs/environment.md", "hosts.yml",
                  "docker/Dockerfile", "config.json", "src/keys.py", "monkey.txt"]


@pytest.mark.parametrize("name", SECRET_FILES)
def test_every_deny_list_entry_is_refused_by_open_file(ctx, repo, name):
    target = repo / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("API_TOKEN=leaked-value-91\n")
    assert is_secret_path(name)
    result = files.open_file.function(ctx, path=name)
    assert not result.ok and "leaked-value-91" not in result.output


@pytest.mark.parametrize("name", ORDINARY_FILES)
def test_ordinary_names_stay_readable(ctx, repo, name):
    target = repo / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("plain content\n")
    assert not is_secret_path(name)
    assert files.open_file.function(ctx, path=name).ok


def test_search_returns_no_line_from_any_secret_file(ctx, repo):
    for name in SECRET_FILES:
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("needle leaked-value-91\n")
    (repo / "ok.txt").write_text("needle fine\n")
    result = files.search.function(ctx, query="needle", max_results=500)
    assert result.output.splitlines() == ["README.md:2:needle in the readme", "ok.txt:1:needle fine"]


def test_a_private_key_under_an_innocent_name_is_refused_everywhere(ctx, repo):
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAneedle\n-----END RSA PRIVATE KEY-----\n"
    (repo / "notes.txt").write_text("intro\n" * 50 + key)
    assert holds_private_key(key.encode()) and not holds_private_key(b"-----BEGIN PUBLIC KEY-----")
    assert "private key" in files.open_file.function(ctx, path="notes.txt").output
    assert "MIIEowIBAAKCAQEA" not in files.search.function(ctx, query="needle").output


def test_a_link_with_an_innocent_name_to_a_secret_inside_is_refused(ctx, repo):
    (repo / ".env").write_text("API_TOKEN=leaked-value-91\n")
    (repo / "settings.txt").symlink_to(".env")
    result = files.open_file.function(ctx, path="settings.txt")
    assert not result.ok and "leaked-value-91" not in result.output


def test_what_the_sandbox_hides_in_home_covers_the_usual_credential_stores():
    expected = {".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials", ".npmrc",
                ".pypirc", ".config/gcloud", ".config/gh", ".cargo/credentials.toml"}
    assert expected <= set(HOME_SECRET_PATHS)
    assert all(not Path(p).is_absolute() for p in HOME_SECRET_PATHS)
