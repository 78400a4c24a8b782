"""Where every command the model asks for runs, confined: this package is the sandbox.

Primary mechanism: bubblewrap. New user, pid, ipc, uts, cgroup and network
namespaces (no network: only the sandbox's own loopback is up), every capability
dropped, uid 65534 inside when the agent is root (a name only: files still see
host uid 0, hence the scan of secrets.py), the root file system read-only, the
workspace read-write with its `.git` read-only (planted hooks or config would
otherwise run later on the host), tmpfs over /tmp, /run, /dev/shm, $HOME, /root
and /home (secrets and agent sockets stay out of sight; only toolchain bin/lib
folders are re-bound read-only), every credential file of the shared deny list
masked wherever it is still visible, and a seccomp filter in the spirit of
Docker's default profile (seccomp.py).

Root outside the sandbox is still uid 0 to the kernel's file permission
checks, even with no capabilities: so files only root may read are masked
(a fixed list, plus a scan of the system trees; secrets.py).
`.git/config` is shown to bwrap commands without URL credentials. Under
Landlock, only a few device files are allowed (never /dev/pts), and where it
gets no PID namespace the agent is a child subreaper that kills every stray
child at the end of each call (agent_children.py).

Fallback where bwrap is missing or refused: Landlock plus seccomp, launched by
landlock_launch.py, which adds a PID namespace with a fresh /proc, a read-only
`.git`, and a parent-death signal where the kernel allows; `.git`'s config and
hooks are also checked after each command and restored without following links
(tools.git_snapshot). `Sandbox.properties()` says which guarantees hold on this
machine. If neither mechanism works, commands are refused with the fix, unless
the user chose `--sandbox none`.

Under bwrap each command also gets a copy-on-write view of the work tree
(overlay.py): what it wrote is carried into the tree when it ends
(overlay_changes.py), so the agent knows exactly which writes are its own.

Every command also gets resource limits, a wall-clock timeout, a scrubbed
environment, output capped as head + tail, and at its end every process it
left behind is killed.

The modules, one job each:
  runner.py           the Sandbox: wraps, executes, carries overlay writes, restores `.git`
  detect.py           which mechanism works here (SandboxReport) and what the Landlock launcher achieves
  guarantees.py       the guarantees a mechanism gives on this machine (Property: doctor, TUI)
  bwrap.py            the bubblewrap command line: namespaces, private trees, binds, masks, seccomp fd
  fallback.py         the Landlock launcher's command line; the agent made non-dumpable
  binds.py            which toolchain and project-environment folders a command gets back
  limits.py           Limits, rlimits through `prlimit`, the pids cgroup
  execution.py        start one wrapped command, supervise it (timeout, cancel), its CommandResult
  processes.py        kill what a command left: cgroup, process group, the sweep by run id
  output.py           output capped as head + tail, binary output named
  trusted.py          run_trusted: host helpers we trust (ripgrep); git goes through tools.host_git
  secrets.py          the credential files to mask and the environment to scrub
  seccomp.py, landlock.py                 the kernel filters, built and installed
  landlock_launch.py, overlay_launch.py   the launchers that confine, then exec the command
  overlay.py, overlay_changes.py, overlay_fs.py   the copy-on-write view and carrying its writes back
  agent_children.py   the subreaper's bookkeeping of the agent's own children
  isolated_python.py  how the launchers start (`python -I`), so a repository cannot stand in for them

Which modules start processes: execution.py (every command, through `Sandbox.run`), detect.py (two
probes, once per process), overlay.py (its probe), trusted.py (run_trusted's host helpers); inside a
command's own process tree, landlock_launch.py and overlay_launch.py fork and exec the command. Nothing
else in this package starts one.

Other code imports from the package (`from gptoss_agent.tools.sandbox import Sandbox`); the names below
are re-exported so that no importer needs to know which module holds what.
"""

from __future__ import annotations

from gptoss_agent.tools.sandbox.detect import Mechanism, SandboxReport, SandboxUnavailable, detect, landlock_isolation
from gptoss_agent.tools.sandbox.execution import CommandResult
from gptoss_agent.tools.sandbox.guarantees import Property, sandbox_properties
from gptoss_agent.tools.sandbox.limits import Limits
from gptoss_agent.tools.sandbox.runner import Sandbox
from gptoss_agent.tools.sandbox.trusted import run_trusted

# Host git lives in tools/host_git.py (the one place that runs git on the host); these names stay importable.
from gptoss_agent.tools.host_git import HARDENED_GIT_CONFIG, hardened_git_env  # noqa: E402,F401

__all__ = ["CommandResult", "HARDENED_GIT_CONFIG", "Limits", "Mechanism", "Property", "Sandbox", "SandboxReport",
           "SandboxUnavailable", "detect", "hardened_git_env", "landlock_isolation", "run_trusted",
           "sandbox_properties"]
