"""Bounded host work on a hostile test run: a 1 GB JUnit report and 1 GB of test output.

Each case runs in a fresh subprocess so its peak RSS is its own; the baseline is
a subprocess that only imports the same modules. Goal: each case in a few
seconds and a few hundred MB (the old reader parsed a 900 MB report whole: 3.8 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

GB = 2**30

CASES = {
    "baseline": """
import gptoss_agent.tools.tests, gptoss_agent.tools.junit_report
""",
    "junit_1gb_capped": """
from gptoss_agent.tools.junit_report import read_junit
counts = read_junit(FOLDER, "junit.xml")
note = f"{counts.passed} cases read before the {32} MB cap, truncated={counts.truncated}"
""",
    "junit_256mb_streamed_uncapped": """
from gptoss_agent.tools.junit_report import read_junit
counts = read_junit(FOLDER, "junit256.xml", max_bytes=2**31, max_seconds=600)
note = f"{counts.passed} passed, {counts.failed} failed, every byte parsed"
""",
    "run_tests_1gb_output": """
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.sandbox import Sandbox
from gptoss_agent.tools.tests import run_tests
writer = "import os; chunk = b'x' * 2**20 + b'\\\\n'\\nfor _ in range(1024): os.write(1, chunk)\\nprint('1 failed, 2 passed in 1.00s')"
(REPO / "flood.py").write_text(writer)
ctx = ToolContext(workspace=REPO, sandbox=Sandbox(REPO), test_command="python3 flood.py")
result = run_tests.function(ctx)
note = f"counts {result.data['passed']} passed / {result.data['failed']} failed, model sees {len(result.output)} chars"
""",
}


def write_reports(folder: Path) -> None:
    case = '<testcase classname="tests.test_mod" name="test_case" file="tests/test_mod.py" line="1" time="0.001"/>\n'
    block = (case * 4096).encode()
    failing = ('<testcase classname="t" name="test_big"><failure message="huge">' + "y" * (1 << 20)
               + "</failure></testcase>\n").encode()
    for name, size in (("junit.xml", GB), ("junit256.xml", GB // 4)):
        with open(folder / name, "wb") as out:
            out.write(b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">\n')
            out.write(failing)
            written = 0
            while written < size:
                out.write(block)
                written += len(block)
            out.write(b"</testsuite></testsuites>\n")


def run_case(name: str, body: str, folder: Path, repo: Path) -> dict:
    script = (f"import sys, time, resource\nsys.path.insert(0, {str(ROOT)!r})\nfrom pathlib import Path\n"
              f"FOLDER = Path({str(folder)!r}); REPO = Path({str(repo)!r}); note = ''\n"
              "started = time.perf_counter()\n" + body +
              "\nimport json\nprint(json.dumps({'seconds': time.perf_counter() - started, "
              "'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'note': note}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-output-cap-") as tmp:
        folder = Path(tmp) / "reports"
        folder.mkdir()
        repo = Path(tmp) / "repo"
        repo.mkdir()
        started = time.perf_counter()
        write_reports(folder)
        print(f"wrote a 1 GB and a 256 MB JUnit report in {time.perf_counter() - started:.1f}s")
        base = run_case("baseline", CASES["baseline"], folder, repo)
        print(f"baseline (imports only): {base['rss_mb']:.0f} MB peak RSS")
        for name, body in CASES.items():
            if name == "baseline":
                continue
            figures = run_case(name, body, folder, repo)
            print(f"{name}: {figures['seconds']:.2f}s, peak RSS {figures['rss_mb']:.0f} MB "
                  f"(+{figures['rss_mb'] - base['rss_mb']:.0f} MB over baseline) | {figures['note']}")
    print("goal: each case a few seconds and a few hundred MB")


if __name__ == "__main__":
    main()
