"""Host helpers we trust (ripgrep), run without the sandbox; git goes through tools.host_git.

The model never chooses these programs: its commands go through `Sandbox.run`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence

from gptoss_agent.tools.sandbox.secrets import ENV_ALLOWED


def run_trusted(argv: Sequence[str], *, cwd: Path, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Run a host helper we trust (ripgrep): no shell, bounded time, captured output.

    `git` is never run from here directly: it goes through tools.host_git,
    which validates the repository and neutralises every program it could run.
    The model never chooses these programs; its commands go through `Sandbox.run`.
    """
    if argv and Path(argv[0]).name == "git":
        from gptoss_agent.tools.host_git import HostGitError, find_root, run_git

        try:
            done = run_git(find_root(cwd), *argv[1:], timeout_s=timeout_s)
        except HostGitError as exc:
            return subprocess.CompletedProcess(list(argv), 128, b"", str(exc).encode())
        return subprocess.CompletedProcess(list(argv), done.returncode, done.stdout, done.stderr)
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k == "HOME"}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return subprocess.run(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout_s)
