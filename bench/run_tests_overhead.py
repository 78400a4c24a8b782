"""run_tests (sandboxed pytest + JUnit report) vs bare `pytest -q` on the same project, same run.
Goal: ratio ≤ 1.1. Also the tokens the model reads per failing test (goal: under 300 for an assertion failure)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import canonical_vocab_dir, median


def main(runs: int = 7):
    from tests.fixtures.repos import make_calc_repo
    from tools.context import ToolContext
    from tools.sandbox import Sandbox
    from tools.tests import run_tests

    repo = make_calc_repo(Path(tempfile.mkdtemp()) / "project")
    for i in range(30):  # a suite of a realistic size: 30 modules, 10 tests each
        body = "".join(f"def test_{j}():\n    assert sum(range({j})) == {j * (j - 1) // 2}\n\n" for j in range(10))
        (repo / "tests" / f"test_mod{i}.py").write_text(body)
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo))
    bare, tool = [], []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo, capture_output=True)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = run_tests.function(ctx)
        tool.append(time.perf_counter() - started)
    print(f"bare pytest -q {median(bare):.3f}s | run_tests {median(tool):.3f}s "
          f"({result.data['passed']} passed, {result.data['failed']} failed) | ratio {median(tool) / median(bare):.3f} "
          "(goal <= 1.1)")
    from agent.harmony import HarmonyCodec

    codec = HarmonyCodec.load(canonical_vocab_dir())
    failing = max(result.data["failed"] + result.data["errors"], 1)
    print(f"failure report: {codec.count(result.output)} tokens for {failing} failing test(s) "
          f"= {codec.count(result.output) / failing:.0f} tokens per failing test (goal < 300)")


if __name__ == "__main__":
    main()
