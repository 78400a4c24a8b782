"""Approvals: the hook the loop calls before a mutating tool, the approval modes, and the one rule behind them.

Every front-end decides with `approval_for` (headless through `policy_approver`,
the TUI and the editor through `must_ask` plus a person's answer), so a mode
means the same thing wherever it is set: the modes are declared here once and
the settings, the flags, the TUI's /approval and its palette all read them.
Dependency-free on purpose: settings and the command line import it without
loading the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, get_args

if TYPE_CHECKING:
    from gptoss_agent.agent.model.completion import ToolCallRequest
    from gptoss_agent.tools.registry import ToolSpec

ApprovalMode = Literal["read-only", "ask", "auto-edit", "full-auto"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = get_args(ApprovalMode)
EDIT_TOOLS = frozenset({"repo_browser.apply_patch"})  # what auto-edit approves by itself


class Refused(Exception):
    """Raised by an approver to refuse a tool call; the message goes back to the model."""


Approver = Callable[["ToolCallRequest", "ToolSpec"], None]


def approve_all(call: ToolCallRequest, spec: ToolSpec) -> None:
    """Everything runs (inside the sandbox)."""


def deny_all(call: ToolCallRequest, spec: ToolSpec) -> None:
    raise Refused("the user does not allow changes in this session")


def approval_for(mode: str, spec: ToolSpec) -> str:
    """Whether one tool may run under one approval mode ("allow", "ask" or "refuse"): one rule for every front-end.

    A tool that can write (edits, commands, run_tests, commits) is `mutating`:
    read-only refuses all of them (nothing can write), ask asks for each,
    auto-edit allows file edits and asks for the rest, full-auto allows all.
    An unknown mode refuses: a typo must not open the gate.
    """
    if not spec.mutating:
        return "allow"
    if mode == "full-auto":
        return "allow"
    if mode == "auto-edit":
        return "allow" if spec.recipient in EDIT_TOOLS else "ask"
    if mode == "ask":
        return "ask"
    return "refuse"


def must_ask(mode: str, spec: ToolSpec) -> bool:
    """The mode's rule for one call: False, it may run; True, a person must answer first.

    Raises Refused when the mode forbids the call outright, so no answer given
    earlier ("always") can let it through.
    """
    decision = approval_for(mode, spec)
    if decision == "refuse":
        raise Refused(f"{spec.recipient} can change files (it writes or runs code), and this session is "
                      f"{mode if mode in APPROVAL_MODES else 'in an unknown approval mode, so read-only'}")
    return decision == "ask"


def policy_approver(mode: str) -> Approver:
    """Headless approvals from the --approval flag (no one is there to ask)."""
    def approve(call: ToolCallRequest, spec: ToolSpec) -> None:
        if must_ask(mode, spec):
            raise Refused(f"{spec.recipient} needs approval and no one can give it here; "
                          "the user can rerun with --approval full-auto")
    return approve
