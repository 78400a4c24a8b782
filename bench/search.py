"""repo_browser.search on a large real tree (a git copy of the installed standard library) vs
`rg` and `grep -rn` on the same query, same run. Goal: within 1.5× of rg; faster than grep."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

from _common import CACHE, timed_median


def stdlib_copy() -> Path:
    target = CACHE / "stdlib-repo"
    if not (target / ".git").exists():
        source = Path(sysconfig.get_paths()["stdlib"])
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("test", "site-packages", "__pycache__", "*.pyc"),
                        dirs_exist_ok=True)
        subprocess.run(["git", "init", "-q"], cwd=target, check=True)
        subprocess.run(["git", "add", "-A"], cwd=target, check=True)
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "stdlib"], cwd=target,
                       check=True)
    return target




def main():
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.files import search

    tree = stdlib_copy()
    files = len(list(tree.rglob("*.py")))
    ctx = ToolContext(workspace=tree)
    query = "def __init__"
    ours = timed_median(lambda: search.function(ctx, query=query, max_results=50))
    rg = timed_median(lambda: subprocess.run(["rg", "-n", "--no-heading", query, "."], cwd=tree, capture_output=True)) \
        if shutil.which("rg") else None
    grep = timed_median(lambda: subprocess.run(["grep", "-rn", query, "."], cwd=tree, capture_output=True))
    print(f"stdlib copy: {files} .py files, query {query!r}")
    print(f"repo_browser.search {ours * 1000:7.1f} ms")
    if rg:
        print(f"rg -n               {rg * 1000:7.1f} ms  (ratio {ours / rg:.2f}, goal <= 1.5)")
    print(f"grep -rn            {grep * 1000:7.1f} ms  (ratio {ours / grep:.2f}, goal < 1)")
    import shutil as _shutil
    from unittest import mock

    with mock.patch.object(_shutil, "which", return_value=None):
        fallback = timed_median(lambda: search.function(ctx, query=query, max_results=50), runs=3)
    print(f"pure-Python fallback {fallback * 1000:6.1f} ms  (ratio to grep {fallback / grep:.2f})")


if __name__ == "__main__":
    main()
