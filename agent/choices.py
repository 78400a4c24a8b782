"""What a person chooses in flags, settings and the TUI: reasoning effort and sandbox mode, declared once.

Kept apart from the data classes in `types.py` so the command line can offer them without loading anything:
`gptoss-agent --help` builds its parser from these and imports nothing else of ours but the approval modes.
(The approval modes live with the approval policy, in `approvals.py`, which is just as light.)
"""

from __future__ import annotations

from typing import Literal, get_args

ReasoningEffort = Literal["low", "medium", "high"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = get_args(ReasoningEffort)  # the settings, flags and TUI read these
SandboxMode = Literal["auto", "bwrap", "landlock", "none"]
SANDBOX_MODES: tuple[SandboxMode, ...] = get_args(SandboxMode)  # the `sandbox` setting and the --sandbox flags
