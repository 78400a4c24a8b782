"""Process isolation: a command cannot touch the agent, and nothing it starts outlives the call.

The agent in these tests is a separate stand-in process (sandbox_agent.py),
so a sandbox that fails lets the stand-in die, not pytest. The last tests
check the host-side `.git` restore the Landlock fallback relies on where it
cannot make `.git` read-only: it must never follow a link the command planted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sandbox_agent import processes_with as _processes_with, run_agent, start_agent

from gptoss_agent.tools import git_snapshot
from gptoss_agent.tools.sandbox import landlock_isolation


def _wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _marker() -> str:
    return f"{900 + os.getpid() % 97}.{uuid.uuid4().int % 10**6:06d}"  # a unique `sleep` argument


def _needs_pid_namespace(mechanism: str) -> None:
    if mechanism == "landlock" and not landlock_isolation()["fresh_proc"]:
        pytest.skip("no PID/mount namespace for the Landlock fallback here (doctor reports it)")


def test_a_background_process_does_not_outlive_the_call(make_sandbox):
    marker = _marker()
    result = make_sandbox().run(["sh", "-c", f"sleep {marker} & echo started"])
    assert result.ok and "started" in result.output
    assert _wait_until(lambda: not _processes_with(f"sleep {marker}"), 3)


def test_a_detached_daemon_does_not_outlive_the_call(make_sandbox):
    marker = _marker()
    result = make_sandbox().run(["sh", "-c", f"setsid sh -c 'sleep {marker}' > /dev/null 2>&1 < /dev/null & "
                                             f"nohup sleep {marker} > /dev/null 2>&1 & echo started"])
    assert result.ok
    assert _wait_until(lambda: not _processes_with(f"sleep {marker}"), 3)


def test_a_delayed_writer_cannot_change_dot_git_after_the_call(make_sandbox, sandbox_repo):
    config = sandbox_repo / ".git" / "config"
    before = config.read_bytes()
    make_sandbox().run(["sh", "-c", "(sleep 0.7; printf '[core]\\n\\tfsmonitor = touch /tmp/x\\n' >> .git/config; "
                                    "ln -sf ../calc.py .git/config) > /dev/null 2>&1 & echo started"])
    time.sleep(1.5)
    assert config.read_bytes() == before and not config.is_symlink()


def test_commands_die_with_the_agent(sandbox_repo, mechanism):
    marker = _marker()
    agent = start_agent(sandbox_repo, mechanism, ["sh", "-c", f"sleep {marker}"], timeout_s=60)
    try:
        assert _wait_until(lambda: bool(_processes_with(f"sleep {marker}")), 15), "the command never started"
        agent.kill()
        agent.wait()
        assert _wait_until(lambda: not _processes_with(f"sleep {marker}"), 5)
    finally:
        for pid in _processes_with(f"sleep {marker}"):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["kill -9 $AGENT_PID", "kill -9 -1", "kill -STOP $AGENT_PID",
                                 "kill -9 -$AGENT_PID", "pkill -9 -f sandbox_agent"])
def test_a_command_cannot_signal_the_agent(sandbox_repo, mechanism, how):
    report = run_agent(sandbox_repo, mechanism, ["sh", "-c", f"{how}; echo sent"])
    assert report["alive"], report


def test_a_command_cannot_trace_the_agent(sandbox_repo, mechanism):
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "pid = int(os.environ['AGENT_PID'])\n"
            "print('ATTACH', libc.ptrace(16, pid, 0, 0), 'SEIZE', libc.ptrace(0x4206, pid, 0, 0))")
    report = run_agent(sandbox_repo, mechanism, ["python3", "-c", code])
    assert report["alive"] and "ATTACH -1 SEIZE -1" in report["output"]


def test_a_command_cannot_read_the_agents_memory_or_files(sandbox_repo, mechanism):
    secret = f"sk-mem-{uuid.uuid4().hex}"
    code = ("import os\npid = os.environ['AGENT_PID']\n"
            "for path in (f'/proc/{pid}/mem', f'/proc/{pid}/maps', f'/proc/{pid}/cmdline'):\n"
            "    try:\n        print(path, open(path, 'rb').read(4096)[:200])\n"
            "    except OSError as e:\n        print(path, 'refused', e.errno)\n"
            "try:\n    print(os.listdir(f'/proc/{pid}/fd'))\nexcept OSError as e:\n    print('fd refused')")
    report = run_agent(sandbox_repo, mechanism, ["python3", "-c", code], env={"ANTHROPIC_API_KEY": secret})
    assert report["alive"] and secret not in report["output"] and "sandbox_agent" not in report["output"]


def test_host_processes_are_invisible(make_sandbox, mechanism):
    _needs_pid_namespace(mechanism)
    result = make_sandbox().run(["sh", "-c", "ls /proc | grep -c '^[0-9]'; tr '\\0' ' ' < /proc/1/cmdline; echo"])
    count = int(result.output.split()[0])
    host_init = Path("/proc/1/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    assert count < 10, result.output  # the command's own few processes, not the host's hundreds
    assert host_init not in result.output.splitlines()[1]


def test_the_pytest_process_is_not_found_by_pid(make_sandbox, mechanism):
    _needs_pid_namespace(mechanism)
    result = make_sandbox().run(["sh", "-c", f"cat /proc/{os.getpid()}/cmdline 2>/dev/null | tr '\\0' ' '; echo END"])
    assert "pytest" not in result.output


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"])


def test_the_seccomp_guard_refuses_signals_to_protected_pids():
    """Where no PID namespace hides the agent, the filter itself must refuse to signal it (real kernel)."""
    protected, other = _sleeper(), _sleeper()
    try:
        code = ("import os, sys\nsys.path.insert(0, sys.argv[1])\nfrom gptoss_agent.tools.sandbox.seccomp import build_filter, install\n"
                f"install(build_filter(deny_all_sockets=True, protected_pids=[{protected.pid}]))\n"
                "for target in (" + f"{protected.pid}, -1, -{protected.pid}" + "):\n"
                "    try:\n        os.kill(target, 9); print('KILLED', target)\n"
                "    except OSError as e:\n        print('REFUSED', target, e.errno)\n"
                f"os.kill({other.pid}, 9); print('OTHER KILLED')")
        done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parents[2])],
                              capture_output=True, text=True, timeout=20)
        assert "KILLED" not in done.stdout.replace("OTHER KILLED", ""), done.stdout + done.stderr
        assert "OTHER KILLED" in done.stdout  # the filter refuses the agent only, not ordinary process control
        assert protected.poll() is None
    finally:
        for process in (protected, other):
            process.kill()
            process.wait()


# ------------------------------------------------------------ the host-side .git restore


def test_restore_replaces_a_config_symlink_with_the_original_file(sandbox_repo):
    git = sandbox_repo / ".git"
    before = git_snapshot.take(sandbox_repo)
    original = (git / "config").read_bytes()
    planted = sandbox_repo / "calc.py"
    planted_bytes = planted.read_bytes()
    (git / "config").unlink()
    os.symlink("../calc.py", git / "config")
    changed = git_snapshot.restore(sandbox_repo, before)
    assert changed == ["config"]
    assert not (git / "config").is_symlink() and (git / "config").read_bytes() == original
    assert planted.read_bytes() == planted_bytes  # restored in place, never written through the link


def test_restore_never_writes_through_a_linked_config(sandbox_repo, tmp_path):
    git = sandbox_repo / ".git"
    before = git_snapshot.take(sandbox_repo)
    outside = tmp_path / "outside.txt"
    outside.write_text("outside stays")
    (git / "config").unlink()
    os.symlink(outside, git / "config")
    git_snapshot.restore(sandbox_repo, before)
    assert outside.read_text() == "outside stays" and not (git / "config").is_symlink()


def test_restore_rebuilds_a_hooks_folder_swapped_for_a_link(sandbox_repo):
    git = sandbox_repo / ".git"
    before = git_snapshot.take(sandbox_repo)
    evil = sandbox_repo / "evil-hooks"
    evil.mkdir()
    (evil / "pre-commit").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    (evil / "pre-commit").chmod(0o755)
    hooks_before = sorted(p.name for p in (git / "hooks").iterdir())
    os.rename(git / "hooks", sandbox_repo / "old-hooks")
    os.symlink("../evil-hooks", git / "hooks")
    git_snapshot.restore(sandbox_repo, before)
    assert (git / "hooks").is_dir() and not (git / "hooks").is_symlink()
    assert sorted(p.name for p in (git / "hooks").iterdir()) == hooks_before
    assert (evil / "pre-commit").exists()  # the work tree is the model's; only .git is put back


def test_restore_removes_a_planted_hook_and_info_exclude_change(sandbox_repo):
    git = sandbox_repo / ".git"
    before = git_snapshot.take(sandbox_repo)
    (git / "hooks" / "post-checkout").write_text("#!/bin/sh\nid\n")
    exclude = git / "info" / "exclude"
    exclude_before = exclude.read_bytes() if exclude.exists() else None
    (git / "info").mkdir(exist_ok=True)
    exclude.write_text("*\n")
    changed = git_snapshot.restore(sandbox_repo, before)
    assert "hooks/post-checkout" in changed and not (git / "hooks" / "post-checkout").exists()
    assert (exclude.read_bytes() if exclude.exists() else None) == exclude_before


def test_a_dot_git_replaced_by_a_pointer_is_reported(sandbox_repo):
    before = git_snapshot.take(sandbox_repo)
    os.rename(sandbox_repo / ".git", sandbox_repo / ".realgit")
    (sandbox_repo / ".git").write_text("gitdir: .realgit\n")
    assert git_snapshot.restore(sandbox_repo, before) == [".git"]


# ------------------------------------------------------------ the fallback without namespaces


_UNPRIVILEGED = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"] if os.getuid() == 0 else []


def _victim(undumpable: bool, secret: str) -> subprocess.Popen:
    """A process holding `secret` in its environment, made non-dumpable the way the sandbox does it."""
    code = ("import sys, time\nsys.path.insert(0, sys.argv[1])\nfrom gptoss_agent.tools.sandbox.fallback import make_undumpable as _make_undumpable\n"
            + ("_make_undumpable()\n" if undumpable else "") + "print('ready', flush=True)\ntime.sleep(30)")
    # As root, the victim drops its capabilities too: otherwise a capability-less reader is refused for
    # that reason alone (the commoncap rule), and the control below could not show anything.
    victim = subprocess.Popen(_UNPRIVILEGED + [sys.executable, "-c", code, str(Path(__file__).resolve().parents[2])],
                              env=dict(os.environ, OPENAI_API_KEY=secret), stdout=subprocess.PIPE, text=True)
    assert victim.stdout.readline().strip() == "ready"
    return victim


def _read_environ_without_privilege(pid: int) -> str:
    """Read /proc/PID/environ as an ordinary process of the same user would (root without capabilities)."""
    done = subprocess.run(_UNPRIVILEGED + ["cat", f"/proc/{pid}/environ"], capture_output=True)
    return done.stdout.decode(errors="replace")


@pytest.mark.parametrize("undumpable", [True, False], ids=["non-dumpable agent", "control: ordinary process"])
def test_a_non_dumpable_agent_keeps_its_environment_from_same_user_processes(undumpable):
    """Where the fallback has no fresh /proc, the agent makes itself non-dumpable: its environ is then
    unreadable to a same-user process with no capabilities (the control shows the test can fail)."""
    secret = f"sk-undumpable-{uuid.uuid4().hex}"
    victim = _victim(undumpable, secret)
    try:
        leaked = secret in _read_environ_without_privilege(victim.pid)
    finally:
        victim.kill()
        victim.wait()
    assert leaked is (not undumpable)
