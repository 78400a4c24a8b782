"""container.exec: run a command in the sandbox (the name gpt-oss was trained to call)."""

from __future__ import annotations

import os
import shlex
import shutil

from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.registry import ToolError, tool
from gptoss_agent.tools.sandbox import CommandResult, SandboxUnavailable

MAX_TIMEOUT_S = 600


@tool("container.exec", mutating=True, string_argument="cmd")
def exec_command(ctx: ToolContext, cmd: list[str] | str, timeout: int = 60, workdir: str = "") -> ToolResult:
    """Run a command in the repository, in a sandbox without network. Output is stdout and stderr merged.

    Args:
        cmd: the command as a list of arguments, or one shell command line
        timeout: seconds before the command and everything it started are killed
        workdir: folder to run in, relative to the repository root
    """
    from gptoss_agent.tools.paths import PathRefused, resolve

    sandbox = ctx.require_sandbox()
    argv = keep_path_in_login_shell(_argv(cmd))
    if not argv:
        raise ToolError("cmd is empty")
    try:
        cwd = resolve(ctx.workspace, workdir or ".", allow_secrets=True)
    except PathRefused as exc:
        raise ToolError(str(exc)) from None
    try:
        from gptoss_agent.tools.attribution import recording

        with recording(ctx):  # what the command wrote becomes the agent's (for commit and undo)
            result = sandbox.run(argv, cwd=cwd, timeout_s=min(max(timeout, 1), MAX_TIMEOUT_S), cancel=ctx.cancel)
    except SandboxUnavailable as exc:
        raise ToolError(f"cannot run commands: {exc}") from None
    return command_result(result)


def _argv(cmd: list[str] | str) -> list[str]:
    """A list runs as given; a string, or a one-element list holding a command line, runs in a shell."""
    if isinstance(cmd, list):
        if len(cmd) == 1 and any(c in cmd[0] for c in " |&;<>$`*"):
            cmd = cmd[0]
        else:
            return [str(part) for part in cmd]
    shell = "bash" if shutil.which("bash") else "sh"
    if isinstance(cmd, str) and cmd.strip():
        return [shell, "-c", cmd]
    return []


_SHELLS = ("bash", "sh", "dash")
_OPTION_WITH_VALUE = ("-o", "+o", "-O", "+O")


def keep_path_in_login_shell(argv: list[str]) -> list[str]:
    """`bash -lc CMD` (the form gpt-oss uses most) without the login profile, so PATH stays the sandbox's.

    A login shell reads /etc/profile, which resets PATH to the system's: the project's interpreter (first
    on PATH) and every toolchain folder would vanish. Inside the sandbox $HOME is empty, so the profile
    adds nothing else a command needs. bash keeps its login mode (`--noprofile`); sh and dash, which have
    no such option, lose the `-l`.
    """
    if not argv or os.path.basename(argv[0]) not in _SHELLS:
        return argv
    bash = os.path.basename(argv[0]) == "bash"
    rest: list[str] = []
    login = False
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg == "--" or not arg.startswith(("-", "+")) or arg in ("-", "+"):
            break
        if arg in _OPTION_WITH_VALUE:
            rest += argv[index:index + 2]
            index += 2
            continue
        if arg == "--login":
            login = True
            if bash:
                rest.append(arg)
        elif arg.startswith("-") and not arg.startswith("--") and "l" in arg:
            login = True
            kept = arg if bash else arg.replace("l", "")
            if kept != "-":
                rest.append(kept)
        else:
            rest.append(arg)
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg:
            index += 1
            break  # the command string follows
        index += 1
    if not login:
        return argv
    head = [argv[0], "--noprofile"] if bash else [argv[0]]
    return head + rest + argv[index:]


def command_result(result: CommandResult) -> ToolResult:
    """The model's view of a command: status line, notes, then the (capped) output."""
    if result.exit_code is None:
        status = "killed" if (result.timed_out or result.cancelled) else "could not start"
    else:
        status = f"exit code {result.exit_code}"
    lines = [f"$ {shlex.join(result.argv)}", f"[{status}, {result.duration_s:.2f}s]"]
    lines += [f"[{note}]" for note in result.notes]
    if result.omitted_bytes:
        lines.append(f"[output capped: {result.omitted_bytes} bytes omitted from the middle]")
    if result.output:
        lines.append(result.output.rstrip("\n"))
    return ToolResult(result.ok, "\n".join(lines), truncated=bool(result.omitted_bytes),
                      data={"exit_code": result.exit_code, "timed_out": result.timed_out,
                            "duration_s": round(result.duration_s, 3), "omitted_bytes": result.omitted_bytes})
