"""A session log is untrusted data: a header whose repository holds a NUL or is not an absolute
path is skipped with a warning by `sessions` and `resume --last`, never a crash."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.repos import final, write_replay
from tests.security.settings_helpers import cli, repo  # noqa: F401 (fixture)


@pytest.mark.parametrize("bad_repo", ["/tmp/x\u0000y", "relative/path"])
def test_a_log_with_a_bad_repository_in_its_header_is_skipped_with_a_warning(repo, tmp_path, isolated_state,
                                                                              bad_repo):
    replay = write_replay(tmp_path / "r.json", [final("done")])
    sessions = isolated_state / "state" / "sessions"
    before = set(sessions.glob("*.jsonl"))
    assert cli("exec", "--backend", f"replay:{replay}", "--cwd", str(repo), "task", cwd=repo).returncode == 0
    (good,) = set(sessions.glob("*.jsonl")) - before
    bad = sessions / "29991231-235959-badbad.jsonl"  # the newest name: --last would pick it first
    lines = good.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["repo"] = bad_repo
    bad.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    for args in (["sessions", "--all"], ["sessions"]):
        done = cli(*args, cwd=repo)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "badbad" in done.stderr and "skipped" in done.stderr, done.stderr
        assert good.stem in done.stdout
    resumed = cli("resume", "--last", "--backend", f"replay:{replay}", cwd=repo)
    assert "embedded null byte" not in resumed.stderr and "Traceback" not in resumed.stderr
    assert resumed.returncode == 0, resumed.stderr[-2000:]
