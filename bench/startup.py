"""`gptoss-agent --help` wall time against a bare `python -c pass`, same run (goal < 0.3 s)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from _common import median


def timed(cmd, runs=15):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - started)
    return median(samples)


def main():
    entry = shutil.which("gptoss-agent")
    cmd = [entry, "--help"] if entry else [sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "--help"]
    bare = timed([sys.executable, "-c", "pass"])
    helped = timed(cmd)
    probe = subprocess.run([sys.executable, "-c", "import sys, gptoss_agent.agent.frontends.cli as c; c.build_parser().format_help();"
                            "print(sorted(m for m in ('llama_cpp', 'textual', 'openai_harmony') if m in sys.modules))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    print(f"python -c pass        {bare * 1000:6.1f} ms")
    print(f"gptoss-agent --help   {helped * 1000:6.1f} ms  ({helped / bare:.2f}x bare python; goal < 300 ms)")
    print(f"heavy modules imported by --help: {probe}")


if __name__ == "__main__":
    main()
