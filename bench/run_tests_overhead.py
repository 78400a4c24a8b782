"""run_tests vs the same runner run directly, measured in the same run, and what a failure report costs.

1. Time: run_tests (sandbox, JUnit report or summary parsing) ÷ the runner run directly on the same project,
   medians of a few runs each, interleaved. Goal: ≤ 1.1. Projects: this repository's own unit suite (a real
   project's suite), a 300-test synthetic pytest suite, and every shape of tests/e2e/test_project_shapes.py
   whose toolchain is here (unittest, doctests, go test -json, cargo test, node --test).
2. Tokens: the report the model reads, counted with the real o200k tokenizer, per failing test, for each
   shape's failures (assertion failures in the test, exceptions raised in the code, a mock's assertion, a
   doctest, a Go panic, a Rust assert_eq!, a node assertion). Goal: under 300 for a typical assertion failure.

Run: python bench/run_tests_overhead.py [runs]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, canonical_vocab_dir, median

DIRECT = {  # what a developer types for each runner (the same runner run_tests detects, without the sandbox)
    "pytest": lambda python: [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
    "unittest": lambda python: [python, "-m", "unittest", "discover", "-v", "-s", "tests"],
    "go": lambda python: ["go", "test", "-json", "./..."],
    "cargo": lambda python: ["cargo", "test", "--no-fail-fast"],
    "npm": lambda python: ["npm", "test", "--silent"],
}


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def compare(name: str, repo: Path, direct: list[str], runs: int, paths: list[str] | None = None) -> dict:
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.sandbox import Sandbox
    from gptoss_agent.tools.tests import run_tests

    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo))
    env = {**os.environ, "GOPROXY": "off", "CARGO_NET_OFFLINE": "true"}
    run_direct = lambda: subprocess.run(direct + (paths or []), cwd=repo, capture_output=True, env=env)  # noqa: E731
    run_direct(), run_tests.function(ctx, paths=paths)  # warm: compiled test binaries, file caches
    bare, tool = [], []
    for _ in range(runs):
        bare.append(timed(run_direct))
        started = time.perf_counter()
        outcome = run_tests.function(ctx, paths=paths)
        tool.append(time.perf_counter() - started)
    print(f"{name:<22} direct {median(bare):6.2f}s | run_tests {median(tool):6.2f}s | ratio "
          f"{median(tool) / median(bare):.2f} (goal <= 1.1) | {outcome.data['passed']} passed, "
          f"{outcome.data['failed'] + outcome.data['errors']} failing")
    return {"output": outcome.output, "failing": outcome.data["failed"] + outcome.data["errors"]}


def synthetic_suite(folder: Path) -> Path:
    from tests.fixtures.repos import make_calc_repo

    repo = make_calc_repo(folder / "synthetic")
    for i in range(30):  # 30 modules, 10 tests each
        body = "".join(f"def test_{j}():\n    assert sum(range({j})) == {j * (j - 1) // 2}\n\n" for j in range(10))
        (repo / "tests" / f"test_mod{i}.py").write_text(body)
    return repo


def main(runs: int = 3) -> None:
    from gptoss_agent.agent.model.harmony import HarmonyCodec
    from tests.e2e.test_project_shapes import SHAPES, make_project

    codec = HarmonyCodec.load(canonical_vocab_dir())
    folder = Path(tempfile.mkdtemp(prefix="bench-run-tests-"))
    print(f"runs per figure: {runs} (medians); machine load {os.getloadavg()[0]:.1f}")
    own = ["tests/unit/test_test_summaries.py", "tests/unit/test_failure_details.py", "tests/unit/test_patch.py"]
    compare("this repo's unit suite", ROOT, DIRECT["pytest"](sys.executable), runs, paths=own)
    compare("synthetic 300 tests", synthetic_suite(folder), DIRECT["pytest"](sys.executable), runs)
    reports = {}
    for name, shape in SHAPES.items():
        if any(shutil.which(program) is None for program in shape.needs):
            print(f"{name:<22} skipped: {', '.join(shape.needs)} not installed")
            continue
        repo = make_project(folder / name, shape)
        python = str(repo / ".venv" / "bin" / "python") if shape.venv else sys.executable
        reports[name] = compare(name, repo, DIRECT[shape.runner](python), runs)
    print("\nfailure report tokens (o200k), per failing test (goal < 300 for a typical assertion failure):")
    for name, report in reports.items():
        tokens = codec.count(report["output"])
        failing = max(report["failing"], 1)
        print(f"{name:<22} {tokens:5d} tokens / {failing} failing = {tokens / failing:5.0f} per failing test")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
