"""container.exec, run_tests, git_commit and undo on a real repository."""

from __future__ import annotations

import subprocess

import pytest

from gptoss_agent.agent.model.completion import ToolCallRequest
from gptoss_agent.tools import git as git_tools
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.editing import apply_patch_tool
from gptoss_agent.tools.shell import exec_command
from gptoss_agent.tools.tests import run_tests
from tests.fixtures.repos import git

FIX = "*** Begin Patch\n*** Update File: calc.py\n def add(a, b):\n-    return a - b\n+    return a + b\n*** End Patch"


def test_exec_merges_output_in_order_with_exit_code(ctx):
    result = exec_command.function(ctx, cmd="echo out; echo err >&2; echo out2; exit 3")
    assert not result.ok and "[exit code 3" in result.output
    assert result.output.endswith("out\nerr\nout2")
    assert result.data["exit_code"] == 3


def test_exec_accepts_an_argument_list(ctx):
    result = exec_command.function(ctx, cmd=["python3", "-c", "print('hi there')"])
    assert result.ok and "hi there" in result.output


def test_exec_timeout_is_reported(ctx):
    result = exec_command.function(ctx, cmd="sleep 30", timeout=1)
    assert not result.ok and "timed out after 1s" in result.output


def test_run_tests_reports_exactly_the_failing_ids(ctx):
    result = run_tests.function(ctx)
    assert not result.ok
    assert result.data["failing"] == ["tests/test_calc.py::test_add"]
    assert result.data["passed"] == 1 and result.data["failed"] == 1
    failure = result.data["failures"][0]
    assert failure["location"] == "tests/test_calc.py:5" and "assert -1 == 5" in failure["message"]
    assert "1 passed, 1 failed" in result.output


def test_run_tests_on_given_paths_and_select(ctx, repo):
    (repo / "tests" / "test_other.py").write_text("def test_ok():\n    assert sum([1, 2]) == 3\n")
    only = run_tests.function(ctx, paths=["tests/test_other.py"])
    assert only.ok and only.data["passed"] == 1 and only.data["failed"] == 0
    selected = run_tests.function(ctx, select="mul")
    assert selected.ok and selected.data["passed"] == 1


def test_run_tests_with_a_configured_command(repo):
    from gptoss_agent.tools.sandbox import Sandbox

    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), test_command="sh -c 'echo custom; exit 1'")
    result = run_tests.function(ctx)
    assert not result.ok and result.data["runner"] == "custom" and result.data["results"] == "unknown"
    assert result.output.startswith("Test results unknown") and result.data["failing"] == []


def test_a_configured_pytest_command_gets_real_counts(repo):
    from gptoss_agent.tools.sandbox import Sandbox

    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), test_command="python3 -m pytest -q")
    result = run_tests.function(ctx)
    assert result.data["passed"] == 1 and result.data["failing"] == ["tests/test_calc.py::test_add"]


def test_patch_then_commit_stages_only_the_agents_changes(ctx, repo):
    (repo / "user_notes.txt").write_text("my own work in progress")
    ctx.baseline_dirty = frozenset(git_tools.dirty_paths(repo))
    assert apply_patch_tool.function(ctx, patch=FIX).ok
    result = git_tools.git_commit.function(ctx, message="Fix add()")
    assert result.ok, result.output
    assert "user_notes.txt" not in git(repo, "show", "--name-only", "--format=", "HEAD")
    assert git(repo, "log", "-1", "--format=%B").strip().endswith(git_tools.TRAILER)
    assert (repo / "user_notes.txt").exists() and "?? user_notes.txt" in git(repo, "status", "--short")


def test_planted_hook_and_fsmonitor_never_run(ctx, repo, tmp_path):
    proof = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {proof}\n")
    hook.chmod(0o755)
    monitor = tmp_path / "fsmonitor.sh"
    monitor.write_text(f"#!/bin/sh\ntouch {proof}.fsmonitor\n")
    monitor.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(monitor))
    apply_patch_tool.function(ctx, patch=FIX)
    git_tools.dirty_paths(repo)
    assert git_tools.git_commit.function(ctx, message="fix").ok
    assert not proof.exists() and not (tmp_path / "hook-ran.fsmonitor").exists()


def test_push_and_fetch_are_refused(ctx, repo, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    from gptoss_agent.tools.sandbox import run_trusted

    assert run_trusted(["git", "push", "origin", "main"], cwd=repo).returncode != 0
    assert run_trusted(["git", "fetch", "origin"], cwd=repo).returncode != 0
    inside = exec_command.function(ctx, cmd="git push origin main")
    assert not inside.ok
    assert subprocess.run(["git", "--git-dir", str(remote), "rev-parse", "main"], capture_output=True).returncode != 0


def test_undo_restores_uncommitted_edits_exactly(ctx, repo):
    original = (repo / "calc.py").read_bytes()
    apply_patch_tool.function(ctx, patch="*** Begin Patch\n*** Add File: new.py\n+x = 1\n*** End Patch")
    apply_patch_tool.function(ctx, patch=FIX)
    message = git_tools.undo(ctx)
    assert "restored 2 file(s)" in message
    assert (repo / "calc.py").read_bytes() == original and not (repo / "new.py").exists()


def test_undo_refuses_when_the_user_changed_the_file_since(ctx, repo):
    apply_patch_tool.function(ctx, patch=FIX)
    (repo / "calc.py").write_text("user rewrote it\n")
    with pytest.raises(git_tools.GitError, match="changed since the agent edited them"):
        git_tools.undo(ctx)
    assert (repo / "calc.py").read_text() == "user rewrote it\n"


def test_undo_reverts_the_agents_commit_but_never_a_user_commit(ctx, repo):
    head = git(repo, "rev-parse", "HEAD").strip()
    apply_patch_tool.function(ctx, patch=FIX)
    git_tools.git_commit.function(ctx, message="fix")
    assert "reverted the agent's commit" in git_tools.undo(ctx)
    assert git(repo, "rev-parse", "HEAD").strip() == head and "a - b" in (repo / "calc.py").read_text()
    (repo / "x.txt").write_text("user")
    git(repo, "add", "x.txt")
    git(repo, "commit", "-qm", "user commit")
    ctx.agent_commits.append(head)
    with pytest.raises(git_tools.GitError, match="only undoes its own commits"):
        git_tools.undo(ctx)


def test_failed_patch_leaves_every_file_untouched(ctx, repo):
    before = {p: p.read_bytes() for p in repo.rglob("*.py")}
    patch = FIX.replace("*** End Patch", "*** Update File: tests/test_calc.py\n-nothing like this\n+x\n*** End Patch")
    result = apply_patch_tool.function(ctx, patch=patch)
    assert not result.ok and "hunk 1: context not found" in result.output
    assert {p: p.read_bytes() for p in repo.rglob("*.py")} == before


def test_patch_into_dot_git_is_refused(ctx):
    result = apply_patch_tool.function(ctx, patch="*** Begin Patch\n*** Add File: .git/hooks/post-commit\n+evil\n*** End Patch")
    assert not result.ok and "inside .git" in result.output


class TestRegistry:
    registry = default_registry()

    def prepare(self, recipient, raw):
        return self.registry.prepare(ToolCallRequest(recipient, raw))

    def test_aliases_and_missing_namespace(self):
        tool, args, error = self.prepare("functions.apply_patch", '{"input": "*** Begin Patch"}')
        assert error is None and tool.spec.recipient == "repo_browser.apply_patch" and args == {"patch": "*** Begin Patch"}
        tool, args, error = self.prepare("open_file", '{"file_path": "a.py", "start_line": 3, "end_line": "9"}')
        assert tool.spec.recipient == "repo_browser.open_file" and args == {"path": "a.py", "line_start": 3, "line_end": 9}
        tool, args, _ = self.prepare("container.exec", '{"command": "ls -la"}')
        assert args == {"cmd": "ls -la"}

    def test_json_glued_to_the_name_and_bare_string_patch(self):
        tool, args, error = self.prepare("functions.git_commitjson", '{"message": "m"}')
        assert error is None and tool.spec.recipient == "functions.git_commit"
        tool, args, error = self.prepare("repo_browser.apply_patch", "*** Begin Patch\n*** End Patch")
        assert error is None and args == {"patch": "*** Begin Patch\n*** End Patch"}

    def test_unknown_tool_and_bad_arguments_list_what_is_valid(self):
        _, _, error = self.prepare("functions.frobnicate", "{}")
        assert "no tool named 'functions.frobnicate'" in error and "repo_browser.open_file" in error
        _, _, error = self.prepare("repo_browser.open_file", '{"pathh": "x"}')
        assert "has no argument 'pathh'" in error and "path: string" in error
        _, _, error = self.prepare("repo_browser.open_file", "{}")
        assert "needs 'path'" in error
        _, _, error = self.prepare("repo_browser.open_file", '{"path": "a", "line_start": "ten"}')
        assert "must be integer" in error
