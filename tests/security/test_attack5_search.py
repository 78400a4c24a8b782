"""A5 findings 2, 8, 9: search in bounded memory on a minified line, offsets open_file agrees with on invalid
UTF-8 and on a file starting FF FE, and a null path said plainly (not a TypeError)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gptoss_agent.tools import files
from gptoss_agent.tools.context import ToolContext

pytestmark = pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep is not installed")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_a_16_mb_minified_line_is_searched_in_bounded_memory(tree):
    (tree / "bundle.min.js").write_text("a" * (16 << 20) + "\n")
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from gptoss_agent.tools import files
        from gptoss_agent.tools.context import ToolContext
        ctx = ToolContext(workspace=Path({str(tree)!r}))
        plain = files.search.function(ctx, query="a")
        regex = files.search.function(ctx, query="[a]")
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) // 1024
        print(peak, plain.ok, "match at char 1" in plain.output or "match at char 301" in plain.output,
              regex.ok, "bundle.min.js" in regex.output)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    peak, plain_ok, plain_shown, regex_ok, regex_named = done.stdout.split()
    # before: ~650 MB per MB of line (10 GB here); rg itself is capped for a regex over one big file
    assert int(peak) < 300, f"peak RSS {peak} MB"
    assert (plain_ok, plain_shown, regex_ok, regex_named) == ("True",) * 4


def test_a_match_after_invalid_utf8_is_where_open_file_shows_it(tree):
    (tree / "b.js").write_bytes(b"a" + b"\xff\xfe\xc3" * 700 + b"MARK" + b"x" * 1000 + b"\n")
    ctx = ToolContext(workspace=tree)
    found = files.search.function(ctx, query="MARK")
    assert "MARK" in found.output  # the excerpt holds the match
    at, start = map(lambda s: int(s.replace(",", "")),
                    re.search(r"match at char ([\d,]+) of [\d,]+; open_file char_start=(\d+)", found.output).groups())
    page = files.open_file.function(ctx, path="b.js", char_start=start)
    assert page.output.index("MARK") == at - start  # the match is exactly where the search said


def test_a_file_starting_ff_fe_is_searched_as_its_bytes(tree):
    (tree / "g.txt").write_bytes(b"\xff\xfe hello world\n")
    ctx = ToolContext(workspace=tree)
    assert "g.txt:1:" in files.search.function(ctx, query="hello").output  # rg read it as UTF-16 before


def test_a_null_path_is_a_clear_tool_error(tree):
    result = files.search.function(ToolContext(workspace=tree), query="x", path=None)
    assert not result.ok and "text path" in result.output
