"""Cold and warm wall time of `gptoss-agent map --tokens 1024` on a git copy of the installed
standard library (no test/, no site-packages), and of Aider's RepoMap on the same tree when
`aider-chat` is installed in a separate venv (AIDER_PYTHON=/path/to/venv/bin/python).
Goals: ≥ 2× faster than Aider cold, ≥ 10× faster warm (under 0.5 s)."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, canonical_vocab_dir
from search import stdlib_copy

AIDER_SCRIPT = """
import sys, time
started = time.perf_counter()
from aider.io import InputOutput
from aider.models import Model
from aider.repomap import RepoMap
root = sys.argv[1]
import subprocess
files = [root + "/" + f for f in subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True).stdout.split()]
rm = RepoMap(map_tokens=1024, root=root, main_model=Model("gpt-4o"), io=InputOutput(yes=True), verbose=False)
text = rm.get_repo_map([], files) or ""
print(f"{len(text)} chars", file=sys.stderr)
"""


def timed(cmd, env, cwd):
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return time.perf_counter() - started, done


def main():
    tree = stdlib_copy()
    files = len(list(tree.rglob("*.py")))
    cache = Path(tempfile.mkdtemp())
    shutil.copytree(canonical_vocab_dir(), cache / "vocab")
    env = {**os.environ, "GPTOSS_AGENT_CACHE_DIR": str(cache)}
    entry = shutil.which("gptoss-agent") or sys.executable
    cmd = [entry, "map", "--tokens", "1024"] if entry != sys.executable else [sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "map", "--tokens", "1024"]
    cold, done = timed(cmd, env, tree)
    warm, again = timed(cmd, env, tree)
    assert again.stdout == done.stdout
    print(f"stdlib copy: {files} .py files")
    print(f"gptoss-agent map  cold {cold:5.2f}s | warm {warm:5.2f}s   ({done.stderr.strip()})")
    aider = os.environ.get("AIDER_PYTHON")
    if not aider:
        print("Aider: set AIDER_PYTHON to a venv python with aider-chat 0.86.2 to compare in the same run "
              "(planning measured ~9.8 s cold, ~4.9 s warm)")
        return
    tiktoken_cache = Path(tempfile.mkdtemp())
    shutil.copy(canonical_vocab_dir() / "o200k_base.tiktoken", tiktoken_cache / "fb374d419588a4632f3f557e76b4b70aebbca790")
    aider_env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tiktoken_cache), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for leftover in tree.glob(".aider.tags.cache*"):
        shutil.rmtree(leftover, ignore_errors=True)
    script = Path(tempfile.mkdtemp()) / "aider_map.py"
    script.write_text(AIDER_SCRIPT)
    a_cold, _ = timed([aider, str(script), str(tree)], aider_env, tree)
    a_warm, _ = timed([aider, str(script), str(tree)], aider_env, tree)
    print(f"aider RepoMap     cold {a_cold:5.2f}s | warm {a_warm:5.2f}s")
    print(f"speed-up: cold {a_cold / cold:.1f}x (goal >= 2), warm {a_warm / warm:.1f}x (goal >= 10)")


if __name__ == "__main__":
    main()
