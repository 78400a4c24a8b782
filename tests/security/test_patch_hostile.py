"""apply_patch on hostile or careless input: bounded work, nothing written outside, never applied-and-broken.

The model's patch is untrusted (issue #11 item 7: the engine was quadratic in
the number of hunks; issue #12 item 1: it reported success while breaking the
file). These tests drive the pure engine and the real tool; none depends on
timing: linearity is checked through the engine's own count of line
comparisons, which the engine also enforces as a budget.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fixtures.patch_matrix_cases import (Edit, render, shift, spaces_for_tabs, tabs_for_spaces, trailing_spaces,
                                               update, without_blank_context)
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.editing import apply_patch_tool
from gptoss_agent.tools.patch import PatchError, apply_patch, parse_patch
from gptoss_agent.tools.syntax_check import introduced_error

FUNCTIONS = 10_000


def big_file(functions: int = FUNCTIONS) -> str:
    return "".join(f"def function_{i}(value):\n    result = value + {i}\n    return result\n\n\n"
                   for i in range(functions))


def hunk(i: int, anchor: str | None = "@@") -> list[str]:
    return ([anchor] if anchor else []) + [f" def function_{i}(value):", f"-    result = value + {i}",
                                           f"+    result = value + {i} + 1", "     return result"]


def patch_text(lines: list[str]) -> str:
    return "\n".join(["*** Begin Patch", "*** Update File: big.py", *lines, "*** End Patch"])


def test_ten_thousand_hunks_cost_line_comparisons_in_proportion_to_the_input():
    text = big_file()
    many = patch_text([line for i in range(FUNCTIONS) for line in hunk(i)])
    outcome = apply_patch(parse_patch(many), lambda _: text)
    assert outcome.writes["big.py"].count(" + 1\n") == FUNCTIONS
    assert [h.fuzz for h in outcome.hunks] == ["exact"] * FUNCTIONS
    # A search from the top of the file for every hunk would cost ~FUNCTIONS² / 2 comparisons.
    assert outcome.work <= 10 * (text.count("\n") + many.count("\n"))


def test_reversed_hunks_with_substring_anchors_are_refused_rather_than_scanned_quadratically():
    text = big_file()
    lines = [line for i in reversed(range(FUNCTIONS)) for line in hunk(i, anchor=f"@@ function_{i}(")]
    with pytest.raises(PatchError, match="would take too long"):
        apply_patch(parse_patch(patch_text(lines)), lambda _: text)


def test_the_same_hunks_in_reverse_with_exact_anchors_still_apply():
    text = big_file(2_000)
    lines = [line for i in reversed(range(2_000)) for line in hunk(i, anchor=f"@@ def function_{i}(value):")]
    outcome = apply_patch(parse_patch(patch_text(lines)), lambda _: text)
    assert outcome.writes["big.py"].count(" + 1\n") == 2_000


def test_a_file_of_identical_lines_makes_identical_hunks_ambiguous_not_slow():
    text = "x = 1\n" * 50_000
    lines = [line for _ in range(5_000) for line in ("@@", "-x = 1", "+x = 2")]
    with pytest.raises(PatchError, match=r"matches 64\+ places"):
        apply_patch(parse_patch(patch_text(lines)), lambda _: text)


def test_context_of_only_blank_lines_is_refused():
    with pytest.raises(PatchError, match="only blank lines"):
        apply_patch(parse_patch("*** Begin Patch\n*** Update File: a.py\n \n+x = 1\n \n*** End Patch"),
                    lambda _: "a = 1\n\n\nb = 2\n")


@pytest.mark.parametrize("name", ["a/../outside.txt", "b/../../outside.txt", "{outside}/outside.txt",
                                  "{root}/../outside.txt", "b/{root}/../outside.txt"])
def test_prefix_and_absolute_path_reading_never_leads_outside(tmp_path: Path, name: str):
    root, outside = tmp_path / "repo", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "outside.txt").write_text("keep\n")
    (tmp_path / "outside.txt").write_text("keep\n")
    path = name.replace("{root}", str(root)).replace("{outside}", str(outside))
    for body in (f"*** Update File: {path}\n-keep\n+changed", f"*** Add File: {path}\n+new", f"*** Delete File: {path}"):
        result = apply_patch_tool.function(ToolContext(workspace=root), patch=f"*** Begin Patch\n{body}\n*** End Patch")
        assert not result.ok
    assert (outside / "outside.txt").read_text() == "keep\n" and (tmp_path / "outside.txt").read_text() == "keep\n"
    assert not any(root.iterdir())


def test_a_syntax_error_in_one_file_refuses_the_whole_patch(tmp_path: Path):
    (tmp_path / "ok.py").write_text("def f():\n    return 1\n")
    patch = ("*** Begin Patch\n*** Update File: ok.py\n-    return 1\n+    return 2\n"
             "*** Add File: new.py\n+def g(:\n+    pass\n*** End Patch")
    result = apply_patch_tool.function(ToolContext(workspace=tmp_path), patch=patch)
    assert not result.ok and "new.py:1:" in result.output and "> " in result.output
    assert (tmp_path / "ok.py").read_text() == "def f():\n    return 1\n" and not (tmp_path / "new.py").exists()


def test_syntax_check_on_hostile_sources_judges_or_passes_but_never_crashes():
    deep_but_valid = "x = " + "1+" * 200_000 + "1\n"  # the compiler gives up (RecursionError): not an error
    assert introduced_error("deep.py", None, deep_but_valid) is None
    unbalanced = "x = " + "[" * 300_000 + "\n"
    assert "deep.js:1:" in (introduced_error("deep.js", None, unbalanced) or "")
    with_nul = "x = 1\x00\n"
    assert introduced_error("nul.py", None, with_nul) is None or "nul.py" in introduced_error("nul.py", None, with_nul)


# ------------------------------------------------------------------ fuzzed slips on real files

PYTHON_FIXTURES = ["textwrap_wrapper.py", "click_lazyfile.py", "cpuinfo_helpers.py", "packaging_version.py",
                   "libcst_visitor_crlf.py"]
BRACE_FIXTURES = ["markupsafe_speedups.c", "werkzeug_debugger.js"]

SLIPS = ["short", "long", "tabs", "spaces", "trailing", "bare", "no-blank-lines"]


def slipped_edits(seed: int = 1234, per_file: int = 40):
    """Random edits on real files (a changed line, or for Python a line inserted below it), each written with
    up to two random whitespace slips."""
    rng = random.Random(seed)
    for fixture in PYTHON_FIXTURES + BRACE_FIXTURES:
        python = fixture.endswith(".py")
        text = Edit(fixture, "", "").text.replace("\r\n", "\n")
        lines = text.split("\n")
        chosen = 0
        for index in rng.sample(range(3, len(lines) - 4), len(lines) - 7):
            line = lines[index]
            if python and (line.rstrip().endswith(("\\", ",", "(", "[", "{", ":")) or '"""' in line):
                continue
            if not python and (not line.rstrip().endswith(";") or "//" in line or "/*" in line):
                continue
            block = line + "\n"
            if not line.strip() or text.count(block) != 1 or text.count("\n" + block) != 1:
                continue
            indent = line[:len(line) - len(line.lstrip())]
            if python:
                new = rng.choice([line.rstrip() + "  # reviewed\n", block + indent + "_checked = True\n"])
            else:
                new = line.rstrip() + " /* reviewed */\n"
            yield Edit(fixture, block, new), rng.sample(SLIPS, rng.choice([0, 1, 1, 2]))
            chosen += 1
            if chosen == per_file:
                break


def apply_slips(edit: Edit, slips: list[str]) -> str:
    lines = edit.hunk()
    tabbed = "\t" in edit.old
    unit, width = ("\t", 1) if tabbed else (" ", 2 if edit.fixture.endswith(".js") else 4)
    for slip in slips:
        if slip == "short" and all(text.startswith(unit * width) or not text.strip() for _, text in lines):
            lines = shift(lines, -width, unit)
        elif slip == "long":
            lines = shift(lines, width, unit)
        elif slip == "tabs":
            lines = tabs_for_spaces(lines)
        elif slip == "spaces":
            lines = spaces_for_tabs(lines)
        elif slip == "trailing":
            lines = trailing_spaces(lines)
        elif slip == "no-blank-lines":
            lines = without_blank_context(lines)
    return render([update(edit.repo_path, [lines], bare_context="bare" in slips)])


def test_fuzzed_whitespace_slips_on_real_files_apply_as_intended_or_are_refused():
    applied = refused = 0
    broken: list[str] = []
    for edit, slips in slipped_edits():
        text = edit.text
        try:
            outcome = apply_patch(parse_patch(apply_slips(edit, slips)), lambda _: text, check=introduced_error)
        except PatchError:
            refused += 1
            continue
        if outcome.writes[edit.repo_path] == edit.intended():
            applied += 1
        else:
            broken.append(f"{edit.fixture} {slips}: {edit.old!r} -> {edit.new!r}")
    assert broken == []
    assert applied >= 3 * refused, (applied, refused)  # the slips are meant to be recoverable, mostly
