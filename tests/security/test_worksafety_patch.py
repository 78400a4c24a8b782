"""apply_patch never loses a section, a line or a file, and says exactly what it did (real tool, real files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.hostgit_fixtures import git
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.editing import apply_patch_tool

B, E = "*** Begin Patch\n", "*** End Patch"


@pytest.fixture
def repo(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")

    def make(files: dict[str, str | bytes]) -> Path:
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return root
    return make


def apply(root: Path, patch: str):
    return apply_patch_tool(ToolContext(workspace=root), patch=patch)


def test_one_file_under_two_spellings_gets_both_sections_in_order(repo):
    root = repo({"a.py": "x = 1\ny = 2\n"})
    result = apply(root, B + "*** Update File: a.py\n-x = 1\n+x = 10\n*** Update File: ./a.py\n-y = 2\n+y = 20\n" + E)
    assert result.ok, result.output
    assert (root / "a.py").read_text() == "x = 10\ny = 20\n"
    assert result.data["files"] == ["a.py"]


def test_two_moves_onto_one_target_are_refused_and_nothing_moves(repo):
    root = repo({"a.py": "A = 1\n", "b.py": "B = 1\n"})
    result = apply(root, B + "*** Update File: a.py\n*** Move to: c.py\n-A = 1\n+A = 2\n"
                             "*** Update File: b.py\n*** Move to: c.py\n-B = 1\n+B = 2\n" + E)
    assert not result.ok and "c.py" in result.output
    assert (root / "a.py").read_text() == "A = 1\n" and (root / "b.py").read_text() == "B = 1\n"
    assert not (root / "c.py").exists()


def test_a_move_onto_an_existing_file_is_refused(repo):
    root = repo({"a.py": "A = 1\n", "c.py": "C = 1\n"})
    result = apply(root, B + "*** Update File: a.py\n*** Move to: c.py\n-A = 1\n+A = 2\n" + E)
    assert not result.ok and "already exists" in result.output
    assert (root / "c.py").read_text() == "C = 1\n" and (root / "a.py").exists()


def test_an_indented_end_patch_line_is_context_not_the_end(repo):
    root = repo({"doc.md": "Title\n*** End Patch\nFooter\n"})
    result = apply(root, B + "*** Update File: doc.md\n-Title\n+New Title\n *** End Patch\n-Footer\n+New Footer\n" + E)
    assert result.ok, result.output
    assert (root / "doc.md").read_text() == "New Title\n*** End Patch\nNew Footer\n"


def test_an_anchor_matches_whole_words_never_a_longer_name(repo):
    root = repo({"m.py": "def foo():\n    return 1\n\n\ndef f():\n    return 2\n"})
    result = apply(root, B + "*** Update File: m.py\n@@ def f\n+    print('hi')\n" + E)
    assert result.ok, result.output
    assert (root / "m.py").read_text() == "def foo():\n    return 1\n\n\ndef f():\n    print('hi')\n    return 2\n"
    assert result.data["hunks"][0]["fuzz"] == "anchor" and "check it" in result.output


def test_an_anchor_found_only_inside_a_longer_name_is_refused(repo):
    root = repo({"m.py": "def foo():\n    return 1\n"})
    result = apply(root, B + "*** Update File: m.py\n@@ def f\n+    print('hi')\n" + E)
    assert not result.ok and "anchor" in result.output
    assert (root / "m.py").read_text() == "def foo():\n    return 1\n"


def test_add_file_keeps_a_blank_line_written_without_its_plus(repo):
    root = repo({"x": "1\n"})
    result = apply(root, B + "*** Add File: notes.md\n+Para one.\n\n+Para two.\n\n" + E)
    assert result.ok, result.output
    assert (root / "notes.md").read_text() == "Para one.\n\nPara two.\n"


def test_a_git_diff_path_that_could_mean_two_files_is_refused(repo):
    root = repo({"x.py": "v = 1\n", "a/x.py": "v = 1\n"})
    result = apply(root, "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-v = 1\n+v = 2\n")
    assert not result.ok and "ambiguous" in result.output
    assert (root / "x.py").read_text() == "v = 1\n" and (root / "a/x.py").read_text() == "v = 1\n"


def test_a_git_diff_path_with_one_meaning_still_applies(repo):
    root = repo({"x.py": "v = 1\n"})
    result = apply(root, "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-v = 1\n+v = 2\n")
    assert result.ok, result.output
    assert (root / "x.py").read_text() == "v = 2\n"


def test_a_patch_that_only_adds_the_final_newline_adds_it_and_says_so(repo):
    root = repo({"n.txt": b"a\nb"})
    result = apply(root, "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n")
    assert result.ok, result.output
    assert (root / "n.txt").read_bytes() == b"a\nb\n"
    assert "final newline added" in result.output


def test_a_patch_that_removes_the_final_newline_removes_it(repo):
    root = repo({"n.txt": b"a\nb\n"})
    result = apply(root, "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n")
    assert result.ok, result.output
    assert (root / "n.txt").read_bytes() == b"a\nb"
    assert "final newline removed" in result.output


def test_a_patch_that_changes_nothing_is_refused_not_reported_as_applied(repo):
    root = repo({"n.txt": "a\nb\n"})
    result = apply(root, B + "*** Update File: n.txt\n-b\n+b\n" + E)
    assert not result.ok and "changes nothing" in result.output
