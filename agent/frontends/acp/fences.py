"""Text an editor renders as markdown, shown verbatim: fences nothing inside can close, commands as they will run.

An ACP client renders a tool card's and a permission dialog's text as
markdown. Untrusted text (a file, a command's output, the model's command)
goes inside a code fence longer than any run of backticks in it, so a ``` in
a repository file cannot end the block and turn the rest into headings,
links or images. A command the user approves is shown whole, one argument
per shell word (shlex quoting keeps the boundaries visible), through
`safe_text.command` like the TUI's approval (every space other than " "
escaped), and its one-line title says when it was cut.
"""

from __future__ import annotations

import shlex
from typing import Any

from gptoss_agent.agent.fences import fenced
from gptoss_agent.agent.safe_text import block, command

def fenced_block(text: str, info: str = "") -> str:
    """Untrusted text, neutralised (safe_text.block) and fenced."""
    return fenced(block(text), info)


def command_text(cmd: Any) -> str:
    """The command as the shell will see it: a list is joined with shell quoting, a string stays as it is."""
    if isinstance(cmd, (list, tuple)):
        return shlex.join(str(part) for part in cmd)
    return str(cmd)


def command_preview(cmd: Any) -> str:
    """The whole command, verbatim and neutralised, in a fence: what a permission dialog shows."""
    return fenced(command(command_text(cmd)), "sh")


def command_title(cmd: Any, width: int, verb: str = "Run") -> str:
    """"Run pytest -q": the command's first line, cut to `width`, saying what was cut."""
    text = command(command_text(cmd))
    lines = text.split("\n")
    first = lines[0]
    more = len(lines) - 1
    title = f"{verb} {first}"
    if len(title) > width:
        title = title[:width].rstrip() + f"… (+{len(title) - width} characters)"
    if more:
        title += f" … ({more} more line{'s' if more != 1 else ''})"
    return title
