"""Our agent events as Agent Client Protocol session updates: the pure half of `gptoss-agent acp`.

Nothing here does I/O. `UpdateMapper` turns one `AgentEvent` into the ACP
updates an editor shows (thought and message chunks, tool calls and their
updates, the plan), and `stop_reason` turns a run's status into the prompt's
stop reason; `prompt_text` reads a prompt's content blocks, `history_updates` a
recorded session's log (data: a record that does not fit is left out). Every human-facing string from the model or the repository goes
through `agent.safe_text` (an editor may render in a terminal: Toad, Neovim),
the old and new text of an edit and a call's raw arguments included: they are
shown, never applied (the edit itself reaches the editor through
fs/write_text_file, byte for byte).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from acp.schema import (AgentMessageChunk, AgentPlanUpdate, AgentThoughtChunk, ContentToolCallContent,
                        EmbeddedResourceContentBlock, FileEditToolCallContent, PermissionOption, PlanEntry,
                        ResourceContentBlock, TextContentBlock, TextResourceContents, ToolCallLocation,
                        ToolCallProgress, ToolCallStart, ToolCallUpdate, UserMessageChunk)

from gptoss_agent.agent.fences import fenced
from gptoss_agent.agent.frontends.acp.fences import command_title, fenced_block
from gptoss_agent.agent.events import (AgentEvent, Committed, ErrorRaised, MessageEmitted, Notice, PlanUpdated,
                                       ReasoningEmitted, RunFinished, TextStreamed, ToolCalled, ToolFinished,
                                       key_argument)
from gptoss_agent.agent.safe_text import block, line

# What kind of work each tool does, as ACP names it (editors pick an icon and a layout from it).
TOOL_KINDS = {
    "repo_browser.open_file": "read",
    "repo_browser.list_dir": "read",
    "repo_browser.print_tree": "read",
    "repo_browser.search": "search",
    "functions.find_symbol": "search",
    "repo_browser.apply_patch": "edit",
    "container.exec": "execute",
    "functions.run_tests": "execute",
    "functions.git_commit": "other",
    "functions.update_plan": "think",
}
# The title's verb; the key argument (a path, a command, a query) follows it.
TOOL_VERBS = {
    "repo_browser.open_file": "Read",
    "repo_browser.list_dir": "List",
    "repo_browser.print_tree": "Tree",
    "repo_browser.search": "Search",
    "functions.find_symbol": "Find symbol",
    "repo_browser.apply_patch": "Edit",
    "container.exec": "Run",
    "functions.run_tests": "Run the tests",
    "functions.git_commit": "Commit",
    "functions.update_plan": "Update the plan",
}
TITLE_WIDTH = 100
OUTPUT_CHARS = 20_000  # what an editor's tool card shows of a long output; the model saw its own capped copy

PERMISSION_OPTIONS = [
    PermissionOption(option_id="allow_once", name="Allow", kind="allow_once"),
    PermissionOption(option_id="allow_always", name="Always allow this tool", kind="allow_always"),
    PermissionOption(option_id="reject_once", name="Reject", kind="reject_once"),
    PermissionOption(option_id="reject_always", name="Always reject this tool", kind="reject_always"),
]

_PATCH_FILE = re.compile(r"^\*\*\* (?:Update|Add|Delete) File: (.+)$", re.M)


def tool_title(name: str, arguments: Any) -> str:
    """"Edit calc.py", "Run pytest -q": the verb of the tool and its key argument, on one safe line."""
    verb = TOOL_VERBS.get(name, name)
    if isinstance(arguments, dict) and "cmd" in arguments:  # shown whole in the body; the title says what it cut
        return command_title(arguments["cmd"], TITLE_WIDTH, verb)
    if name == "repo_browser.apply_patch":
        text = arguments.get("patch", "") if isinstance(arguments, dict) else str(arguments)
        subject = ", ".join(dict.fromkeys(m.strip() for m in _PATCH_FILE.findall(text or "")))
    else:
        subject = key_argument(arguments, TITLE_WIDTH)
    return line(f"{verb} {subject}".strip()[:TITLE_WIDTH])


def tool_locations(name: str, arguments: Any, root: str) -> list[ToolCallLocation] | None:
    """The files a call is about, as absolute paths (an editor offers to open them)."""
    paths: list[str] = []
    if isinstance(arguments, dict) and name == "repo_browser.apply_patch":
        paths = list(dict.fromkeys(m.strip() for m in _PATCH_FILE.findall(str(arguments.get("patch", "")))))
    elif isinstance(arguments, dict) and isinstance(arguments.get("path"), str) and name in (
            "repo_browser.open_file", "repo_browser.list_dir", "repo_browser.print_tree"):
        paths = [arguments["path"]]
    if not paths:
        return None
    return [ToolCallLocation(path=line(p if p.startswith("/") else f"{root.rstrip('/')}/{p}")) for p in paths]


def text_content(text: str) -> ContentToolCallContent:
    return ContentToolCallContent(type="content", content=TextContentBlock(type="text", text=text))


def thought(text: str) -> AgentThoughtChunk:
    return AgentThoughtChunk(session_update="agent_thought_chunk", content=TextContentBlock(type="text", text=text))


def message(text: str) -> AgentMessageChunk:
    return AgentMessageChunk(session_update="agent_message_chunk", content=TextContentBlock(type="text", text=text))


def plan_update(steps: list[dict[str, Any]]) -> AgentPlanUpdate:
    entries = [PlanEntry(content=line(step.get("step", "")), priority="medium",
                         status=step.get("status") if step.get("status") in ("pending", "in_progress", "completed")
                         else "pending")
               for step in steps if isinstance(step, dict)]
    return AgentPlanUpdate(session_update="plan", entries=entries)


@dataclass(frozen=True)
class FileEdit:
    """One file an edit changed: its absolute path and its text before and after (None: absent)."""

    path: str
    old_text: str | None
    new_text: str | None


def diff_contents(edits: list[FileEdit]) -> list[FileEditToolCallContent]:
    """ACP diff content for each edited file (a deleted file shows as emptied)."""
    return [FileEditToolCallContent(type="diff", path=line(e.path), old_text=None if e.old_text is None else block(e.old_text),
                                    new_text=block(e.new_text or "")) for e in edits]


def safe_json(value: Any, depth: int = 0) -> Any:
    """A call's arguments for display: every string neutralised, nesting bounded."""
    if depth > 20:
        return "…"
    if isinstance(value, str):
        return block(value)
    if isinstance(value, dict):
        return {block(str(k)): safe_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [safe_json(v, depth + 1) for v in value]
    return value


def permission_tool_call(call_id: str, name: str, arguments: Any, root: str,
                         edits: list[FileEdit] | None = None, preview: str | None = None) -> ToolCallUpdate:
    """What a permission request shows: the call's title, its kind, and the diff or command it would run."""
    content: list[Any] = list(diff_contents(edits or []))
    if not content and preview:
        content.append(text_content(preview))  # already markdown: fenced, neutralised (agent/acp_fences.py)
    return ToolCallUpdate(tool_call_id=call_id, title=tool_title(name, arguments), kind=TOOL_KINDS.get(name, "other"),
                          status="pending", content=content or None, locations=tool_locations(name, arguments, root))


def stop_reason(status: str, reason: str = "") -> str:
    """The prompt's stop reason for a run's status.

    completed: end_turn. cancelled: cancelled. The step budget: max_turn_requests.
    The token budgets (a total, or a final answer cut off again and again):
    max_tokens. Anything else that ended the turn (a backend error, a model
    that keeps repeating itself) ends the turn too, and says why in a message
    chunk first; it is not `refusal`, which editors take as "the model
    declined" and some answer by dropping the user's message.
    """
    if status == "cancelled":
        return "cancelled"
    if status == "max_steps" or "time limit" in reason:
        return "max_turn_requests"
    if "generated tokens" in reason or "truncated answer" in reason:
        return "max_tokens"
    return "end_turn"


@dataclass
class UpdateMapper:
    """Turns one session's events into ACP updates.

    `live`: text arrives as it is sampled (TextStreamed), so the whole messages
    that follow a step are not sent again; when replaying a session log, where
    only whole messages were recorded, they are the text.
    """

    root: str
    live: bool = True

    def __call__(self, event: AgentEvent, edits: list[FileEdit] | None = None) -> list[Any]:
        if isinstance(event, TextStreamed):  # per token: a plain piece; coalesce() makes the update
            if not self.live or not event.text:
                return []
            return [TextPiece(event.channel == "analysis", block(event.text))]
        if isinstance(event, ReasoningEmitted):  # live: the text streamed already; a paragraph break follows it
            return [thought("\n\n")] if self.live else [thought(block(event.text) + "\n\n")]
        if isinstance(event, MessageEmitted):
            if self.live:
                return [message("\n\n")] if event.channel == "commentary" else []
            return [message(block(event.text) + ("\n\n" if event.channel == "commentary" else ""))]
        if isinstance(event, ToolCalled):
            return [ToolCallStart(session_update="tool_call", tool_call_id=event.id,
                                  title=tool_title(event.name, event.arguments),
                                  kind=TOOL_KINDS.get(event.name, "other"), status="pending",
                                  locations=tool_locations(event.name, event.arguments, self.root),
                                  raw_input=safe_json(event.arguments))]
        if isinstance(event, ToolFinished):
            return [self._finished(event, edits or [])]
        if isinstance(event, PlanUpdated):
            return [plan_update(event.steps)]
        if isinstance(event, Committed):
            first = event.message.splitlines()[0] if event.message else ""
            return [thought(line(f"committed {event.sha[:12]} {first}") + "\n")]
        if isinstance(event, ErrorRaised):
            return [message(f"\n\n**error:** {block(event.message)}\n\n")]
        if isinstance(event, Notice):
            return [thought(block(event.text) + "\n")]
        if isinstance(event, RunFinished) and event.status not in ("completed", "cancelled") and event.reason:
            return [message(f"\n\n**{line(event.status)}:** {block(event.reason)}\n")]
        return []

    def _finished(self, event: ToolFinished, edits: list[FileEdit]) -> ToolCallProgress:
        content: list[Any] = []
        if event.ok and edits:
            content.extend(diff_contents(edits))
        elif event.ok and event.display:
            content.append(text_content(fenced_block(event.display.rstrip("\n"), "diff")))
        output = event.output if len(event.output) <= OUTPUT_CHARS else (
            event.output[:OUTPUT_CHARS] + f"\n[… {len(event.output) - OUTPUT_CHARS} more characters]")
        if output and not (event.ok and content):
            content.append(text_content(fenced_block(output)))
        return ToolCallProgress(session_update="tool_call_update", tool_call_id=event.id,
                                status="completed" if event.ok else "failed", content=content or None,
                                raw_output={"ok": event.ok, "truncated": event.truncated})


@dataclass(frozen=True, slots=True)
class TextPiece:
    """One streamed piece of text (a token or a few), cheap to make: the update is built once per batch."""

    thought: bool
    text: str


def _text_of(item: Any) -> tuple[bool, str] | None:
    if isinstance(item, TextPiece):
        return item.thought, item.text
    if isinstance(item, (AgentMessageChunk, AgentThoughtChunk)) and isinstance(item.content, TextContentBlock):
        return isinstance(item, AgentThoughtChunk), item.content.text
    return None


def coalesce(items: list[Any]) -> list[Any]:
    """Text that waited together, as one chunk per run: fewer, larger notifications.

    Only adjacent text of the same kind (thought or message) is merged, so the
    order of everything else (tool calls, permission requests) holds.
    """
    merged: list[Any] = []
    run: list[str] = []
    run_kind: bool | None = None

    def close_run() -> None:
        if run:
            merged.append(thought("".join(run)) if run_kind else message("".join(run)))
            run.clear()

    for item in items:
        text = _text_of(item)
        if text is None:
            close_run()
            merged.append(item)
            continue
        if text[0] is not run_kind:
            close_run()
            run_kind = text[0]
        run.append(text[1])
    close_run()
    return merged


def prompt_text(blocks: list, root: str) -> str:
    """The user's message from a prompt's content blocks (text, file links, embedded files)."""
    parts: list[str] = []
    for item in blocks:
        if isinstance(item, TextContentBlock):
            parts.append(item.text)
        elif isinstance(item, ResourceContentBlock):
            uri = item.uri.removeprefix("file://")
            parts.append("@" + (os.path.relpath(uri, root) if uri.startswith(root.rstrip("/") + "/") else item.uri))
        elif isinstance(item, EmbeddedResourceContentBlock) and isinstance(item.resource, TextResourceContents):
            uri = item.resource.uri.removeprefix("file://")
            name = os.path.relpath(uri, root) if uri.startswith(root.rstrip("/") + "/") else item.resource.uri
            parts.append(f"Attached {name}:\n{fenced(item.resource.text)}")
        else:
            parts.append(f"({getattr(item, 'type', 'content')} attached; this model reads text only)")
    return "\n\n".join(p for p in parts if p)


def history_updates(record, codec, root: str) -> list[Any]:
    """A recorded session as the updates an editor shows: user messages, then what the agent said and did."""
    from gptoss_agent.agent.compaction import split_messages

    mapper = UpdateMapper(root, live=False)
    updates: list[Any] = []
    for entry in record.records:
        if entry["kind"] == "segment" and entry["segment"] == "user":
            views = split_messages(entry["tokens"], codec.decode)
            text = "\n".join(codec.decode(v.content) for v in views)
            updates.append(UserMessageChunk(session_update="user_message_chunk",
                                            content=TextContentBlock(type="text", text=block(text))))
        elif entry["kind"] == "event":
            event = _event_from_json(entry["event"])
            if event is not None:
                updates.extend(mapper(event))
    return updates


def _event_from_json(data: dict[str, Any]) -> AgentEvent | None:
    """An event record back as the event it was; a record whose fields do not fit is left out (logs are data)."""
    from gptoss_agent.agent import events

    kinds = {cls.type: cls for cls in (events.ReasoningEmitted, events.MessageEmitted, events.ToolCalled,
                                       events.ToolFinished, events.PlanUpdated, events.Committed,
                                       events.ErrorRaised, events.RunFinished)}
    cls = kinds.get(data.get("type"))
    if cls is None:
        return None
    values = {}
    for spec in dataclasses.fields(cls):
        if spec.name not in data:
            continue
        value, wanted = data[spec.name], str(spec.type)
        allowed = tuple(t for name, t in (("str", str), ("bool", bool), ("int", int), ("float", (int, float)),
                                          ("list", list), ("dict", dict), ("Any", object)) if name in wanted)
        if not (isinstance(value, allowed) or (value is None and "None" in wanted)) or (
                isinstance(value, bool) and "bool" not in wanted):
            return None
        values[spec.name] = value
    try:
        return cls(**values)
    except TypeError:  # a required field is missing
        return None
