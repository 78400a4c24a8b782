"""Tokens in the repository's own git config do not reach a command under bwrap.

An attack printed `https://x-access-token:ghp_…@github.com/…` with `git remote -v`.
bwrap now binds a copy of .git/config with URL userinfo and http extra headers
removed; the Landlock fallback cannot replace a file (README says so).
"""

from __future__ import annotations

import subprocess

import pytest

TOKEN = "ghp_F2notARealTokenButLooksLikeOne0123"


@pytest.fixture
def repo_with_token(sandbox_repo):
    subprocess.run(["git", "remote", "add", "origin", f"https://x-access-token:{TOKEN}@github.com/o/r.git"],
                   cwd=sandbox_repo, check=True)
    subprocess.run(["git", "config", "http.https://github.com/.extraheader", f"AUTHORIZATION: bearer {TOKEN}"],
                   cwd=sandbox_repo, check=True)
    return sandbox_repo


def test_git_remote_shows_no_token_under_bwrap(make_sandbox, mechanism, repo_with_token):
    if mechanism != "bwrap":
        pytest.skip("the Landlock fallback cannot show a command a different .git/config (README says so)")
    before = (repo_with_token / ".git" / "config").read_bytes()
    result = make_sandbox().run(["sh", "-c", "git remote -v; git config --list; cat .git/config"])
    assert result.ok, result.output
    assert TOKEN not in result.output
    assert "https://github.com/o/r.git" in result.output  # the remote itself is still there
    assert (repo_with_token / ".git" / "config").read_bytes() == before  # the host's config is untouched


def test_git_still_works_on_the_scrubbed_config(make_sandbox, mechanism, repo_with_token):
    if mechanism != "bwrap":
        pytest.skip("bwrap only")
    result = make_sandbox().run(["sh", "-c", "git status --short && git log --oneline | wc -l"])
    assert result.ok and result.output.split()[-1] == "1", result.output
