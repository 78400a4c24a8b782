"""Repository text for the developer message: AGENTS.md, the instructions file and the repo map, as data.

The repository is untrusted. Its files reach the model only inside a
labelled block that says whose words they are, and the repository's own text
cannot close that block early: a line that looks like our fence is escaped.
The two files the user designates for instructions (AGENTS.md and
.gptoss-agent/instructions.md) are read with the same bounds as every other
host-side read: beneath the repository, no link out (an AGENTS.md linked to
~/.ssh/id_rsa is refused), a regular file only, credentials refused, and cut
at INSTRUCTIONS_MAX_BYTES.
"""

from __future__ import annotations

from pathlib import Path

from gptoss_agent.agent import prompts
from gptoss_agent.agent.fences import repository_fence
from gptoss_agent.tools.paths import PathRefused, Workspace

INSTRUCTION_FILES = ("AGENTS.md", ".gptoss-agent/instructions.md")
INSTRUCTIONS_MAX_BYTES = 24_000
def read_instruction_file(root: Path, name: str) -> tuple[str | None, str | None]:
    """(text, None) for a readable instruction file, (None, why) when refused, (None, None) when absent."""
    with Workspace(root) as space:
        try:
            data, _ = space.read(name, max_bytes=INSTRUCTIONS_MAX_BYTES, truncate=True)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None, None
        except PathRefused as exc:
            return None, str(exc)
        except OSError as exc:
            return None, f"{name}: cannot read ({exc.strerror or exc})"
    text = data.decode("utf-8", errors="replace")
    if len(data) >= INSTRUCTIONS_MAX_BYTES:
        text = text[: text.rfind("\n") + 1 or len(text)] + f"[… cut at {INSTRUCTIONS_MAX_BYTES:,} bytes]"
    return text, None


def project_instructions_text(root: Path, *, repo_map: str = "") -> str:
    """Our instructions, the repository's instruction files (fenced), then the repo map (fenced, data only)."""
    parts = [prompts.load("instructions")]
    for name in INSTRUCTION_FILES:
        text, refused = read_instruction_file(root, name)
        if text is not None and text.strip():
            parts.append(prompts.render("project_file", name=name, block=repository_fence(name, text)))
        elif refused:
            parts.append(prompts.render("project_file_refused", name=name, reason=refused))
    if repo_map:
        parts.append(prompts.render("repo_map", block=repository_fence("repo map", repo_map)))
    return "\n\n".join(parts)
