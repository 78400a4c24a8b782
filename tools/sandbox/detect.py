"""Which confinement mechanism works on this machine, and what the Landlock launcher achieves here.

Both probes start a process (`bwrap … true`, the launcher with `--probe`) and are cached for the life of
this process: the answer does not change while the agent runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from gptoss_agent.tools.sandbox import landlock, seccomp
from gptoss_agent.tools.sandbox.fallback import landlock_launcher

Mechanism = Literal["bwrap", "landlock", "none"]


class SandboxUnavailable(RuntimeError):
    """No confinement mechanism works here; the message names the fix."""


@dataclass(frozen=True)
class SandboxReport:
    """Which mechanism is active and why (`gptoss-agent doctor`, the status bar)."""

    mechanism: Mechanism | None
    reason: str
    checks: tuple[str, ...] = field(default_factory=tuple)


@lru_cache(maxsize=1)
def _bwrap_works() -> tuple[bool, str]:
    path = shutil.which("bwrap")
    if path is None:
        return False, "bwrap is not installed (Debian/Ubuntu: apt install bubblewrap)"
    probe = subprocess.run([path, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/",
                            "true"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        return False, f"bwrap is refused here: {probe.stderr.strip() or probe.returncode}"
    return True, f"bwrap at {path} works"


def detect(requested: str = "auto") -> SandboxReport:
    """Pick the mechanism for `requested` (auto | bwrap | landlock | none)."""
    bwrap_ok, bwrap_why = _bwrap_works()
    abi = landlock.abi_version()
    try:
        seccomp.build_filter(deny_all_sockets=True)
        seccomp_ok, seccomp_why = True, "seccomp filter available"
    except seccomp.SeccompUnavailable as exc:
        seccomp_ok, seccomp_why = False, str(exc)
    checks = (bwrap_why, f"Landlock ABI {abi}" if abi else "Landlock unavailable", seccomp_why)
    if requested == "none":
        return SandboxReport("none", "sandbox disabled by --sandbox none: commands run unconfined", checks)
    if requested in ("auto", "bwrap") and bwrap_ok and seccomp_ok:
        return SandboxReport("bwrap", "bubblewrap: namespaces without network, no capabilities, read-only "
                                      "system, seccomp", checks)
    if requested in ("auto", "landlock") and abi >= 1 and seccomp_ok:
        reason = "Landlock + seccomp (bwrap unavailable)" if requested == "auto" else "Landlock + seccomp (requested)"
        return SandboxReport("landlock", reason, checks)
    return SandboxReport(None, f"no sandbox mechanism for {requested!r}: install bubblewrap (apt install "
                               "bubblewrap), allow unprivileged user namespaces, or run with --sandbox none "
                               "at your own risk", checks)


@lru_cache(maxsize=1)
def landlock_isolation() -> dict[str, bool]:
    """What the Landlock launcher achieves on this machine for this user (one probe per process)."""
    found = {"pid_namespace": False, "mount_namespace": False, "fresh_proc": False, "readonly_git": False}
    scratch = Path(tempfile.mkdtemp(prefix="gptoss-probe-"))
    try:
        (scratch / "ro").mkdir()
        done = subprocess.run(landlock_launcher() + ["--probe", "--write", str(scratch), "--ro", str(scratch / "ro"),
                                             "--", "true"], capture_output=True, text=True, timeout=20)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                found.update(json.loads(line))
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return found
