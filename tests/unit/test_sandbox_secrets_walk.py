"""The two budgeted walks that decide what the sandbox masks: credentials under a folder, private system entries."""

from __future__ import annotations

import os

import pytest

import gptoss_agent.tools.sandbox.secrets as secrets


@pytest.fixture(autouse=True)
def fresh_caches():
    secrets._credentials_deep_cached.cache_clear()
    secrets._system_scan.cache_clear()
    yield
    secrets._credentials_deep_cached.cache_clear()
    secrets._system_scan.cache_clear()


def test_credentials_deep_masks_secrets_and_private_entries_at_any_depth_but_never_a_link(tmp_path):
    deep = tmp_path / "src" / "app" / "config"
    deep.mkdir(parents=True)
    (deep / ".env").write_text("TOKEN=1")
    (deep / "settings.py").write_text("x = 1")  # code named like a secret is not one
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_rsa").write_text("key")  # inside a masked folder: the folder is enough
    (tmp_path / "src" / "mine").write_text("private")
    os.chmod(tmp_path / "src" / "mine", 0o600)
    (tmp_path / "src" / "link.env").symlink_to(deep / ".env")
    found = set(secrets._credentials_deep_cached(tmp_path, ()))
    assert found == {deep / ".env", tmp_path / ".ssh", tmp_path / "src" / "mine"}


def test_credentials_deep_over_its_budget_is_none_so_the_caller_masks_the_whole_folder(tmp_path, monkeypatch):
    for i in range(5):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_text("x")
    monkeypatch.setattr(secrets, "DEEP_SCAN_BUDGET", 9)
    assert secrets._credentials_deep_cached(tmp_path, ()) is None
    secrets._credentials_deep_cached.cache_clear()
    monkeypatch.setattr(secrets, "DEEP_SCAN_BUDGET", 10)
    assert secrets._credentials_deep_cached(tmp_path, ()) == ()


def test_the_system_scan_finds_private_entries_and_says_which_tree_its_budget_cut_short(tmp_path, monkeypatch):
    small, large = tmp_path / "small", tmp_path / "large"
    (small / "sub").mkdir(parents=True)
    (small / "sub" / "key").write_text("k")
    os.chmod(small / "sub" / "key", 0o600)
    for i in range(3):
        (small / "sub" / f"f{i}").write_text("x")  # small: 5 entries, over the budget in its last folder
    for i in range(4):
        (large / f"d{i}").mkdir(parents=True)
        (large / f"d{i}" / "f").write_text("x")
    monkeypatch.setattr(secrets, "SCANNED_SYSTEM_TREES", (str(small), str(large)))
    monkeypatch.setattr(secrets, "SCAN_BUDGET", 3)
    found, cut = secrets._system_scan()
    assert small / "sub" / "key" in found
    assert cut == (str(large),)  # small had nothing left to read: walked whole
