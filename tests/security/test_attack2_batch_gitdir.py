"""End to end: a batch task under the Landlock fallback repoints its worktree's `.git` at the user's repository.

Before the git directory was pinned, the task's commit landed on the user's
`main`. Now the task's git is refused, the user's branch and work tree are
untouched, and the task is not reported as a success.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.fixtures.repos import call, final, git, make_calc_repo

PLAN = '[defaults]\ntest_cmd = "true"\nmax_steps = 6\n\n[[tasks]]\nid = "sneaky"\ninstruction = "Add a file"\n'
ADD = "*** Begin Patch\n*** Add File: task_file.txt\n+from task\n*** End Patch"


def test_a_task_cannot_commit_onto_the_users_branch_by_rewriting_its_git_pointer(tmp_path, vocab_dir):
    repo = make_calc_repo(tmp_path / "project")
    head = git(repo, "rev-parse", "main").strip()
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    replay = tmp_path / "replay.json"
    repoint = f"echo 'gitdir: {repo}/.git' > .git"
    replay.write_text(json.dumps({"sneaky": [call("container.exec", {"cmd": ["bash", "-c", repoint]}),
                                             call("repo_browser.apply_patch", {"patch": ADD}),
                                             final("Added.")]}))
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "batch", str(plan), "--backend", f"replay:{replay}",
                           "--json", "--sandbox", "landlock", "--cwd", str(repo)], capture_output=True, text=True,
                          timeout=180, env=os.environ)
    assert git(repo, "rev-parse", "main").strip() == head, done.stdout + done.stderr
    assert "task_file.txt" not in git(repo, "ls-tree", "-r", "--name-only", "main")
    assert not (repo / "task_file.txt").exists()
    assert git(repo, "status", "--porcelain").strip() == ""
    report = json.loads(plan.with_suffix(".report.json").read_text())
    assert report["tasks"][0]["status"] != "done", json.dumps(report["tasks"][0]) + done.stdout[-3000:]
