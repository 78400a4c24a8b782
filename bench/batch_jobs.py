"""Wall time of a 6-task batch whose test command takes 2 seconds, --jobs 1 vs --jobs 3, with the
replay backend (generation is near-instant, so the overlap of tool time is what shows)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, canonical_vocab_dir


def main():
    from tests.fixtures.repos import call, final, git, make_calc_repo

    tasks = [f"t{i}" for i in range(6)]
    cache = Path(tempfile.mkdtemp())
    shutil.copytree(canonical_vocab_dir(), cache / "vocab")
    env = {**os.environ, "GPTOSS_AGENT_CACHE_DIR": str(cache), "GPTOSS_AGENT_STATE_DIR": str(cache / "state"),
           "PYTHONPATH": str(ROOT)}
    timings = {}
    for jobs in (1, 3):
        work = Path(tempfile.mkdtemp())
        repo = make_calc_repo(work / "project")
        (repo / "slow_test.sh").write_text("sleep 2\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "slow tests")
        plan = work / "plan.toml"
        plan.write_text('[defaults]\ntest_cmd = "sh slow_test.sh"\n' + "".join(
            f'[[tasks]]\nid = "{t}"\ninstruction = "Write note {t}"\n' for t in tasks))
        replay = work / "replay.json"
        replay.write_text(json.dumps({t: [call("repo_browser.apply_patch", {
            "patch": f"*** Begin Patch\n*** Add File: notes/{t}.md\n+{t}\n*** End Patch"}), final("done")]
            for t in tasks}))
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "batch", str(plan), "--backend", f"replay:{replay}",
                               "--jobs", str(jobs), "--json", "--cwd", str(repo)], capture_output=True, text=True,
                              env=env)
        timings[jobs] = time.perf_counter() - started
        summary = json.loads(done.stdout.splitlines()[-1])
        print(f"--jobs {jobs}: {timings[jobs]:5.1f}s wall, {summary['done']}/{summary['tasks']} done")
    print(f"speed-up --jobs 3 vs --jobs 1: {timings[1] / timings[3]:.2f}x (6 tasks × 2 s of tests)")


if __name__ == "__main__":
    main()
