"""The apply_patch tool: the pure patch engine wired to the workspace, atomic writes and undo.

All I/O goes through one `tools.paths.Workspace`: every read, write and
delete is a single operation beneath the repository's directory descriptor,
so a folder swapped for a symlink between the check and the write (by a
command running in the sandbox, or a second agent in the same checkout)
makes the operation fail; it never lands outside. Writes never pass
through any link, even one that stays inside.
"""

from __future__ import annotations

from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.paths import PathRefused, Workspace
from gptoss_agent.tools.patch import PatchError, apply_patch, normalise_paths, parse_patch
from gptoss_agent.tools.registry import ToolError, tool
from gptoss_agent.tools.syntax_check import introduced_error


@tool("repo_browser.apply_patch", mutating=True, string_argument="patch")
def apply_patch_tool(ctx: ToolContext, patch: str) -> ToolResult:
    """Edit files with a patch in the apply_patch format ('*** Begin Patch' … '*** End Patch').

    Args:
        patch: the whole patch text, with Add File / Update File / Delete File sections
    """
    try:
        ops = parse_patch(patch)
    except PatchError as exc:
        raise ToolError(f"apply_patch failed, nothing was written: {exc}") from None
    with Workspace(ctx.workspace) as space:
        return _apply(ctx, space, ops)


def _apply(ctx: ToolContext, space: Workspace, ops) -> ToolResult:
    try:
        ops = normalise_paths(ops, lambda name: _exists(space, name), roots=(space.given, space.real))
    except PatchError as exc:
        return ToolResult.error(f"apply_patch failed, nothing was written: {exc}")
    try:
        targets = {name: space.check_writable(name) for op in ops for name in (op.path, op.move_to) if name}
    except (OSError, PathRefused) as exc:
        return ToolResult.error(f"apply_patch failed, nothing was written: {exc}")

    originals: dict[str, bytes | None] = {}

    def read(name: str) -> str | None:
        try:
            data, _ = space.read(targets[name], follow_inside=False)
        except FileNotFoundError:
            originals[name] = None
            return None
        except IsADirectoryError:
            raise PatchError(f"{name} is a folder") from None
        originals[name] = data
        return data.decode("utf-8", errors="surrogateescape")

    try:
        outcome = apply_patch(ops, read, check=introduced_error)
    except PatchError as exc:
        return ToolResult.error(str(exc))
    except (OSError, PathRefused) as exc:
        return ToolResult.error(f"apply_patch failed, nothing was written: {exc}")

    written: list[str] = []
    try:
        for name, text in outcome.writes.items():
            if text is None:
                space.remove(targets[name])
            else:
                space.write(targets[name], text.encode("utf-8", errors="surrogateescape"))
            written.append(name)
    except (OSError, PathRefused) as exc:
        problems = _roll_back(space, targets, originals, written)
        restored = "every file was restored" if not problems else "could not restore: " + "; ".join(problems)
        return ToolResult.error(f"apply_patch failed while writing ({exc}); {restored}")

    for name, text in outcome.writes.items():
        after = None if text is None else text.encode("utf-8", errors="surrogateescape")
        ctx.record_write(targets[name], originals.get(name), after)
    summary = "\n".join(outcome.summary + [f"hunk {h.number} of {h.path} at line {h.line}: matched {h.fuzz}"
                                            f"{' (' + h.detail + ')' if h.detail else ''}; check it"
                                            for h in outcome.fuzzy_hunks()])
    return ToolResult(True, f"Patch applied.\n{summary}", display=outcome.diff,
                      data={"files": list(outcome.writes), "added": outcome.added_lines,
                            "removed": outcome.removed_lines,
                            "hunks": [{"path": h.path, "hunk": h.number, "line": h.line, "fuzz": h.fuzz,
                                       "detail": h.detail} for h in outcome.hunks]})


def _exists(space: Workspace, name: str) -> bool:
    try:
        return space.kind(name) is not None
    except (OSError, PathRefused):
        return False


def _roll_back(space: Workspace, targets: dict[str, str], originals: dict[str, bytes | None],
               written: list[str]) -> list[str]:
    """Put back what this patch wrote, through the same link-free operations; the names it could not restore."""
    problems = []
    for name in written:
        before = originals.get(name)
        try:
            if before is None:
                space.remove(targets[name])
            else:
                space.write(targets[name], before, allow_secrets=True)
        except (OSError, PathRefused) as exc:
            problems.append(f"{name} ({exc})")
    return problems
