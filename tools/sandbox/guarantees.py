"""The guarantees a mechanism gives on this machine, each with whether it holds and why not
(`gptoss-agent doctor`, the TUI). Reads what the probes found; starts nothing of its own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gptoss_agent.tools.sandbox import landlock, overlay as sandbox_overlay
from gptoss_agent.tools.sandbox.bwrap import UNPRIVILEGED_ID
from gptoss_agent.tools.sandbox.detect import Mechanism, landlock_isolation
from gptoss_agent.tools.sandbox.secrets import SCANNED_SYSTEM_TREES, system_scan_cut_short


@dataclass(frozen=True)
class Property:
    """One guarantee of the sandbox, whether it holds on this machine, and why not when it does not."""

    name: str
    holds: bool
    detail: str = ""


def sandbox_properties(mechanism: Mechanism | None, workspace: Path | None = None) -> tuple[Property, ...]:
    """The guarantees `mechanism` gives on this machine (for `workspace`, default the current folder),
    each with whether it holds (doctor, TUI)."""
    root = os.getuid() == 0
    if mechanism is None:
        return (Property("commands run", False, "no sandbox mechanism works here"),)
    if mechanism == "none":
        return (Property("confinement", False, "--sandbox none: commands run as you, unconfined"),)
    cut = system_scan_cut_short()
    common = (
        Property("no capabilities, no_new_privs", True),
        Property("seccomp deny list (mount, namespaces, ptrace, bpf, keyrings, io_uring, TIOCSTI, ...)", True),
        Property("cannot change another process's limits, priority or CPUs (prlimit, renice, taskset)", True),
        Property("credential files hidden (shared deny list)", True),
        Property("secret environment variables scrubbed", True),
        Property("root-only files unreadable", not cut,
                 ("as root the command is still uid 0 to file permissions: every entry of "
                  + ", ".join(SCANNED_SYSTEM_TREES) + " and / no ordinary user could read is masked "
                  "(scanned once per process); other trees (/usr, the repository's parents) are not scanned"
                  + (f"; NOT scanned whole (too big): {', '.join(cut)}" if cut else ""))
                 if root else "the command runs as you, not root"),
    )
    if mechanism == "bwrap":
        return common + (
            Property("no network (own network namespace)", True, "only the sandbox's own loopback `lo` is up"),
            Property("sockets: AF_INET, AF_INET6, AF_NETLINK only (AF_UNIX, AF_VSOCK, AF_PACKET, ... refused)", True),
            Property("unprivileged uid inside", not root,
                     f"uid {UNPRIVILEGED_ID} by name only: the kernel still checks files as host uid 0 (with no "
                     "capabilities), so what root owns is readable unless masked (see root-only files) and "
                     "writable where bound writable (the repository)" if root else ""),
            Property("agent processes invisible (own PID namespace, fresh /proc)", True),
            Property(".git read-only", True),
            Property("tokens in .git/config remote URLs hidden (a scrubbed copy is shown)", True),
            Property("host terminals unreachable (own /dev)", True),
            Property("leftover processes killed when the command ends", True),
            exact_attribution(*sandbox_overlay.probe(Path(workspace or Path.cwd()).resolve())),
        )
    found = landlock_isolation()
    abi = landlock.abi_version()
    return common + (
        Property("no network (Landlock TCP rules and seccomp: no sockets at all)", True),
        Property("agent processes invisible (own PID namespace, fresh /proc)", found["fresh_proc"],
                 "" if found["fresh_proc"] else
                 "no PID/mount namespace here: /proc lists host processes (the agent is made non-dumpable "
                 "so its environment stays unreadable)"),
        Property("cannot signal the agent", found["pid_namespace"] or abi >= 6,
                 "" if found["pid_namespace"] else
                 "Landlock signal scoping (ABI 6+)" if abi >= 6 else "seccomp refuses the agent's pids only"),
        Property(".git read-only", found["readonly_git"],
                 "" if found["readonly_git"] else "no mount namespace: .git config/hooks restored after each "
                                                  "command instead"),
        Property("tokens in .git/config remote URLs hidden", False,
                 "the Landlock fallback cannot show a scrubbed copy: `git remote -v` prints them"),
        Property("host terminals unreachable (only /dev/null, zero, full, random, urandom, tty allowed)", True),
        Property("leftover processes killed when the command ends", True,
                 "PID namespace teardown" if found["pid_namespace"] else
                 "the agent is a child subreaper: every orphan (setsid, env -i) is re-parented to it and "
                 "killed at the end of the call"),
        Property("unprivileged uid inside", not root, "as root the fallback keeps uid 0 (with no capabilities)"
                 if root else "the command runs as you"),
        Property("private /tmp", True, "TMPDIR is a fresh folder per command; the host's /tmp is hidden"),
        exact_attribution(False, "the Landlock fallback has no copy-on-write overlay"),
    )


def exact_attribution(holds: bool, why: str) -> Property:
    """Whether a command's writes are known exactly (its overlay) or attributed by snapshots, and why."""
    detail = why if holds else (f"{why}; a file that changes in the work tree while a command runs is attributed "
                                "to that command (snapshots before and after)")
    return Property("exact attribution of command writes (copy-on-write overlay)", holds, detail)
