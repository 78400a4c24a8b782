"""Very long lines (minified bundles): open_file pages inside a line, search shows the text around each match,
and one search cannot flood the context, whatever max_results asks."""

from __future__ import annotations

import random
import shutil

import pytest

from gptoss_agent.tools import files
from gptoss_agent.tools.context import ToolContext


def minified_bundle(functions: int = 4000, needle_at: int = 3000) -> str:
    """One line of JavaScript as a bundler writes it, with one distinctive name far inside."""
    rng = random.Random(7)
    parts = [f"function f{i}(x){{return x*{i}+{rng.randint(0, 999)}}}" for i in range(functions)]
    parts.insert(needle_at, "var NEEDLE_HERE=42")
    return ";".join(parts) + ";\n"


@pytest.fixture
def real_ctx(repo, codec):
    """A context that counts with the real o200k tokenizer, as a run does."""
    return ToolContext(workspace=repo, count_tokens=codec.count)


def test_a_one_line_file_of_30000_tokens_is_read_whole_in_pages(real_ctx, repo, codec):
    line = minified_bundle(functions=3000)
    while codec.count(line) < 30_000:
        line = line.rstrip("\n") + line
    (repo / "bundle.min.js").write_text(line)
    first = files.open_file.function(real_ctx, path="bundle.min.js")
    assert "read on with line_start=1, char_start=4001" in first.output
    pieces, char_start, pages = [], 1, 0
    while True:
        page = files.open_file.function(real_ctx, path="bundle.min.js", char_start=char_start)
        assert page.ok and codec.count(page.output) <= files.OPEN_FILE_TOKEN_BUDGET + 100
        text, _, where = page.output.rpartition("\n")
        pieces.append(text)
        pages += 1
        if "continue with" not in where:
            assert "end of file" in where
            break
        char_start = int(where.rsplit("char_start=", 1)[1].rstrip("]"))
    assert "".join(pieces) == line.rstrip("\n")  # every character, once, in order
    assert 5 <= pages <= 12


def test_the_page_after_a_long_line_points_at_the_next_line(ctx, repo):
    (repo / "two.js").write_text("a" * 9000 + "\nsecond\n")
    page = files.open_file.function(ctx, path="two.js", char_start=8001)
    assert page.output.startswith("a" * 1000 + "\n") and "the next is line_start=2" in page.output
    past = files.open_file.function(ctx, path="two.js", char_start=9002)
    assert not past.ok and "9,000 characters" in past.output
    assert not files.open_file.function(ctx, path="two.js", char_start=0).ok


@pytest.mark.parametrize("ripgrep", [True, False])
def test_search_shows_the_text_around_a_match_deep_inside_a_line(ctx, repo, monkeypatch, ripgrep):
    (repo / "bundle.min.js").write_text(minified_bundle())
    if not ripgrep:
        monkeypatch.setattr(shutil, "which", lambda name: None)
    result = files.search.function(ctx, query="NEEDLE_HERE")
    assert result.ok and "var NEEDLE_HERE=42" in result.output
    row = result.output.splitlines()[0]
    assert row.startswith("bundle.min.js:1:…") and len(row) < files.SEARCH_TEXT_CHARS + 120
    char_start = int(row.rsplit("char_start=", 1)[1].rstrip("]"))
    page = files.open_file.function(ctx, path="bundle.min.js", char_start=char_start)
    assert "var NEEDLE_HERE=42" in page.output[:300]  # the offset the search gave opens right there


def test_search_shows_each_match_of_a_long_line_once(ctx, repo):
    (repo / "bundle.min.js").write_text(minified_bundle())
    result = files.search.function(ctx, query=r"function f(100|2000|3500)\(")
    rows = result.output.splitlines()
    assert len(rows) == 3 and [("function f100(" in rows[0]), ("function f2000(" in rows[1]),
                               ("function f3500(" in rows[2])] == [True] * 3
    near = files.search.function(ctx, query=r"function f(100|101)\(")
    assert len(near.output.splitlines()) == 1  # the second match is inside the first excerpt


def test_one_search_cannot_flood_the_context(ctx, repo):
    for i in range(40):
        (repo / f"data{i}.txt").write_text(f"needle {'x' * 250}\n" * 200)
    result = files.search.function(ctx, query="needle", max_results=100_000)
    assert result.truncated and ctx.count_tokens(result.output) <= files.SEARCH_TOKEN_BUDGET + 200
    assert "more matches (the output budget of one search is spent)" in result.output
    assert result.data["matches"] == 8000
    assert not files.search.function(ctx, query="needle", max_results=0).ok


def test_a_line_with_more_matches_than_one_search_shows_says_at_least(ctx, repo):
    (repo / "dense.min.js").write_text(("needle;" + "x" * 300) * 600 + "\n")
    result = files.search.function(ctx, query="needle", max_results=10)
    assert len(result.output.splitlines()) == 11 and "[at least " in result.output.splitlines()[-1]
