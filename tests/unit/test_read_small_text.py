"""read_small_text: the one reader of a repository's small configuration files (.python-version, pyproject.toml)."""

from __future__ import annotations

import os

from gptoss_agent.tools.paths import read_small_text


def test_a_regular_file_is_read_up_to_the_cap_and_bad_bytes_do_not_raise(tmp_path):
    (tmp_path / "pyproject.toml").write_bytes(b"[project]\nname = \"x\xff\"\n" + b"#" * 10_000)
    text = read_small_text(tmp_path / "pyproject.toml", 100)
    assert text is not None and text.startswith("[project]\nname = \"x\ufffd\"") and len(text) <= 100


def test_a_link_a_fifo_a_folder_and_a_missing_file_read_as_nothing_without_waiting(tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("3.12\n")
    (tmp_path / "linked").symlink_to(secret)  # a repository's file linked to a host file shows nothing of it
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would hang here forever
    (tmp_path / "folder").mkdir()
    for name in ("linked", "fifo", "folder", "missing", "bad\0name"):
        assert read_small_text(tmp_path / name, 4096) is None, name
