"""The apply_patch engine on a table of real patch shapes (pure: files are a dict)."""

from __future__ import annotations

import pytest

from gptoss_agent.tools.patch import PatchError, apply_patch, normalise_paths, parse_patch

SOURCE = "import os\n\n\ndef handler(request):\n    value = request.get('x')\n    return value\n\n\ndef other():\n    return 1\n"


def run(patch: str, files: dict[str, str]) -> dict[str, str | None]:
    outcome = apply_patch(parse_patch(patch), lambda path: files.get(path))
    merged = dict(files)
    merged.update(outcome.writes)
    return merged


def test_update_with_context():
    out = run("*** Begin Patch\n*** Update File: app.py\n def handler(request):\n-    value = request.get('x')\n"
              "+    value = request.get('y')\n     return value\n*** End Patch", {"app.py": SOURCE})
    assert "request.get('y')" in out["app.py"] and out["app.py"].endswith("return 1\n")


def test_multi_hunk_with_anchors():
    patch = ("*** Begin Patch\n*** Update File: app.py\n@@ def handler(request):\n-    return value\n+    return value or 0\n"
             "@@ def other():\n-    return 1\n+    return 2\n*** End Patch")
    out = run(patch, {"app.py": SOURCE})["app.py"]
    assert "return value or 0" in out and "return 2" in out


def test_whitespace_drift_in_context_keeps_the_files_lines():
    patch = "*** Begin Patch\n*** Update File: app.py\n def handler(request):  \n-  value = request.get('x')\n+  value = 3\n*** End Patch"
    out = run(patch, {"app.py": SOURCE})["app.py"]
    assert out == SOURCE.replace("    value = request.get('x')", "    value = 3")


def test_crlf_file_keeps_crlf_and_final_newline():
    crlf = SOURCE.replace("\n", "\r\n")
    out = run("*** Begin Patch\n*** Update File: app.py\n-    return 1\n+    return 42\n*** End Patch", {"app.py": crlf})["app.py"]
    assert out.endswith("    return 42\r\n") and "\n" not in out.replace("\r\n", "")


def test_file_without_final_newline_stays_without():
    out = run("*** Begin Patch\n*** Update File: a.txt\n-b\n+c\n*** End Patch", {"a.txt": "a\nb"})["a.txt"]
    assert out == "a\nc"


def test_end_of_file_marker_appends_at_the_end():
    out = run("*** Begin Patch\n*** Update File: a.txt\n+tail\n*** End of File\n*** End Patch", {"a.txt": "x\ny\n"})
    assert out["a.txt"] == "x\ny\ntail\n"


def test_add_delete_and_move():
    patch = ("*** Begin Patch\n*** Add File: docs/new.md\n+# Title\n+text\n*** Delete File: old.py\n"
             "*** Update File: app.py\n*** Move to: src/app.py\n-    return 1\n+    return 3\n*** End Patch")
    out = run(patch, {"app.py": SOURCE, "old.py": "x\n"})
    assert out["docs/new.md"] == "# Title\ntext\n" and out["old.py"] is None
    assert out["app.py"] is None and "return 3" in out["src/app.py"]


def test_failure_names_file_hunk_and_closest_text():
    patch = "*** Begin Patch\n*** Update File: app.py\n-    value = request.fetch('x')\n+    value = 1\n*** End Patch"
    with pytest.raises(PatchError) as caught:
        run(patch, {"app.py": SOURCE})
    message = str(caught.value)
    assert "app.py, hunk 1: context not found" in message
    assert "Closest text in app.py (lines 5-5)" in message and "request.get('x')" in message


def test_any_failing_hunk_means_no_file_changes():
    patch = ("*** Begin Patch\n*** Update File: a.txt\n-a\n+A\n*** Update File: b.txt\n-missing\n+x\n*** End Patch")
    files = {"a.txt": "a\n", "b.txt": "b\n"}
    with pytest.raises(PatchError):
        apply_patch(parse_patch(patch), files.get)


@pytest.mark.parametrize("text, message", [
    ("no markers at all", "must start with '*** Begin Patch'"),
    ("*** Begin Patch\n*** End Patch", "changes no file"),
    ("*** Begin Patch\n*** Frobnicate File: x\n*** End Patch", "unexpected line"),
    ("*** Begin Patch\n*** Update File: x\n*** End Patch", "no hunks"),
])
def test_malformed_patches(text, message):
    with pytest.raises(PatchError) as caught:
        parse_patch(text)
    assert message in str(caught.value)


def test_add_over_existing_and_update_of_missing():
    with pytest.raises(PatchError, match="already exists"):
        run("*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch", {"a.txt": "y\n"})
    with pytest.raises(PatchError, match="no such file"):
        run("*** Begin Patch\n*** Update File: nope.txt\n-x\n+y\n*** End Patch", {})


def test_prose_and_fences_around_the_patch_are_ignored():
    patch = "Here is the fix:\n```\n*** Begin Patch\n*** Update File: a.txt\n-a\n+b\n*** End Patch\n```"
    assert run(patch, {"a.txt": "a\n"})["a.txt"] == "b\n"


# ---------------------------------------------------------------- exact or refused (issue #12 item 1)

GEN = ("def gen(items):\n    for item in items:\n        if item:\n            yield item\n"
       "        else:\n            continue\n    return\n")


def patch_of(path: str, *hunk_lines: str, header: str | None = None) -> str:
    return "\n".join(["*** Begin Patch", f"*** Update File: {path}"] + ([header] if header else [])
                     + list(hunk_lines) + ["*** End Patch"])


def apply(patch: str, files: dict[str, str], **kwargs):
    return apply_patch(parse_patch(patch), files.get, **kwargs)


def test_hunk_four_spaces_short_keeps_the_block_in_place_and_reindents_added_lines():
    # The case: written over the file's lines, this moved the if block to module level.
    patch = patch_of("gen.py", " for item in items:", "-    if item:", "-        yield item",
                     "+    if item is not None:", "+        yield item", "     else:")
    outcome = apply(patch, {"gen.py": GEN})
    assert outcome.writes["gen.py"] == GEN.replace("        if item:", "        if item is not None:")
    [report] = outcome.hunks
    assert report.fuzz == "whitespace" and "+4 columns" in report.detail and report.line == 2


def test_hunk_four_spaces_long_is_dedented():
    patch = patch_of("gen.py", "         for item in items:", "-            if item:", "+            if item or item == 0:")
    out = apply(patch, {"gen.py": GEN}).writes["gen.py"]
    assert out == GEN.replace("        if item:", "        if item or item == 0:")


def test_context_line_indented_with_a_tab_keeps_the_files_spaces():
    patch = patch_of("gen.py", " \tfor item in items:", "-        if item:", "+        if item and True:")
    out = apply(patch, {"gen.py": GEN}).writes["gen.py"]
    assert out == GEN.replace("        if item:", "        if item and True:") and "\t" not in out


def test_patch_in_spaces_on_a_tab_indented_file_writes_tabs():
    tabbed = GEN.replace("    ", "\t")
    patch = patch_of("gen.py", "     for item in items:", "-        if item:", "+        if item:",
                     "+            print(item)")
    out = apply(patch, {"gen.py": tabbed}).writes["gen.py"]
    assert out == tabbed.replace("\t\tif item:\n", "\t\tif item:\n\t\t\tprint(item)\n")


def test_context_lines_without_their_leading_space_leave_added_lines_where_written():
    # ' ' prefixes lost: indented context reads one column short, unindented context has no prefix at all.
    patch = patch_of("gen.py", "def gen(items):", "    for item in items:", "+        print(item)",
                     "        if item:")
    out = apply(patch, {"gen.py": GEN}).writes["gen.py"]
    assert out == GEN.replace("    for item in items:\n", "    for item in items:\n        print(item)\n")


def test_trailing_spaces_on_a_context_line_do_not_rewrite_it():
    source = "a = 1\nb = 2   \nc = 3\n"
    out = apply(patch_of("x.py", " a = 1", " b = 2", "-c = 3", "+c = 4"), {"x.py": source}).writes["x.py"]
    assert out == "a = 1\nb = 2   \nc = 4\n"


def test_unified_header_with_exact_context_applies_and_reports_exact():
    lines = [f"line {n}" for n in range(1, 200)]
    source = "\n".join(lines) + "\n"
    patch = patch_of("f.txt", " line 158", "-line 159", "+line 159!", " line 160", header="@@ -158,3 +158,3 @@")
    outcome = apply(patch, {"f.txt": source})
    assert outcome.writes["f.txt"] == source.replace("line 159\n", "line 159!\n")
    assert [h.fuzz for h in outcome.hunks] == ["exact"]


def test_ambiguous_context_is_refused_with_the_places():
    source = "def a():\n    return None\n\n\ndef b():\n    return None\n"
    with pytest.raises(PatchError) as caught:
        apply(patch_of("x.py", "-    return None", "+    return 0"), {"x.py": source})
    assert "matches 2 places (lines 2, 6)" in str(caught.value) and "nothing was written" in str(caught.value)


def test_ambiguous_context_resolved_by_the_line_number_of_a_unified_header():
    source = "def a():\n    return None\n\n\ndef b():\n    return None\n"
    outcome = apply(patch_of("x.py", "-    return None", "+    return 0", header="@@ -6,1 +6,1 @@"), {"x.py": source})
    assert outcome.writes["x.py"] == "def a():\n    return None\n\n\ndef b():\n    return 0\n"
    assert outcome.hunks[0].fuzz == "line-hint"


def test_ambiguous_context_resolved_by_end_of_file():
    source = "x = 1\nprint(x)\nx = 1\nprint(x)\n"
    patch = patch_of("x.py", " x = 1", "-print(x)", "+print(x, flush=True)", "*** End of File")
    outcome = apply(patch, {"x.py": source})
    assert outcome.writes["x.py"] == "x = 1\nprint(x)\nx = 1\nprint(x, flush=True)\n"
    assert outcome.hunks[0].fuzz == "eof"


def test_anchor_narrows_an_otherwise_ambiguous_hunk():
    source = "def a():\n    return None\n\n\ndef b():\n    return None\n"
    out = apply(patch_of("x.py", "-    return None", "+    return 0", header="@@ def b():"), {"x.py": source})
    assert out.writes["x.py"].endswith("def b():\n    return 0\n")


def test_inconsistent_indentation_is_refused_with_closest_text_and_a_diff():
    patch = patch_of("gen.py", "  for item in items:", "-        if item:", "-          yield item", "+    if item:",
                     "+        yield item * 2")
    with pytest.raises(PatchError) as caught:
        apply(patch, {"gen.py": GEN})
    message = str(caught.value)
    assert "cannot be re-indented safely" in message
    assert "Closest text in gen.py (lines 2-4)" in message and "Difference:" in message


def test_paraphrased_context_is_refused():
    patch = patch_of("gen.py", " for element in items:", "-        if item:", "+        if item:  # x")
    with pytest.raises(PatchError, match="context not found"):
        apply(patch, {"gen.py": GEN})


def test_blank_context_lines_left_out_still_match_and_the_files_blank_lines_stay():
    source = "import os\n\n\ndef main():\n    return os.getcwd()\n"
    outcome = apply(patch_of("m.py", " import os", " def main():", "-    return os.getcwd()", "+    return os.sep"),
                    {"m.py": source})
    assert outcome.writes["m.py"] == "import os\n\n\ndef main():\n    return os.sep\n"
    assert "2 blank line(s) differ" in outcome.hunks[0].detail


def test_mixed_line_endings_are_kept_line_by_line():
    source = "a\r\nb\nc\r\nd\r\n"
    out = apply(patch_of("m.txt", " b", "-c", "+C", "+C2"), {"m.txt": source}).writes["m.txt"]
    assert out == "a\r\nb\nC\r\nC2\r\nd\r\n"


def test_overlapping_hunks_are_refused():
    patch = patch_of("gen.py", " for item in items:", "-        if item:", "+        if item > 1:", "@@",
                     "-        if item:", "+        if item > 2:")
    with pytest.raises(PatchError, match="change the same lines"):
        apply(patch, {"gen.py": GEN})


def test_hunks_whose_context_overlaps_each_apply_their_own_change():
    # Two edits two lines apart, each with three lines of context, as models often write them.
    source = "".join(f"v{n} = {n}\n" for n in range(12))
    patch = patch_of("v.py", " v2 = 2", " v3 = 3", " v4 = 4", "-v5 = 5", "+v5 = 50", " v6 = 6", " v7 = 7", " v8 = 8",
                     "@@", " v5 = 5", " v6 = 6", " v7 = 7", "-v8 = 8", "+v8 = 80", " v9 = 9", " v10 = 10")
    outcome = apply(patch, {"v.py": source})
    assert outcome.writes["v.py"] == source.replace("v5 = 5\n", "v5 = 50\n").replace("v8 = 8\n", "v8 = 80\n")
    assert [h.fuzz for h in outcome.hunks] == ["exact", "exact"]


def test_hunks_are_located_against_the_original_file():
    # The second hunk's context exists only in what the first hunk writes: it must not match the patch's own text.
    patch = patch_of("g.txt", "-alpha", "+beta", "@@", "-beta", "+delta")
    with pytest.raises(PatchError, match="hunk 2: context not found"):
        apply(patch, {"g.txt": "alpha\ngamma\n"})


def test_closing_fence_ends_a_patch_without_end_line_even_with_prose_after_it():
    patch = "```\n*** Begin Patch\n*** Update File: a.txt\n-a\n+b\n```\nThis renames a to b."
    assert run(patch, {"a.txt": "a\n"})["a.txt"] == "b\n"


def test_markdown_fences_inside_a_markdown_file_are_content():
    source = "# T\n```python\nx = 1\n```\n"
    patch = "*** Begin Patch\n*** Update File: r.md\n ```python\n-x = 1\n+x = 2\n ```"
    assert run(patch, {"r.md": source})["r.md"] == source.replace("x = 1", "x = 2")


def test_paths_with_diff_prefixes_and_absolute_paths_are_read_as_the_repositorys():
    ops = parse_patch("*** Begin Patch\n*** Update File: a/src/app.py\n-x\n+y\n*** Add File: b/src/new.py\n+z\n"
                      "*** Update File: /home/me/repo/README\n-r\n+s\n*** End Patch")
    present = {"src/app.py", "src", "README"}
    fixed = normalise_paths(ops, present.__contains__, roots=["/home/me/repo"])
    assert [op.path for op in fixed] == ["src/app.py", "src/new.py", "README"]


def test_a_prefix_is_kept_when_the_prefixed_path_exists():
    ops = parse_patch("*** Begin Patch\n*** Update File: a/b.py\n-x\n+y\n*** End Patch")
    assert normalise_paths(ops, {"a/b.py", "b.py"}.__contains__)[0].path == "a/b.py"


def test_an_edit_that_adds_a_syntax_error_is_refused_before_anything_is_written():
    from gptoss_agent.tools.syntax_check import introduced_error

    patch = patch_of("gen.py", "-            yield item", "+            yield (item")
    with pytest.raises(PatchError) as caught:
        apply(patch, {"gen.py": GEN}, check=introduced_error)
    message = str(caught.value)
    assert "syntax error in gen.py" in message and "nothing was written" in message and "gen.py:4:" in message


def test_an_edit_to_an_already_broken_file_is_allowed_if_it_adds_no_error():
    from gptoss_agent.tools.syntax_check import introduced_error

    broken = GEN + "def oops(:\n    pass\n"
    patch = patch_of("gen.py", "-            yield item", "+            yield item * 2")
    assert "item * 2" in apply(patch, {"gen.py": broken}, check=introduced_error).writes["gen.py"]


def test_lines_added_with_only_a_line_number_to_place_them_are_refused():
    with pytest.raises(PatchError, match="no context line to place them by"):
        apply(patch_of("x.py", "+import sys", header="@@ -3,0 +4,1 @@"), {"x.py": "a = 1\nb = 2\nc = 3\nd = 4\n"})


def test_lines_added_with_no_context_and_no_header_go_to_the_end_and_say_so():
    outcome = apply(patch_of("x.py", "+e = 5"), {"x.py": "a = 1\n"})
    assert outcome.writes["x.py"] == "a = 1\ne = 5\n"
    assert outcome.hunks[0].fuzz == "eof" and "appended at the end" in outcome.hunks[0].detail


def test_a_refusal_for_whitespace_only_differences_says_so():
    patch = patch_of("gen.py", "  for item in items:", "-        if item:", "-          yield item", "+    if item:")
    with pytest.raises(PatchError, match="differ only in whitespace"):
        apply(patch, {"gen.py": GEN})


def test_the_diff_shows_three_lines_of_context_like_git():
    source = "".join(f"line {n}\n" for n in range(1, 30))
    outcome = apply(patch_of("f.txt", " line 14", "-line 15", "+line fifteen", " line 16"), {"f.txt": source})
    assert outcome.diff == ("--- a/f.txt\n+++ b/f.txt\n@@ -12,7 +12,7 @@\n line 12\n line 13\n line 14\n-line 15\n"
                            "+line fifteen\n line 16\n line 17\n line 18\n")


def test_a_plain_unified_diff_is_read_as_the_same_patch():
    diff = ("Here is the fix:\n```diff\ndiff --git a/app.py b/app.py\nindex 1234567..89abcde 100644\n--- a/app.py\n"
            "+++ b/app.py\n@@ -4,3 +4,3 @@\n def handler(request):\n-    value = request.get('x')\n"
            "+    value = request.get('y')\n     return value\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1 @@\n+# New\n"
            "--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n```\n")
    ops = normalise_paths(parse_patch(diff), {"app.py", "old.py"}.__contains__)
    assert [(op.kind, op.path) for op in ops] == [("update", "app.py"), ("add", "docs/new.md"), ("delete", "old.py")]
    out = apply_patch(ops, {"app.py": SOURCE, "old.py": "x\n"}.get).writes
    assert out == {"app.py": SOURCE.replace("get('x')", "get('y')"), "docs/new.md": "# New\n", "old.py": None}


def test_a_byte_order_mark_neither_hides_the_first_line_nor_gets_lost():
    source = "\ufeffimport os\nprint(os.sep)\n"
    out = apply(patch_of("b.py", " import os", "-print(os.sep)", "+print(os.linesep)"), {"b.py": source})
    assert out.writes["b.py"] == "\ufeffimport os\nprint(os.linesep)\n"


def test_a_python_file_with_a_byte_order_mark_is_still_checked():
    from gptoss_agent.tools.syntax_check import introduced_error

    assert introduced_error("b.py", "\ufeffx = 1\n", "\ufeffx = 2\n") is None
    assert "SyntaxError" in (introduced_error("b.py", "\ufeffx = 1\n", "\ufeffx = (2\n") or "")


def test_a_syntax_error_refusal_says_where_the_patch_changed_the_file():
    from gptoss_agent.tools.syntax_check import introduced_error

    source = "function f(a) {\n  if (a) {\n    return 1;\n  }\n  return 2;\n}\n\nfunction g() {\n  return 3;\n}\n"
    patch = patch_of("f.js", "   if (a) {", "-    return 1;", "+    if (a > 1) {", "+      return 1;")
    with pytest.raises(PatchError) as caught:
        apply(patch, {"f.js": source}, check=introduced_error)
    assert "hunks in this file start at line(s) 2" in str(caught.value)


def test_a_line_number_far_off_does_not_hide_a_unique_match():
    # Every line of the hunk is common near the hinted line; the whole hunk matches once, far below.
    source = "a\nb\nq\n" * 100 + "z\n" * 100 + "a\nb\nz\n"
    outcome = apply(patch_of("x.txt", " a", "-b", "+B", " z", header="@@ -5,3 +5,3 @@"), {"x.txt": source})
    assert outcome.writes["x.txt"] == "a\nb\nq\n" * 100 + "z\n" * 100 + "a\nB\nz\n"
    assert outcome.hunks[0].line == 401 and "off by +396" in outcome.hunks[0].detail
