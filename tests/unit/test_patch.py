"""The apply_patch engine on a table of real patch shapes (pure: files are a dict)."""

from __future__ import annotations

import pytest

from tools.patch import PatchError, apply_patch, parse_patch

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


def test_whitespace_drift_in_context_is_tolerated():
    patch = "*** Begin Patch\n*** Update File: app.py\n def handler(request):  \n-  value = request.get('x')\n+    value = 3\n*** End Patch"
    assert "    value = 3" in run(patch, {"app.py": SOURCE})["app.py"]


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
