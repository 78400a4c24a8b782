"""As root, a command must see only what any user could read in the system trees.

Root outside bubblewrap (and the Landlock fallback) is still uid 0 to the
kernel's owner checks, capabilities or not: an attack read a root-only VPN key
(/etc/a1-wireguard/wg0.conf, folder 0700, file 0600) that no fixed list named.
The sandbox now scans the system trees once per process and masks every entry
an ordinary user could not read. The agent here is a fresh stand-in process,
so its scan sees the files this test plants.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sandbox_agent import run_agent

root_only = pytest.mark.skipif(os.getuid() != 0, reason="only root can plant root-only files in /etc; for any "
                                                          "other user the kernel itself refuses them")


@pytest.fixture
def planted():
    tag = f"gptoss-f2-{uuid.uuid4().hex[:8]}"
    folder = Path("/etc") / tag
    folder.mkdir(mode=0o700)
    secret = f"PrivateKey = {uuid.uuid4().hex}"
    (folder / "wg0.conf").write_text(secret)
    os.chmod(folder / "wg0.conf", 0o600)
    loose = Path("/etc") / f"{tag}.key"
    loose.write_text(secret)
    os.chmod(loose, 0o600)
    group_only = Path("/etc") / f"{tag}.group"
    group_only.write_text(secret)
    os.chmod(group_only, 0o640)
    public = Path("/etc") / f"{tag}.public"
    public.write_text("anyone may read this")
    os.chmod(public, 0o644)
    try:
        yield folder, loose, group_only, public, secret
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for path in (loose, group_only, public):
            path.unlink(missing_ok=True)


@root_only
def test_root_only_files_in_system_trees_are_unreadable(sandbox_repo, mechanism, planted):
    folder, loose, group_only, public, secret = planted
    report = run_agent(sandbox_repo, mechanism, ["sh", "-c", f"cat {folder}/wg0.conf {loose} {group_only} {public}; "
                                                            f"ls -a {folder}; echo end"])
    assert report["alive"] and "end" in report["output"], report
    assert secret not in report["output"]
    assert "wg0.conf" not in report["output"].split("end")[0].split("anyone may read this")[-1]
    assert "anyone may read this" in report["output"]  # world-readable files stay visible


def test_ordinary_system_files_stay_readable(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "head -c 0 /etc/passwd && grep -c root /etc/passwd && ls /etc/ssl/certs "
                                             "| head -1 | wc -l"])
    assert result.ok and result.output.split()[:2] == ["1", "1"], result.output
