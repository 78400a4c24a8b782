"""The editor's files, when the ACP client offers them: unsaved buffers in, edits out with the editor's undo.

Only the two file tools change, and only where the client advertised
`fs.readTextFile` / `fs.writeTextFile`. The trust boundary stays ours: every
path is checked by `tools.paths.Workspace` first (inside the repository, no
link on the way, not .git, not a secret, a regular file under the size cap),
exactly as without an editor, and only then is the client asked. The client
never sees a path we would refuse, and what it answers is data like any file.
Commands and tests still run in our sandbox on the disk; so that they see the
agent's edit, the disk is written too whenever the editor left it unsaved.

The editor resolves the path again after our checks, following links. So it is
asked only while nothing of ours can change the tree's links under it: commands
run on the copy-on-write overlay (they write the tree only when they end, and
the carry never puts a link in place of a file) and no command or test of this
process runs in that work tree (`tree_lock`, held by every other tool of every
session and by each editor file operation). Otherwise the file tools use the
disk, link-free, exactly as without an editor, and the user is told once why.
After an editor write the path is checked again: still the same regular file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import threading
from pathlib import Path
from typing import Callable, Iterator

from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.denylist import holds_private_key
from gptoss_agent.tools.paths import MAX_READ_BYTES, PathRefused, TooLarge, Workspace
from gptoss_agent.tools.registry import Registry, Tool


@dataclasses.dataclass
class EditorFiles:
    """The client's fs methods, callable from the agent's thread (None: not offered)."""

    read_text: Callable[[str], str | None] | None = None  # absolute path → the buffer's text (None: no buffer)
    write_text: Callable[[str, str], None] | None = None  # absolute path, new text → lands in the buffer
    unsafe: Callable[[], str | None] = lambda: None  # why the editor must not resolve paths now (None: it may)
    notify: Callable[[str], None] = lambda why: None  # tell the user why the disk is used instead (once per reason)
    approved: dict[str, str | None] | None = None  # the next patch's texts as the permission dialog showed them

    def take_approved(self) -> dict[str, str | None] | None:
        approved, self.approved = self.approved, None
        return approved


_TREE_LOCKS: dict[str, threading.RLock] = {}
_TREE_LOCKS_GUARD = threading.Lock()
BUSY_TREE = ("a command is running in this work tree (in this or another editor thread), so the file tools "
             "read and write the disk directly until it ends; the editor's unsaved buffers are not used meanwhile")


def tree_lock(root: Path | str) -> threading.RLock:
    """The work tree's lock in this process, shared by all sessions: commands hold it, editor file operations too."""
    key = os.path.realpath(os.fspath(root))
    with _TREE_LOCKS_GUARD:
        return _TREE_LOCKS.setdefault(key, threading.RLock())  # re-entrant: a tool may call another


class EditorWriteEscaped(PathRefused):
    """After the editor wrote a file, the path is no longer the regular file we checked: say so loudly."""


class EditorWorkspace(Workspace):
    """A Workspace whose reads prefer the editor's buffer and whose writes go through the editor.

    Every check of the base class runs before the editor is asked anything.
    """

    def __init__(self, root: Path | str, files: EditorFiles) -> None:
        super().__init__(root)
        self.files = files
        self.editor = False  # True only inside editor_turn(), while the editor may resolve paths itself
        self.through_editor: set[str] = set()  # files this workspace wrote through the editor
        self.written: set[str] = set()  # files this workspace wrote (a second write is the patch's rollback)
        self.notes: list[str] = []  # what the tool's result must say (a rollback the editor refused)
        self.escaped: list[str] = []  # editor writes that did not land on the file we checked (said first, loudly)
        self.approved: dict[str, str | None] | None = None  # what the user approved, per file (None: not asked)

    def absolute(self, relative: str) -> str:
        return f"{self.real.rstrip('/')}/{relative}"

    @contextlib.contextmanager
    def editor_turn(self) -> Iterator[bool]:
        """Hold the tree's lock while the editor is asked (yields whether it may be); else the disk, and say why."""
        why = self.files.unsafe()
        lock = tree_lock(self.real)
        if why is None and not lock.acquire(blocking=False):
            why = BUSY_TREE
        if why is not None:
            self.files.notify(why)
            yield False
            return
        self.editor = True
        try:
            yield True
        finally:
            self.editor = False
            lock.release()

    def identity(self, relative: str) -> tuple[int, int] | None:
        """(device, inode) of the regular file at `relative`, reached without links; None if it is missing."""
        try:
            info = self.stat(relative, follow_inside=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{relative}: not a regular file")
        return info.st_dev, info.st_ino

    def read(self, path: str, *, max_bytes: int = MAX_READ_BYTES, allow_secrets: bool = False,
             follow_inside: bool = True, truncate: bool = False) -> tuple[bytes, str]:
        data, relative = super().read(path, max_bytes=max_bytes, allow_secrets=allow_secrets,
                                      follow_inside=follow_inside, truncate=truncate)
        if self.files.read_text is None or not self.editor:
            return data, relative
        text = self.files.read_text(self.absolute(relative))
        if text is None:
            return data, relative
        buffer = text.encode("utf-8", errors="surrogatepass")
        if len(buffer) > max_bytes:
            if not truncate:
                raise TooLarge(f"{path}: the editor's buffer is too large to read here ({len(buffer):,} bytes; "
                               f"the limit is {max_bytes:,})")
            buffer = buffer[:max_bytes]
        if not allow_secrets and holds_private_key(buffer):
            raise PathRefused(f"{path}: holds a private key; not read")
        return buffer, relative

    def write(self, path: str, data: bytes, *, allow_secrets: bool = False) -> None:
        relative = self.check_writable(path, allow_secrets=allow_secrets)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # not text the editor can hold: the disk only
        if self.approved is not None and text is not None and relative not in self.written:
            shown = {os.path.normpath(name): new for name, new in self.approved.items()}
            if relative in shown and shown[relative] != text:
                raise PathRefused(f"{relative} changed since you approved the patch (in the editor or on disk), so "
                                  "what would be written is not what the dialog showed")
        if self.files.write_text is not None and text is not None and self.editor:
            before = self.identity(relative)
            try:
                self.files.write_text(self.absolute(relative), text)
            except OSError as exc:
                if relative not in self.through_editor:
                    raise
                # putting back a file this patch changed in the editor: the disk at least goes back, and we say so
                self.notes.append(f"the editor refused to take back its edit of {relative} ({exc}); the file on "
                                  "disk is restored, but the editor's buffer still shows the edit: undo it there")
            else:
                self.through_editor.add(relative)
                self._verify_after_editor(relative, before, data)
        try:  # commands and tests read the disk: make sure the edit is there, through our link-free write
            on_disk, _ = Workspace.read(self, relative, allow_secrets=True, follow_inside=False)
        except (OSError, PathRefused):
            on_disk = None
        if on_disk != data:
            super().write(relative, data, allow_secrets=allow_secrets)
        self.written.add(relative)

    def _verify_after_editor(self, relative: str, before: tuple[int, int] | None, data: bytes) -> None:
        """The editor resolved the path itself: it must still be the regular file we checked (or our new one)."""
        try:
            after = self.identity(relative)
        except (OSError, PathRefused) as exc:
            self.escaped.append(relative)
            raise EditorWriteEscaped(f"{relative} is no longer a regular file of the repository after the editor "
                                     f"wrote it ({exc}): something replaced it while the editor wrote, and the "
                                     "editor may have written elsewhere (outside the repository); check it "
                                     "now") from None
        if before is not None and after != before:
            try:
                on_disk, _ = Workspace.read(self, relative, allow_secrets=True, follow_inside=False)
            except (OSError, PathRefused):
                on_disk = None
            if on_disk != data:  # an editor that saves by renaming leaves our text; anything else is a swap
                self.escaped.append(relative)
                raise EditorWriteEscaped(f"{relative} was replaced by another file while the editor wrote it; the "
                                         "editor may have written elsewhere (outside the repository); check it now")


def _format_lines(ctx: ToolContext, path: str, data: bytes, line_start: int, line_end: int | None,
                  line_numbers: bool) -> ToolResult:
    """open_file's view of a buffer's text (the same window, cuts and notes as tools.files.open_file)."""
    from gptoss_agent.tools.files import line_window

    if b"\0" in data[:8192]:
        return ToolResult.error(f"{path} is a binary file ({len(data)} bytes); it cannot be shown as text.")
    lines = data.decode("utf-8", errors="replace").splitlines()
    total = len(lines)
    if total == 0:
        return ToolResult(True, f"({path} is empty in the editor)")
    if line_start > total:
        return ToolResult.error(f"{path} has {total} lines in the editor; line_start={line_start} is past the end.")
    last = min(line_end or total, total)
    output, end = line_window(ctx, lines, line_start, last, line_numbers=line_numbers, read_on_hint=False)
    output += "\n[the editor's unsaved buffer, which differs from the file on disk]"
    return ToolResult(True, output, truncated=end < last,
                      data={"path": path, "lines": [line_start, end], "total": total, "buffer": True})


def editor_registry(registry: Registry, files: EditorFiles) -> Registry:
    """The same tools under the same specs (the model's prompt does not change), the file ones through the editor."""
    from gptoss_agent.tools import editing
    from gptoss_agent.tools.files import open_file
    from gptoss_agent.tools.patch import PatchError, parse_patch

    tools = dict(registry.tools)
    if files.read_text is not None and "repo_browser.open_file" in tools:
        def open_in_editor(ctx: ToolContext, **arguments) -> ToolResult:
            path = arguments["path"]
            checked = open_file.function(ctx, path=path)  # every check, on the file on disk, whatever the range
            if not checked.ok:
                return checked
            line_start, line_end = arguments.get("line_start", 1), arguments.get("line_end")
            line_numbers = arguments.get("line_numbers", False)
            try:
                with EditorWorkspace(ctx.workspace, files) as space, space.editor_turn() as editor:
                    if not editor:  # the disk, link-free, exactly as without an editor (the user was told why)
                        return open_file.function(ctx, **arguments)
                    disk, relative = Workspace.read(space, path)
                    buffer, _ = space.read(relative, follow_inside=False)
            except (OSError, PathRefused) as exc:
                return ToolResult.error(f"{path}: cannot read the editor's buffer ({exc})")
            if buffer == disk or line_start < 1 or (line_end is not None and line_end < line_start):
                return open_file.function(ctx, **arguments)  # exactly as without an editor (bad ranges: its error)
            return _format_lines(ctx, path, buffer, line_start, line_end, line_numbers)

        tools["repo_browser.open_file"] = Tool(tools["repo_browser.open_file"].spec, open_in_editor)
    if "repo_browser.apply_patch" in tools:
        def patch_in_editor(ctx: ToolContext, patch: str) -> ToolResult:
            approved = files.take_approved()  # this call's approval, taken whatever happens (never a later call's)
            try:
                ops = parse_patch(patch)
            except PatchError as exc:
                return ToolResult.error(f"apply_patch failed, nothing was written: {exc}")
            with EditorWorkspace(ctx.workspace, files) as space, space.editor_turn():
                space.approved = approved
                result = editing._apply(ctx, space, ops)
                if space.escaped:  # not "every file was restored": the editor wrote somewhere we cannot see
                    result = ToolResult.error(
                        f"WARNING: the editor's write of {', '.join(space.escaped)} did not land on the file that was "
                        "checked; a file outside the repository may have been overwritten. "
                        + result.output.replace("every file was restored", "the patch's other files were restored"))
                if space.notes:
                    output = result.output.replace("every file was restored", "every file on disk was restored")
                    result = dataclasses.replace(result, output=output + "\n" + "\n".join(space.notes))
                return result

        tools["repo_browser.apply_patch"] = Tool(tools["repo_browser.apply_patch"].spec, patch_in_editor)
    for name, tool in list(tools.items()):
        if name not in ("repo_browser.open_file", "repo_browser.apply_patch"):
            tools[name] = Tool(tool.spec, holding_tree(tool.function))
    return Registry(tools=tools, aliases=dict(registry.aliases))


def preview_patch(root: Path | str, files: EditorFiles | None, patch: str) -> list[tuple[str, str | None, str]]:
    """What `patch` would write, per file: (relative name, its text now or None, its new text).

    Read from the same source its edit will use: the editor's buffers when the
    editor offers them and may be asked now, else the disk (inside the jail
    either way). Raises PatchError, OSError or PathRefused when it will not apply.
    """
    from gptoss_agent.tools.patch import apply_patch, parse_patch

    with contextlib.ExitStack() as stack:
        if files is not None and files.read_text is not None:
            space = stack.enter_context(EditorWorkspace(root, files))
            stack.enter_context(space.editor_turn())
        else:
            space = stack.enter_context(Workspace(root))
        seen: dict[str, str | None] = {}

        def read(name: str) -> str | None:
            if name not in seen:
                try:
                    seen[name] = space.read(name, follow_inside=False)[0].decode("utf-8", errors="replace")
                except FileNotFoundError:
                    seen[name] = None
            return seen[name]

        outcome = apply_patch(parse_patch(patch), read)
        return [(name, read(name), text) for name, text in outcome.writes.items()]


def holding_tree(function: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
    """`function` run while it holds its work tree's lock: no editor file operation meanwhile (commands, tests)."""
    def run(ctx: ToolContext, **arguments) -> ToolResult:
        with tree_lock(ctx.workspace):
            return function(ctx, **arguments)

    return run
