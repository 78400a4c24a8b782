"""repo_browser tools on a real repository, including every error path."""

from __future__ import annotations

import os
import shutil

import pytest

from gptoss_agent.tools import files


def test_print_tree_lists_tracked_and_untracked_but_not_ignored(ctx, repo):
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("x")
    (repo / "notes.md").write_text("new")
    result = files.print_tree.function(ctx, path="", depth=2)
    assert result.ok
    assert "calc.py" in result.output and "notes.md" in result.output and "test_calc.py" in result.output
    assert "build" not in result.output


def test_open_file_with_line_numbers_and_range(ctx):
    result = files.open_file.function(ctx, path="calc.py", line_start=2, line_end=2, line_numbers=True)
    assert result.ok and result.output.startswith("2     return a - b")
    assert "[lines 2-2 of 6" in result.output


def test_open_file_missing_suggests_the_nearest_name(ctx):
    result = files.open_file.function(ctx, path="calcs.py")
    assert not result.ok and "no such file" in result.output and "calc.py" in result.output


def test_open_file_on_a_folder_and_a_binary(ctx, repo):
    assert "is a folder" in files.open_file.function(ctx, path="tests").output
    (repo / "img.png").write_bytes(b"\x89PNG\x00\x00\x01")
    assert "binary file" in files.open_file.function(ctx, path="img.png").output


def test_big_file_is_capped_by_tokens_and_says_how_to_page(ctx, repo):
    (repo / "big.py").write_text("".join(f"value_{i} = {i} * 2  # a line with some words in it\n" for i in range(5000)))
    result = files.open_file.function(ctx, path="big.py")
    assert result.truncated and "continue with line_start=" in result.output
    assert ctx.count_tokens(result.output) < files.OPEN_FILE_TOKEN_BUDGET * 1.2
    shown = result.output.splitlines()[-2]
    next_start = int(result.output.rsplit("line_start=", 1)[1].rstrip("]"))
    assert shown.startswith(f"value_{next_start - 2} ")


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "tests/../../x", "a\x00b"])
def test_paths_outside_the_workspace_are_refused(ctx, path):
    result = files.open_file.function(ctx, path=path)
    assert not result.ok and ("outside the workspace" in result.output or "NUL" in result.output)


def test_symlink_pointing_out_is_refused(ctx, repo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    os.symlink(secret, repo / "link.txt")
    result = files.open_file.function(ctx, path="link.txt")
    assert not result.ok and "symbolic link leads outside" in result.output


def test_secrets_are_not_read(ctx, repo):
    (repo / ".env").write_text("API_KEY=hunter2")
    refused = files.open_file.function(ctx, path=".env")
    assert not refused.ok and "looks like a secret" in refused.output and "hunter2" not in refused.output


def test_search_finds_rows_and_caps_results(ctx, repo):
    result = files.search.function(ctx, query="def (add|mul)")
    assert result.ok and "calc.py:1:def add(a, b):" in result.output and "calc.py:5:def mul(a, b):" in result.output
    (repo / "many.txt").write_text("needle\n" * 80)
    capped = files.search.function(ctx, query="needle", max_results=10)
    assert capped.truncated and "70 more matches" in capped.output


def test_search_treats_an_invalid_regex_as_literal_text(ctx):
    result = files.search.function(ctx, query="add(a, b")
    assert result.ok and "calc.py:1:def add(a, b):" in result.output


def test_search_without_ripgrep_gives_the_same_rows(ctx, monkeypatch):
    with_rg = files.search.function(ctx, query="return").output
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert files.search.function(ctx, query="return").output == with_rg


def test_open_file_cuts_a_very_long_line_and_says_so(ctx, repo):
    (repo / "min.js").write_text("var a=1;" * 10_000 + "\nsecond line\n")
    result = files.open_file.function(ctx, path="min.js")
    first = result.output.splitlines()[0]
    assert result.ok and "line cut: 76,000 more characters" in first and len(first) < 4_100
    assert "second line" in result.output


def test_search_a_single_file_and_a_folder_linked_inside(ctx, repo):
    (repo / "lib").symlink_to("tests")
    assert files.search.function(ctx, query="def test_add", path="tests/test_calc.py").output == \
        "tests/test_calc.py:4:def test_add():"
    assert "tests/test_calc.py:4:def test_add():" in files.search.function(ctx, query="def test_add", path="lib").output


def test_print_tree_of_a_folder_linked_inside_shows_its_real_files(ctx, repo):
    (repo / "lib").symlink_to("tests")
    result = files.print_tree.function(ctx, path="lib")
    assert result.ok and "test_calc.py" in result.output
