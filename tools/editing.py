"""The apply_patch tool: the pure patch engine wired to the workspace jail, atomic writes and undo."""

from __future__ import annotations

from pathlib import Path

from agent.types import ToolResult
from tools.context import ToolContext
from tools.paths import PathRefused, read_regular_file, resolve, write_atomic
from tools.patch import PatchError, apply_patch, parse_patch
from tools.registry import tool


@tool("repo_browser.apply_patch", mutating=True, string_argument="patch")
def apply_patch_tool(ctx: ToolContext, patch: str) -> ToolResult:
    """Edit files with a patch in the apply_patch format ('*** Begin Patch' … '*** End Patch').

    Args:
        patch: the whole patch text, with Add File / Update File / Delete File sections
    """
    try:
        ops = parse_patch(patch)
        targets = {name: resolve(ctx.workspace, name, for_write=True, allow_secrets=ctx.allow_secrets)
                   for op in ops for name in (op.path, op.move_to) if name}
    except (PatchError, PathRefused) as exc:
        return ToolResult.error(f"apply_patch failed, nothing was written: {exc}")

    originals: dict[str, bytes | None] = {}

    def read(name: str) -> str | None:
        target = targets[name]
        if not target.exists():
            originals[name] = None
            return None
        if target.is_dir():
            raise PatchError(f"{name} is a folder")
        data = read_regular_file(target)
        originals[name] = data
        return data.decode("utf-8", errors="surrogateescape")

    try:
        outcome = apply_patch(ops, read)
    except PatchError as exc:
        return ToolResult.error(str(exc))
    except (OSError, PathRefused) as exc:
        return ToolResult.error(f"apply_patch failed, nothing was written: {exc}")

    written: list[str] = []
    try:
        for name, text in outcome.writes.items():
            target = targets[name]
            if text is None:
                target.unlink(missing_ok=True)
            else:
                write_atomic(target, text.encode("utf-8", errors="surrogateescape"))
            written.append(name)
    except OSError as exc:
        _roll_back(targets, originals, written)
        return ToolResult.error(f"apply_patch failed while writing ({exc}); every file was restored")

    for name, text in outcome.writes.items():
        after = None if text is None else text.encode("utf-8", errors="surrogateescape")
        ctx.record_write(_relative(ctx.workspace, targets[name]), originals.get(name), after)
    summary = "\n".join(outcome.summary)
    return ToolResult(True, f"Patch applied.\n{summary}", display=outcome.diff,
                      data={"files": list(outcome.writes), "added": outcome.added_lines,
                            "removed": outcome.removed_lines})


def _relative(workspace: Path, path: Path) -> str:
    return path.relative_to(workspace.resolve()).as_posix()


def _roll_back(targets: dict[str, Path], originals: dict[str, bytes | None], written: list[str]) -> None:
    for name in written:
        before = originals.get(name)
        if before is None:
            targets[name].unlink(missing_ok=True)
        else:
            write_atomic(targets[name], before)
