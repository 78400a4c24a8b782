"""The Landlock fallback with no namespaces at all ("weak mode"), reproduced for real.

The agent runs inside a user namespace that may create no further one
(sandbox_weak_mode.py), so the launcher gets no PID namespace: a command that
detaches with `setsid env -i` (new session, no run id) used to outlive its
call and keep rewriting `.git/config` while host git ran. The agent is now a
child subreaper and kills every stray child at the end of each call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
from sandbox_agent import processes_with as _processes_with  # noqa: E402 (beside this file, as in test_sandbox_processes)
ROOT = HERE.parents[1]
WEAK = [sys.executable, str(HERE / "sandbox_weak_mode.py")]


def _kill(marker: str) -> None:
    for pid in _processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _weak_agent(workspace: Path, script: str) -> dict:
    """Run `script` (Python, with `Sandbox`, `Limits`, `workspace` in scope) as the agent in weak mode;
    the JSON it prints last."""
    program = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, {root!r})
        from pathlib import Path
        from gptoss_agent.tools.sandbox import Limits, Sandbox, landlock_isolation
        workspace = Path({workspace!r})
    """).format(root=str(ROOT), workspace=str(workspace)) + textwrap.dedent(script)
    done = subprocess.run(WEAK + [sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    if done.returncode == 125:
        pytest.skip(done.stderr.strip())
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, (done.stdout, done.stderr)
    return json.loads(lines[-1])


@pytest.fixture
def weak_repo(sandbox_repo: Path, mechanism: str) -> Path:
    if mechanism != "landlock":
        pytest.skip("weak mode is a Landlock fallback state")
    return sandbox_repo


def _marker() -> str:
    return f"{800 + os.getpid() % 97}.{uuid.uuid4().int % 10**6:06d}"


def test_weak_mode_really_has_no_pid_namespace(weak_repo):
    report = _weak_agent(weak_repo, """
        result = Sandbox(workspace, mode="landlock").run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
        print(json.dumps({"isolation": landlock_isolation(), "output": result.output}))
    """)
    assert report["isolation"]["pid_namespace"] is False
    assert int(report["output"].split()[0]) > 5  # the host's processes are in view: no PID namespace


def test_a_setsid_env_i_orphan_does_not_outlive_the_call(weak_repo):
    marker = _marker()
    try:
        report = _weak_agent(weak_repo, f"""
            import os, time
            sandbox = Sandbox(workspace, mode="landlock", limits=Limits(timeout_s=20))
            result = sandbox.run(["sh", "-c", "(setsid env -i sleep {marker} > /dev/null 2>&1 < /dev/null &); "
                                              "(setsid nohup env -i sh -c 'sleep {marker}' >/dev/null 2>&1 &); echo ok"])
            alive = []
            for entry in os.listdir("/proc"):
                try:
                    if entry.isdigit() and int(entry) != os.getpid() and "{marker}" in open(f"/proc/{{entry}}/cmdline").read().replace(chr(0), " "):
                        alive.append(open(f"/proc/{{entry}}/stat").read() + " agent=%d" % os.getpid())
                except OSError:
                    pass
            print(json.dumps({{"output": result.output, "alive": alive}}))
        """)
        assert "ok" in report["output"]
        assert report["alive"] == [], "a detached process outlived its sandbox call"
    finally:
        _kill(marker)


def test_a_detached_racer_cannot_keep_flipping_dot_git_config(weak_repo):
    config = weak_repo / ".git" / "config"
    clean = config.read_bytes()
    racer = ("import os, time\n"
             "clean = open('.git/config', 'rb').read()\n"
             "evil = clean + b'\\n[filter \"z\"]\\n\\tclean = touch /tmp/gptoss-weak-raced\\n'\n"
             "end = time.time() + 30\ni = 0\n"
             "while time.time() < end:\n"
             "    open('.git/.cfgtmp', 'wb').write(evil if i % 2 else clean)\n"
             "    os.replace('.git/.cfgtmp', '.git/config')\n    i += 1\n")
    (weak_repo / "race.py").write_text(racer)
    report = _weak_agent(weak_repo, """
        sandbox = Sandbox(workspace, mode="landlock", limits=Limits(timeout_s=20))
        result = sandbox.run(["sh", "-c", "(setsid env -i python3 race.py > /dev/null 2>&1 < /dev/null &); sleep 0.3; "
                                          "echo started"])
        print(json.dumps({"output": result.output, "notes": list(result.notes)}))
    """)
    assert "started" in report["output"]
    for _ in range(10):  # a surviving racer would flip the file within microseconds
        assert config.read_bytes() == clean
        time.sleep(0.05)
    assert not config.is_symlink()
    assert not _processes_with("race.py")


def test_concurrent_calls_do_not_kill_each_others_commands(weak_repo):
    report = _weak_agent(weak_repo, """
        import threading
        sandbox = Sandbox(workspace, mode="landlock", limits=Limits(timeout_s=20))
        results = {}
        def slow():
            results["slow"] = sandbox.run(["sh", "-c", "sleep 1.5; echo slow-finished"])
        thread = threading.Thread(target=slow)
        thread.start()
        for i in range(5):
            results[i] = sandbox.run(["sh", "-c", "(setsid sleep 30 &); echo quick"])
        thread.join()
        print(json.dumps({"slow": results["slow"].output, "code": results["slow"].exit_code,
                          "quick": [results[i].ok for i in range(5)]}))
    """)
    assert report["code"] == 0 and "slow-finished" in report["slow"], report
    assert report["quick"] == [True] * 5


def test_a_command_cannot_change_the_visible_agents_limits_priority_or_cpus(weak_repo):
    report = _weak_agent(weak_repo, """
        import os, resource
        def state():
            return [resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0),
                    sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0)]
        before = state()
        pid = os.getpid()
        result = Sandbox(workspace, mode="landlock").run(["sh", "-c",
            f"prlimit --pid {pid} --nofile=3:3; renice -n 19 -p {pid}; renice -n 19 -u $(id -u); "
            f"taskset -p -c 0 {pid}; chrt -i -p 0 {pid}; echo done"])
        print(json.dumps({"same": state() == before, "before": before, "after": state(), "output": result.output}))
    """)
    assert "done" in report["output"]
    assert report["same"], report


def test_the_agents_own_children_survive_the_sweep(weak_repo):
    report = _weak_agent(weak_repo, """
        import subprocess
        from gptoss_agent.tools.sandbox import agent_children
        with agent_children.spawning() as register:  # how host git registers its processes
            registered = subprocess.Popen(["sleep", "30"], start_new_session=True)
            register(registered.pid)
        same_session = subprocess.Popen(["sleep", "30"])  # a helper the agent starts in its own session
        result = Sandbox(workspace, mode="landlock").run(["sh", "-c", "(setsid sleep 30 &); echo ran"])
        alive = [p.poll() is None for p in (registered, same_session)]
        for p in (registered, same_session):
            p.kill()
            p.wait()
        print(json.dumps({"alive": alive, "output": result.output}))
    """)
    assert "ran" in report["output"]
    assert report["alive"] == [True, True]
