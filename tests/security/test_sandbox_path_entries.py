"""A PATH entry the user cannot reach is skipped, never a reason for every command to fail.

Found by running as `nobody` with root's PATH (`/root/.local/bin` first): every
container.exec and run_tests failed with PermissionError before anything ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.security.users import NEEDS_ANOTHER_USER, can_become_nobody
from gptoss_agent.tools.sandbox import binds


def _as_nobody(check) -> int:
    """Run `check()` in a forked child that is (or becomes) an unprivileged user; its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            if os.getuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            check()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(os.getuid() == 0 and not can_become_nobody(), reason=NEEDS_ANOTHER_USER)
def test_an_unreachable_path_entry_in_a_private_home_is_skipped(tmp_path: Path):
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    home.chmod(0o700)  # owned by whoever runs the test; the child below is someone else
    if os.getuid() != 0:
        home.chmod(0o000)  # an unprivileged run cannot change user: lock its own folder instead

    def check():
        kept = binds._toolchain_paths_for(home, f"{home / '.local' / 'bin'}{os.pathsep}/usr/bin")
        assert all(not p.is_relative_to(home) for p in kept)

    try:
        assert _as_nobody(check) == 0
    finally:
        home.chmod(0o700)
