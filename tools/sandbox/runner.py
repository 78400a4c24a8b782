"""The Sandbox: one workspace, its mechanism and limits; `run` wraps a command (bwrap or the fallback),
executes it, carries what it wrote through the overlay and restores `.git` where the fallback needs it."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

from gptoss_agent.tools import git_snapshot, python_env
from gptoss_agent.tools.sandbox import agent_children, bwrap, fallback, overlay as sandbox_overlay, overlay_changes
from gptoss_agent.tools.sandbox.binds import environment_binds, toolchain_paths
from gptoss_agent.tools.sandbox.detect import SandboxUnavailable, detect, landlock_isolation
from gptoss_agent.tools.sandbox.execution import CommandResult, execute
from gptoss_agent.tools.sandbox.guarantees import Property, exact_attribution, sandbox_properties
from gptoss_agent.tools.sandbox.limits import Limits
from gptoss_agent.tools.sandbox.secrets import hidden_paths, scrub_environment


class Sandbox:
    """Runs commands confined to one workspace."""

    def __init__(self, workspace: Path, *, mode: str = "auto", limits: Limits = Limits(),
                 python: str | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.limits = limits
        # The project's own interpreter (tools.python_env): shown read-only, first on PATH, for every command.
        self.python_env = python_env.detect(self.workspace, override=python)
        self.report = detect(mode)
        self.mechanism = self.report.mechanism
        self._isolation = {"pid_namespace": True}
        self._overlay_off: str | None = None  # why the overlay stopped working in this process, if it did
        self._placed: dict[str, tuple[int, int]] = {}  # what earlier carries left (tools.overlay_changes.apply)
        if self.mechanism == "landlock":
            agent_children.become_subreaper()
            self._isolation = landlock_isolation()
            if not self._isolation["fresh_proc"]:
                fallback.make_undumpable()

    def properties(self) -> tuple[Property, ...]:
        """The guarantees this sandbox gives here (see sandbox_properties)."""
        props = sandbox_properties(self.mechanism, self.workspace)
        off = self._overlay_off
        if off is None and self.mechanism == "bwrap":
            holds, why = sandbox_overlay.usable(self.workspace)
            off = None if holds else why  # e.g. a file system mounted inside the work tree since the probe
        if off:
            props = tuple(exact_attribution(False, off) if p.name.startswith("exact attribution")
                          else p for p in props)
        return props

    @property
    def exact_attribution(self) -> bool:
        """Whether each command gets a copy-on-write view, so its writes are known exactly (tools.sandbox_overlay)."""
        return (self.mechanism == "bwrap" and self._overlay_off is None
                and sandbox_overlay.usable(self.workspace)[0])

    def run(self, argv: Sequence[str], *, cwd: Path | None = None, timeout_s: float | None = None,
            env: Mapping[str, str] | None = None, cancel: threading.Event | None = None,
            scratch: Path | None = None) -> CommandResult:
        """Run `argv` confined; never raises for what the command itself does.

        `scratch` is a host folder the command may write (a test report the agent reads back).
        """
        if self.mechanism is None:
            raise SandboxUnavailable(self.report.reason)
        cwd = (cwd or self.workspace).resolve()
        timeout = timeout_s or self.limits.timeout_s
        # bwrap gives the command a private /tmp; the Landlock fallback needs a real folder for it.
        tmp = Path(tempfile.mkdtemp(prefix="gptoss-sbx-")) if self.mechanism == "landlock" else Path("/tmp")
        git_before = git_snapshot.take(self.workspace) if self.mechanism == "landlock" else None
        layers = sandbox_overlay.prepare(self.workspace) if self.exact_attribution else None
        pass_fds: tuple[int, ...] = ()
        try:
            command, pass_fds = self._wrap(list(argv), cwd, tmp, scratch)
            if layers is not None:
                command = layers.wrap(command)
            result = execute(command, cwd=cwd, env=self._environment(tmp, env),
                              pass_fds=pass_fds + ((layers.report_write,) if layers else ()),
                              timeout=timeout, cancel=cancel, limits=self.limits, argv=tuple(argv),
                              mechanism=self.mechanism, sweep=not self._isolation["pid_namespace"])
        except BaseException:
            if layers is not None:
                layers.discard()
            raise
        finally:
            for fd in pass_fds:
                os.close(fd)
            if self.mechanism == "landlock":
                shutil.rmtree(tmp, ignore_errors=True)
        if layers is not None:
            result = self._carry(layers, result)
        if git_before is not None:
            restored = git_snapshot.restore(self.workspace, git_before)
            if restored:
                result = replace(result, notes=result.notes + (
                    "the command changed .git (" + ", ".join(restored) + "); those changes were undone",))
        return result

    def _carry(self, layers: sandbox_overlay.Layers, result: CommandResult) -> CommandResult:
        """After an overlay command (ended, timed out, killed or cancelled alike): carry what it wrote into
        the work tree, hand the outcome to whoever is collecting (tools.attribution), report conflicts."""
        error = layers.setup_error()
        if error:  # the launcher failed before the command: nothing ran, so it is safe to say "run it again"
            layers.discard()
            self._overlay_off = error
            return replace(result, exit_code=None, output=(
                f"the command did not run: {error}. Commands now write the work tree directly (their writes "
                "are attributed by snapshots); run it again."))
        collector = sandbox_overlay.current_collector()
        stale = sandbox_overlay.stale_notice()
        failed = None
        try:
            outcome = overlay_changes.apply(
                layers.upper, self.workspace, started_ns=layers.started_ns,
                conflicts_dir=layers.root.parent / "conflicts" / layers.root.name,
                expected=collector.expected if collector else (lambda path: overlay_changes.UNKNOWN),
                placed_before=self._placed, fs_type=sandbox_overlay.mount_fs_type(self.workspace),
                recordable=collector.recordable if collector else (lambda path: True))
        except overlay_changes.CarryFailed as exc:  # what was carried is still recorded; the rest stays kept
            outcome, failed = exc.outcome, exc
        except Exception as exc:  # nothing carried: the user's files are untouched, the command's are kept
            outcome, failed = overlay_changes.Outcome(), exc
        if failed is not None or outcome.left:  # keep the layer: what is left in it is the command's, not lost
            layers.keep()
        else:
            layers.discard()
        if len(self._placed) > 100_000:
            self._placed.clear()
        self._placed.update(outcome.placed)
        if collector is not None:
            collector.outcomes.append(outcome)
        notes = tuple(outcome.notes(str(layers.upper)))
        if failed is not None:
            notes += (f"what the command wrote could not all be carried into the work tree ({failed}); what was "
                      f"not carried is kept at {layers.upper}",)
        return replace(result, notes=result.notes + notes + ((stale,) if stale else ()))

    # ------------------------------------------------------------------ mechanisms

    def _wrap(self, argv: list[str], cwd: Path, tmp: Path, scratch: Path | None):
        if self.mechanism == "none":
            return argv, ()
        home = Path(os.environ.get("HOME", "/root")).resolve()
        environment = environment_binds(self.python_env.visible)
        toolchains = toolchain_paths(home, environment)
        hidden = hidden_paths(self.workspace, home, toolchains, environment)
        if self.mechanism == "bwrap" and self.exact_attribution:
            hidden = [*hidden, sandbox_overlay.layers_base()]  # other commands' layers and kept conflicts
        if self.mechanism == "landlock":
            return fallback.command(argv, workspace=self.workspace, home=home, toolchains=toolchains, hidden=hidden,
                                    tmp=tmp, scratch=scratch, protect_agent=not self._isolation["pid_namespace"]), ()
        return bwrap.command(argv, workspace=self.workspace, cwd=cwd, home=home, toolchains=toolchains,
                             hidden=hidden, scratch=scratch)

    def _environment(self, tmp: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = scrub_environment(os.environ, extra)
        env.pop("VIRTUAL_ENV", None)  # the agent's own; the project's is set next
        env.update(python_env.sandbox_variables(self.python_env, env.get("PATH", "/usr/local/bin:/usr/bin:/bin")))
        env.setdefault("LANG", "C.UTF-8")
        # No bytecode caches: a test run must not leave __pycache__ for the agent to commit.
        env.update(HOME=os.environ.get("HOME", "/root"), TERM="dumb", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
                   TMPDIR="/tmp" if self.mechanism == "bwrap" else str(tmp), GIT_TERMINAL_PROMPT="0",
                   GPTOSS_AGENT_SANDBOX=self.mechanism or "none", GPTOSS_AGENT_RUN=uuid.uuid4().hex)
        if self.mechanism == "landlock":
            env["GIT_CONFIG_GLOBAL"] = "/dev/null"  # $HOME is unreadable there; git treats that as fatal
        return env
