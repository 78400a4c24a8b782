"""File tools on hostile input: no backtracking regex on the host, nothing read from inside `.git`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git, make_repo
from gptoss_agent.tools import files
from gptoss_agent.tools.context import ToolContext

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"
EVIL_REGEX = "^(a+)+$"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "project")
    (root / "evil.txt").write_text("a" * 34 + "!\n")
    git(root, "config", "remote.origin.url", f"https://x-access-token:{TOKEN}@github.com/o/r.git")
    return root


@pytest.fixture
def ctx(repo: Path) -> ToolContext:
    return ToolContext(workspace=repo)


def search_in_child(repo: Path, arguments: dict, *, without_rg: bool = False) -> dict:
    """The search tool in its own process, so a backtracking engine fails the test instead of hanging it."""
    script = (
        "import json, shutil, sys\n"
        "from pathlib import Path\n"
        "from gptoss_agent.tools import files\n"
        "from gptoss_agent.tools.context import ToolContext\n"
        + ("files.shutil.which = lambda name: None\n" if without_rg else "")
        + "r = files.search.function(ToolContext(workspace=Path(sys.argv[1])), **json.loads(sys.argv[2]))\n"
        "print(json.dumps({'ok': r.ok, 'output': r.output}))\n")
    done = subprocess.run([sys.executable, "-c", script, str(repo), json.dumps(arguments)], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("path", ["evil.txt", ""])
def test_a_catastrophic_regex_finishes_quickly(repo, path):
    result = search_in_child(repo, {"query": EVIL_REGEX, "path": path})
    assert result["ok"] and "no matches" in result["output"]


@pytest.mark.parametrize("path", ["evil.txt", ""])
def test_without_ripgrep_a_catastrophic_regex_is_searched_as_text(repo, path):
    result = search_in_child(repo, {"query": EVIL_REGEX, "path": path}, without_rg=True)
    assert result["ok"] and "literal text" in result["output"]


def test_a_single_file_search_still_finds_regex_matches(ctx):
    result = files.search.function(ctx, query=r"return a \- b|def \w+", path="calc.py")
    assert result.ok and "calc.py:1:def add(a, b):" in result.output and "calc.py:2:" in result.output


def test_a_regex_ripgrep_rejects_is_searched_as_text(ctx, repo):
    (repo / "odd.txt").write_text("look (?=ahead) here\n")
    result = files.search.function(ctx, query="(?=ahead)", path="odd.txt")
    assert result.ok and "odd.txt:1:look (?=ahead) here" in result.output


@pytest.mark.parametrize("path", [".git/config", "./.git/config", "src/../.git/config", ".GIT/config"])
def test_open_file_never_reads_inside_git(ctx, path):
    result = files.open_file.function(ctx, path=path)
    assert not result.ok and TOKEN not in result.output and "inside .git" in result.output


def test_a_link_inside_the_repository_into_git_is_refused(ctx, repo):
    (repo / "settings.cfg").symlink_to(".git/config")
    (repo / "meta").symlink_to(".git")
    assert "inside .git" in files.open_file.function(ctx, path="settings.cfg").output
    assert "inside .git" in files.open_file.function(ctx, path="meta/config").output
    for path in (".git", "meta", ".git/config"):
        found = files.search.function(ctx, query="x-access-token", path=path)
        assert not found.ok and TOKEN not in found.output
    assert "inside .git" in files.list_dir.function(ctx, path=".git").output


def test_a_plain_search_never_shows_git_internals(ctx):
    result = files.search.function(ctx, query="x-access-token")
    assert TOKEN not in result.output
