"""Session logs are data: a damaged or forged log never crashes the listing, never moves a run to
another repository, and says so instead of pretending the session does not exist."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from gptoss_agent.agent.session import SessionLog, find_session, read_session, scan_sessions
from tests.fixtures.repos import final, git, make_calc_repo, write_replay


def cli(*args, cwd, state, timeout=120):
    env = {**os.environ, "GPTOSS_AGENT_STATE_DIR": str(state)}
    return subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def fake_session(state, repo, task, *, status="completed", name=None):
    """A log as the product writes it (header, a run_finished event)."""
    log = SessionLog.create(repo=str(repo), task=task, config={}, directory=state / "sessions")
    log.write("event", event={"type": "run_finished", "status": status, "steps": 1})
    log.close()
    if name:
        target = log.path.with_name(name)
        log.path.rename(target)
        return target
    return log.path


@pytest.fixture
def repos(tmp_path):
    return make_calc_repo(tmp_path / "alpha"), make_calc_repo(tmp_path / "beta")


def test_a_corrupt_line_is_skipped_with_file_and_line_and_the_listing_goes_on(tmp_path, repos):
    alpha, _ = repos
    state = tmp_path / "state"
    good = fake_session(state, alpha, "first task", name="20240101-000000-aaaaaa.jsonl")
    bad = fake_session(state, alpha, "second task", name="20240102-000000-bbbbbb.jsonl")
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([lines[0], '{"kind": 5}', "[1, 2]", "{not json", '{"kind": "event"}', lines[1]]) + "\n")
    done = cli("sessions", cwd=alpha, state=state)
    assert done.returncode == 0, done.stderr
    assert "first task" in done.stdout and "second task" in done.stdout
    for number in (2, 3, 4, 5):
        assert f"{bad} line {number}" in done.stderr
    assert "Traceback" not in done.stderr and good.stem in done.stdout


def test_a_log_with_a_broken_header_is_named_not_fatal(tmp_path, repos):
    alpha, _ = repos
    state = tmp_path / "state"
    fake_session(state, alpha, "fine", name="20240101-000000-aaaaaa.jsonl")
    broken = state / "sessions" / "20240103-000000-cccccc.jsonl"
    broken.write_text('{"kind": "header", "repo": 7}\n{"kind": "step"}\n')
    done = cli("sessions", cwd=alpha, state=state)
    assert done.returncode == 0 and "fine" in done.stdout
    assert str(broken) in done.stderr and "line 1" in done.stderr


def test_resume_of_a_damaged_log_says_it_is_damaged(tmp_path, repos, vocab_dir):
    alpha, _ = repos
    state = tmp_path / "state"
    path = fake_session(state, alpha, "task", name="20240101-000000-dddddd.jsonl")
    with open(path, "a") as handle:
        handle.write('{"kind": "segment", "segment": "user", "tokens": ["x"], "turn": 1}\n')
        handle.write('{"kind": "turn_finished", "turn": 1}\n')
    replay = write_replay(tmp_path / "replay.json", [final("ok")])
    done = cli("resume", "dddddd", "--backend", f"replay:{replay}", cwd=alpha, state=state)
    assert done.returncode == 2
    assert "damaged" in done.stderr and f"{path} line 3" in done.stderr
    broken = state / "sessions" / "20240104-000000-eeeeee.jsonl"
    broken.write_text("{]\n")
    done = cli("resume", "eeeeee", "--backend", f"replay:{replay}", cwd=alpha, state=state)
    assert done.returncode == 2 and "damaged" in done.stderr and "no session matches" not in done.stderr


def test_sessions_and_resume_last_are_scoped_to_the_current_repository(tmp_path, repos, vocab_dir):
    alpha, beta = repos
    state = tmp_path / "state"
    fake_session(state, alpha, "alpha's task", name="20240101-000000-aaaaaa.jsonl")
    fake_session(state, beta, "beta's newer task", name="20240105-000000-bbbbbb.jsonl")
    listed = cli("sessions", cwd=alpha, state=state)
    assert "alpha's task" in listed.stdout and "beta's newer task" not in listed.stdout
    everything = cli("sessions", "--all", cwd=alpha, state=state)
    assert "alpha's task" in everything.stdout and "beta's newer task" in everything.stdout
    replay = write_replay(tmp_path / "replay.json", [final("continued")])
    done = cli("resume", "--last", "--json", "--message", "go on", "--backend", f"replay:{replay}", cwd=alpha,
               state=state)
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout.splitlines()[0])
    assert started["type"] == "run_started" and started["session"] == "20240101-000000-aaaaaa"
    assert started["cwd"] == str(alpha)


def test_resume_never_runs_in_the_logs_repository_when_another_is_current(tmp_path, repos, vocab_dir):
    alpha, beta = repos
    state = tmp_path / "state"
    fake_session(state, alpha, "alpha's task", name="20240101-000000-aaaaaa.jsonl")
    replay = write_replay(tmp_path / "replay.json", [final("ok")])
    before = git(alpha, "status", "--porcelain")
    done = cli("resume", "aaaaaa", "--cwd", str(beta), "--backend", f"replay:{replay}", cwd=tmp_path, state=state)
    assert done.returncode == 2
    assert f"recorded in {alpha}" in done.stderr and f"--cwd {alpha}" in done.stderr
    assert git(alpha, "status", "--porcelain") == before


def test_a_forged_repository_in_a_log_header_cannot_point_resume_elsewhere(tmp_path, repos, vocab_dir):
    alpha, beta = repos
    state = tmp_path / "state"
    path = fake_session(state, alpha, "task", name="20240101-000000-ffffff.jsonl")
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["repo"] = str(beta)  # the log now claims beta
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    replay = write_replay(tmp_path / "replay.json", [final("ok")])
    done = cli("resume", "ffffff", "--backend", f"replay:{replay}", cwd=alpha, state=state)
    assert done.returncode == 2 and f"recorded in {beta}" in done.stderr


def test_a_last_line_cut_mid_write_is_not_damage(tmp_path, repos):
    alpha, _ = repos
    path = fake_session(tmp_path / "state", alpha, "task")
    with open(path, "a") as handle:
        handle.write('{"kind": "step", "t"')
    record = read_session(path)
    assert record.torn_line and not record.damaged and record.status == "completed"


def test_records_that_restore_would_trip_on_are_skipped(tmp_path, repos):
    alpha, _ = repos
    path = fake_session(tmp_path / "state", alpha, "task")
    with open(path, "a") as handle:
        for record in ({"kind": "segment", "segment": "user", "tokens": [1, 2], "turn": "1"},
                       {"kind": "segment", "segment": "user", "tokens": [1, 2], "turn": 1, "spans": [[1]]},
                       {"kind": "event", "event": {"type": "commit"}},
                       {"kind": "event", "event": {"type": "plan", "steps": "all"}},
                       {"kind": "header", "repo": "/", "task": "second header"}):
            handle.write(json.dumps(record) + "\n")
    record = read_session(path)
    assert len(record.warnings) == 5
    assert all(r["kind"] == "event" and r["event"]["type"] == "run_finished" for r in record.records)


def test_the_status_of_a_log_without_a_run_finished_is_interrupted_not_completed(tmp_path, repos):
    alpha, _ = repos
    log = SessionLog.create(repo=str(alpha), task="t", config={}, directory=tmp_path / "state" / "sessions")
    log.close()
    assert read_session(log.path).status == "interrupted"


def test_session_logs_are_private(tmp_path, repos):
    alpha, _ = repos
    path = fake_session(tmp_path / "state", alpha, "task")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_session_log_planted_as_a_link_is_not_read(tmp_path, repos):
    alpha, _ = repos
    state = tmp_path / "state"
    real = fake_session(state, alpha, "task", name="20240101-000000-aaaaaa.jsonl")
    link = state / "sessions" / "20240102-000000-bbbbbb.jsonl"
    link.symlink_to(real)
    found, problems = scan_sessions(state / "sessions")
    assert [r.id for r in found] == ["20240101-000000-aaaaaa"]
    assert any("not a regular file" in p for p in problems)
    with pytest.raises(Exception, match="not a regular file"):
        find_session("bbbbbb", state / "sessions")


def test_a_hostile_task_or_repository_name_in_a_log_reaches_the_terminal_escaped(tmp_path, repos):
    alpha, _ = repos
    state = tmp_path / "state"
    fake_session(state, alpha, "title\x1b]0;pwned\x07\x1b[2J\nsecond line")
    done = cli("sessions", cwd=alpha, state=state)
    assert done.returncode == 0 and "\x1b" not in done.stdout and "\x07" not in done.stdout
    rows = [line for line in done.stdout.splitlines() if "title" in line]
    assert len(rows) == 1 and "second line" in rows[0]


def test_finding_a_session_for_another_repository_is_refused_not_followed(tmp_path, repos):
    """What the TUI's /resume relies on: an id from another repository, or a damaged log, is an error."""
    from gptoss_agent.agent.session import SessionError, WrongRepository

    alpha, beta = repos
    state = tmp_path / "state"
    fake_session(state, alpha, "alpha's", name="20240101-000000-aaaaaa.jsonl")
    with pytest.raises(WrongRepository, match=f"recorded in {alpha}"):
        find_session("aaaaaa", state / "sessions", repo=str(beta))
    with pytest.raises(SessionError, match="no sessions yet in"):
        find_session(None, state / "sessions", repo=str(beta))
    assert find_session(None, state / "sessions", repo=str(alpha)).id == "20240101-000000-aaaaaa"
