"""What the sandbox adds per command, for bubblewrap and for the Landlock fallback.

Measured in the same run, medians of many runs:
- `true` spawned plainly (the baseline) vs `true` through Sandbox.run and
  through the container.exec tool (namespaces, seccomp, masks, limits,
  capture, leftover sweep);
- for Landlock, also a bare `python3 -I -c pass`: the launcher is a Python
  process, so that is the floor the fallback cannot go below.
Goal: sandboxed `true` at most +20 ms over a plain spawn.

Wall time inflates with the machine's load (a shared CI box), so each line
also gives the mean CPU time the spawn costs (this process and its children, user +
system), which load barely changes: on a busy machine, judge by that.
Run: python3 bench/sandbox_overhead.py [RUNS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import timed_median


def cpu_mean(fn, runs: int) -> float:
    """Mean CPU seconds (this process and its children, user + system) one call of `fn` costs
    (a mean over all runs: the clock ticks in 10 ms steps, too coarse for one call)."""
    before = os.times()
    for _ in range(runs):
        fn()
    after = os.times()
    return (sum(after[:4]) - sum(before[:4])) / runs


def main(runs: int = 40) -> None:
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.sandbox import Sandbox
    from gptoss_agent.tools.shell import exec_command

    workspace = Path(tempfile.mkdtemp())
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    plain = timed_median(lambda: subprocess.run(["true"], cwd=workspace, check=True), runs)
    python_floor = timed_median(lambda: subprocess.run([sys.executable, "-I", "-c", "pass"], check=True), runs)
    plain_cpu = cpu_mean(lambda: subprocess.run(["true"], cwd=workspace, check=True), runs)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs")
    python_cpu = cpu_mean(lambda: subprocess.run([sys.executable, "-I", "-c", "pass"], check=True), runs)
    print(f"plain spawn of true: {plain * 1000:.1f} ms wall, {plain_cpu * 1000:.1f} ms CPU; "
          f"bare python3 -I -c pass: {python_floor * 1000:.1f} ms wall, {python_cpu * 1000:.1f} ms CPU")
    for mode in ("bwrap", "landlock"):
        sandbox = Sandbox(workspace, mode=mode)
        if sandbox.mechanism != mode:
            print(f"{mode}: unavailable ({sandbox.report.reason})")
            continue
        ctx = ToolContext(workspace=workspace, sandbox=sandbox)
        sandbox.run(["true"])  # warm the probes and caches once
        direct = timed_median(lambda: sandbox.run(["true"]), runs)
        tool = timed_median(lambda: exec_command.function(ctx, cmd=["true"]), runs)
        direct_cpu = cpu_mean(lambda: sandbox.run(["true"]), runs)
        print(f"{mode:<9} true: Sandbox.run {direct * 1000:6.1f} ms wall (+{(direct - plain) * 1000:5.1f} ms, "
              f"ratio {direct / plain:5.2f}), {direct_cpu * 1000:5.1f} ms CPU (+{(direct_cpu - plain_cpu) * 1000:5.1f} ms)"
              f" | container.exec {tool * 1000:6.1f} ms wall (+{(tool - plain) * 1000:5.1f} ms)"
              + (f" | over the python floor +{(direct - python_floor) * 1000:5.1f} ms" if mode == "landlock" else ""))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
