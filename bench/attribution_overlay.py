"""Per-command cost of attribution on a 20,000-file work tree, same run, same sandbox (bwrap):

- bare: the sandboxed command with no attribution at all (the floor);
- snapshots: today's fallback, a walk and `git status` of the whole tree before and after the command;
- overlay: the command on a copy-on-write layer, then only that layer read and carried (exact).

Each command writes one tracked file, so both modes record one change. Prints medians and ratios.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median

FILES = 20_000


def make_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    for folder in range(FILES // 100):
        sub = root / f"pkg{folder:03d}"
        sub.mkdir()
        for index in range(100):
            (sub / f"mod{index:03d}.py").write_text(f"VALUE = {folder * 100 + index}\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=b@e", "-c", "user.name=b", "commit", "-qm", "tree"], cwd=root, check=True)
    return root


def per_command(ctx, *, record: bool, runs: int) -> float:
    from gptoss_agent.tools import attribution

    samples = []
    for run in range(runs):
        command = ["sh", "-c", f"echo 'VALUE = {run}' > pkg000/mod000.py"]
        started = time.perf_counter()
        if record:
            with attribution.recording(ctx):
                result = ctx.sandbox.run(command, timeout_s=60)
        else:
            result = ctx.sandbox.run(command, timeout_s=60)
        samples.append(time.perf_counter() - started)
        assert result.exit_code == 0, result.output
    return median(samples)


def main(runs: int = 7) -> int:
    folder = Path(tempfile.mkdtemp())
    try:
        return compare(make_tree(folder / "project"), runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compare(repo: Path, runs: int) -> int:
    from gptoss_agent.tools import attribution
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.sandbox import Sandbox

    exact = Sandbox(repo, mode="bwrap")
    if exact.mechanism != "bwrap" or not exact.exact_attribution:
        print(f"no bwrap overlay here: {[p.detail for p in exact.properties() if 'exact' in p.name]}")
        return 1
    plain = Sandbox(repo, mode="bwrap")
    plain._overlay_off = "turned off for the comparison"
    contexts = {name: ToolContext(workspace=repo, sandbox=box) for name, box in (("overlay", exact),
                                                                                   ("snapshots", plain))}
    for context in contexts.values():
        attribution.start_session(context)
    per_command(contexts["overlay"], record=True, runs=1)  # warm caches (probe, git, snapshot cache)
    per_command(contexts["snapshots"], record=True, runs=1)
    bare = per_command(contexts["snapshots"], record=False, runs=runs)
    snapshots = per_command(contexts["snapshots"], record=True, runs=runs)
    overlay = per_command(contexts["overlay"], record=True, runs=runs)
    assert list(contexts["overlay"].changes) == ["pkg000/mod000.py"]
    print(f"{FILES:,} files, one file written per command, median of {runs}:")
    print(f"  bare sandboxed command:      {bare * 1000:7.1f} ms")
    print(f"  with snapshot attribution:   {snapshots * 1000:7.1f} ms  (overhead {(snapshots - bare) * 1000:6.1f} ms)")
    print(f"  with overlay (exact):        {overlay * 1000:7.1f} ms  (overhead {(overlay - bare) * 1000:6.1f} ms)")
    print(f"  overlay / snapshots: {overlay / snapshots:.2f}   overhead ratio: "
          f"{(overlay - bare) / max(snapshots - bare, 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
