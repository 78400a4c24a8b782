"""Nesting without brackets (Ruby's `def`…`end`) cannot stall the repo map: the syntax tree's own
depth is measured after the (budgeted, linear) parse, a file past any hand-written depth is
skipped and noted, and moderately deep files are queried in bounded slices."""

from __future__ import annotations

import time

from tests.fixtures.repos import make_calc_repo
from gptoss_agent.tools.files import repo_files
from gptoss_agent.tools.repomap import build_index
from gptoss_agent.tools.tags import extract


def test_60000_nested_ruby_defs_are_skipped_and_noted_within_seconds(tmp_path):
    repo = make_calc_repo(tmp_path / "project")
    (repo / "lib.rb").write_text("def f\n" * 60000 + "end\n" * 60000)
    started = time.thread_time()  # CPU time of this thread: what a loaded machine does not inflate
    index = build_index(repo, repo_files(repo), cache_file=tmp_path / "map.json")
    spent = time.thread_time() - started
    assert any(s.startswith("lib.rb (") and "nest over" in s and "not mapped" in s for s in index.skipped), \
        index.skipped
    assert "calc.py" in index.files
    assert spent < 5, f"{spent:.1f}s of CPU"  # before the fix: minutes in one query run


def test_a_few_hundred_nested_defs_are_all_mapped_with_their_own_lines():
    depth = 300
    source = ("def f\n" * depth + "end\n" * depth).encode()
    started = time.thread_time()
    tags = extract("lib.rb", source, budget_s=10)
    assert time.thread_time() - started < 3
    assert [d.line for d in tags.definitions] == list(range(1, depth + 1))
    assert {d.signature for d in tags.definitions} == {"def f"}


def test_methods_are_still_told_from_functions():
    source = (b"class A:\n    def m(self):\n        def inner(): pass\n        return inner\n\n\n"
              b"def top(): pass\n")
    kinds = {d.name: d.kind for d in extract("a.py", source).definitions}
    assert kinds["m"] == "method" and kinds["top"] == "function" and kinds["inner"] == "function"


def test_the_map_command_names_the_skipped_file(tmp_path, vocab_dir):
    from tests.security.settings_helpers import cli

    repo = make_calc_repo(tmp_path / "project")
    (repo / "lib.rb").write_text("def f\n" * 60000 + "end\n" * 60000)
    done = cli("map", "--cwd", str(repo), cwd=repo, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[skipped lib.rb (definitions nest over" in done.stderr
    assert "def add(a, b):" in done.stdout
