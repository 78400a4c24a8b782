"""A stand-in agent for the adversarial tests: it runs one command in the sandbox and reports.

Run as `python3 sandbox_agent.py WORKSPACE MECHANISM COMMAND_JSON`. It holds a
secret in its own environment (the test sets it), runs the command (which gets
this process's pid as $AGENT_PID), then prints one JSON line saying whether it is
still alive and what the command printed. A test that needs the agent to be
killed, traced or read from uses this process as the target, so a sandbox
failure kills this stand-in rather than pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_agent(workspace: Path, mechanism: str, argv: list[str], *, env: dict[str, str] | None = None,
                timeout_s: float = 20) -> subprocess.Popen:
    """Start the stand-in agent; its first output line holds its pid."""
    environment = dict(os.environ, AGENT_TIMEOUT=str(timeout_s), **(env or {}))
    return subprocess.Popen([sys.executable, __file__, str(workspace), mechanism, json.dumps(argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def run_agent(workspace: Path, mechanism: str, argv: list[str], *, env: dict[str, str] | None = None,
              timeout_s: float = 20) -> dict:
    """Run one command through the stand-in agent; what it reported ({"alive": False} if it died)."""
    agent = start_agent(workspace, mechanism, argv, env=env, timeout_s=timeout_s)
    out, err = agent.communicate(timeout=timeout_s + 30)
    report = {"alive": False, "output": "", "stderr": err, "returncode": agent.returncode}
    for line in out.splitlines():
        if line.startswith("{"):
            report.update(json.loads(line))
    return report


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker` (what a test looks for after a sweep)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from gptoss_agent.tools.sandbox import Limits, Sandbox

    workspace, mechanism, command = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sandbox = Sandbox(Path(workspace), mode=mechanism, limits=Limits(timeout_s=float(os.environ.get("AGENT_TIMEOUT", "20"))))
    print(json.dumps({"agent_pid": os.getpid()}), flush=True)
    before = _own_state()
    result = sandbox.run(command, env={"AGENT_PID": str(os.getpid())})
    after = dict(_own_state(), **{f"{k}_before": v for k, v in before.items()})
    print(json.dumps({"alive": True, "exit_code": result.exit_code, "output": result.output, "agent_after": after}),
          flush=True)


def _own_state() -> dict:
    """What a command must not change in the agent: its limits, niceness, CPUs and scheduling policy."""
    import resource

    return {"nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "as": list(resource.getrlimit(resource.RLIMIT_AS)), "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "cpus": sorted(os.sched_getaffinity(0)), "policy": os.sched_getscheduler(0)}


if __name__ == "__main__":
    main()
