"""Hardened host git vs plain git on the same repository, same run: `status` (the agent's most frequent
call), the per-command attribution snapshot, and a commit of one file vs `git commit -q`."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from _common import median


def _timed(action, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return median(samples)


def main(runs: int = 15) -> None:
    from tests.fixtures.repos import make_calc_repo
    from gptoss_agent.tools import attribution, git as git_tools
    from gptoss_agent.tools.context import ToolContext

    repo = make_calc_repo(Path(tempfile.mkdtemp()) / "project")
    for i in range(200):  # a repository of a modest size: 200 tracked modules, 5 of them edited
        (repo / f"mod{i}.py").write_text(f"VALUE = {i}\n" * 50)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "modules"], cwd=repo, check=True)
    for i in range(5):
        (repo / f"mod{i}.py").write_text("edited\n")

    plain = _timed(lambda: subprocess.run(["git", "status", "--porcelain", "-z"], cwd=repo, capture_output=True), runs)
    hardened = _timed(lambda: git_tools.dirty_paths(repo), runs)
    snapshot = _timed(lambda: attribution.take(repo), runs)

    def plain_commit():
        (repo / "calc.py").write_text(f"x = {time.perf_counter()}\n")
        subprocess.run(["git", "commit", "-qm", "plain", "--", "calc.py"], cwd=repo, check=True)

    def agent_commit():
        ctx = ToolContext(workspace=repo)
        before = (repo / "calc.py").read_bytes()
        after = f"y = {time.perf_counter()}\n".encode()
        (repo / "calc.py").write_bytes(after)
        ctx.record_write("calc.py", before, after)
        git_tools.commit_changes(ctx, "agent")

    plain_c = _timed(plain_commit, runs)
    agent_c = _timed(agent_commit, runs)
    print(f"status: plain git {plain * 1000:.1f} ms | hardened {hardened * 1000:.1f} ms | ratio {hardened / plain:.2f}")
    print(f"attribution snapshot (status + changed files): {snapshot * 1000:.1f} ms per snapshot, two per command")
    print(f"commit of one file: git commit {plain_c * 1000:.1f} ms | agent commit {agent_c * 1000:.1f} ms | "
          f"ratio {agent_c / plain_c:.2f}")


if __name__ == "__main__":
    main()
