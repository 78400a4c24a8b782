"""What the sandbox adds per command: `true` and `python3 -c pass` run plainly vs through the
container.exec tool (bubblewrap + seccomp, limits, capture), same run, medians of many runs.
Goals: < 10 ms added per command end to end; ≤ 1.1× on `python3 -c pass`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import timed_median




def main(runs: int = 40):
    from tools.context import ToolContext
    from tools.sandbox import Sandbox
    from tools.shell import exec_command

    workspace = Path(tempfile.mkdtemp())
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    for mode in ("bwrap", "landlock"):
        sandbox = Sandbox(workspace, mode=mode)
        if sandbox.mechanism != mode:
            print(f"{mode}: unavailable ({sandbox.report.reason})")
            continue
        ctx = ToolContext(workspace=workspace, sandbox=sandbox)
        for argv in (["true"], ["python3", "-c", "pass"]):
            plain = timed_median(lambda: subprocess.run(argv, cwd=workspace, check=True), runs)
            tool = timed_median(lambda: exec_command.function(ctx, cmd=argv), runs)
            print(f"{mode:<9} {' '.join(argv):<18} plain {plain * 1000:6.1f} ms | via container.exec "
                  f"{tool * 1000:6.1f} ms | +{(tool - plain) * 1000:5.1f} ms, ratio {tool / plain:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
