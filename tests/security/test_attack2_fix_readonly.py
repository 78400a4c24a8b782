"""`fix --approval read-only` must not run the repository's test command: nothing that could write runs."""

from __future__ import annotations

from tests.fixtures.repos import git
from tests.security.settings_helpers import cli, repo  # noqa: F401 (repo is a fixture)


def test_fix_in_read_only_mode_refuses_before_running_anything(repo, tmp_path):
    (repo / ".gptoss-agent.toml").write_text('test_cmd = "touch wrote-something"\n')
    git(repo, "add", ".gptoss-agent.toml")
    git(repo, "commit", "-qm", "repository test command")
    done = cli("fix", "--approval", "read-only", "--backend", "replay:/none.json", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "read-only" in lines[0] and "auto-edit" in lines[0]
    assert not (repo / "wrote-something").exists()


def test_fix_with_another_approval_mode_still_runs_the_tests(repo, tmp_path):
    done = cli("fix", "--approval", "full-auto", "--json", "--test-cmd", "python3 -c 'raise SystemExit(0)'",
               "--backend", "replay:/none.json", "--cwd", str(repo), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tests already pass" in done.stdout
