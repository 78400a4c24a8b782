"""Host-side writes never pass through a link, never land in .git, and report files never follow a planted link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.security.hostfiles_fixtures import SECRET, ctx, outside, outside_untouched, repo, resolution  # noqa: F401
from gptoss_agent.tools.editing import apply_patch_tool
from gptoss_agent.tools.paths import PathRefused, write_new_file


def patch(*sections: str) -> str:
    return "*** Begin Patch\n" + "".join(sections) + "*** End Patch\n"


def update(path: str, old: str, new: str) -> str:
    return f"*** Update File: {path}\n@@\n-{old}\n+{new}\n"


def add(path: str, text: str) -> str:
    return f"*** Add File: {path}\n+{text}\n"


def apply(ctx, text: str):
    return apply_patch_tool.function(ctx, patch=text)


def test_update_through_a_folder_link_out_is_refused(ctx, repo, outside):
    (repo / "docs").symlink_to(outside)
    result = apply(ctx, patch(update("docs/f.txt", SECRET, "owned")))
    assert not result.ok and "symbolic link" in result.output
    assert outside_untouched(outside)


def test_add_under_a_folder_link_out_is_refused(ctx, repo, outside):
    (repo / "docs").symlink_to(outside)
    result = apply(ctx, patch(add("docs/new.txt", "planted")))
    assert not result.ok and outside_untouched(outside)


def test_update_of_a_file_link_is_refused_even_inside(ctx, repo, outside):
    (repo / "out.txt").symlink_to(outside / "f.txt")
    (repo / "alias.py").symlink_to("src/calc.py")
    assert not apply(ctx, patch(update("out.txt", SECRET, "owned"))).ok
    assert not apply(ctx, patch(update("alias.py", "    return a + b", "    return 0"))).ok
    assert outside_untouched(outside) and "a + b" in (repo / "src" / "calc.py").read_text()


def test_delete_of_a_link_out_leaves_its_target(ctx, repo, outside):
    (repo / "out.txt").symlink_to(outside / "f.txt")
    result = apply(ctx, patch("*** Delete File: out.txt\n"))
    assert not result.ok and outside_untouched(outside)


@pytest.mark.parametrize("target", [".git/hooks/pre-commit", "vendor/lib/.git/config", ".GIT/config"])
def test_writes_into_any_git_folder_are_refused(ctx, repo, target):
    result = apply(ctx, patch(add(target, "[core] hooksPath = /tmp/evil")))
    assert not result.ok and "writing inside .git is not allowed" in result.output
    assert not (repo / target).exists()


def test_a_patch_naming_a_secret_file_is_refused(ctx, repo):
    result = apply(ctx, patch(add("config/.env", "API_KEY=1")))
    assert not result.ok and "secret" in result.output and not (repo / "config").exists()


def test_a_failed_patch_writes_nothing_and_ordinary_patches_work(ctx, repo, outside):
    (repo / "docs").symlink_to(outside)
    result = apply(ctx, patch(update("src/calc.py", "    return a + b", "    return a * b"),
                              add("docs/x.txt", "planted")))
    assert not result.ok and "a + b" in (repo / "src" / "calc.py").read_text()
    ok = apply(ctx, patch(update("src/calc.py", "    return a + b", "    return a * b"), add("new/deep/x.txt", "hi")))
    assert ok.ok and (repo / "new" / "deep" / "x.txt").read_text() == "hi\n"


def test_a_patch_keeps_the_file_mode(ctx, repo):
    script = repo / "run.sh"
    script.write_text("echo one\n")
    script.chmod(0o755)
    assert apply(ctx, patch(update("run.sh", "echo one", "echo two"))).ok
    assert stat.S_IMODE(script.stat().st_mode) == 0o755 and script.read_text() == "echo two\n"


def test_report_file_planted_as_a_link_is_not_written_through(tmp_path):
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=/usr/bin\n")
    report = tmp_path / "plan.report.md"
    report.symlink_to(victim)
    with pytest.raises(PathRefused, match="symbolic link"):
        write_new_file(report, b"# report\n", mode=0o644)
    assert victim.read_text() == "export PATH=/usr/bin\n" and report.is_symlink()


def test_report_file_at_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "plan.report.md")
    with pytest.raises(PathRefused, match="FIFO"):
        write_new_file(tmp_path / "plan.report.md", b"x")


def test_write_new_file_replaces_a_regular_file_and_exclusive_refuses_it(tmp_path):
    target = tmp_path / "report.json"
    write_new_file(target, b"one")
    write_new_file(target, b"two")
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_new_file(target, b"three", exclusive=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary left behind
