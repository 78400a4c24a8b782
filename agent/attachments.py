"""`@path` mentions in a user's message: the files they name, attached to what the model reads.

One function for every front end, and it reads through `repo_browser.open_file` itself, not
beside it: an attachment is the user asking the agent to open a file, so it gets exactly the
file tools' rules (beneath the repository, no `..` or links out, nothing in `.git`, the
credential deny list, private keys by content, the size and token caps). A mention that is
refused is not dropped in silence: the caller shows every refusal to the user, who otherwise
would believe the model saw the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gptoss_agent.agent import prompts
from gptoss_agent.agent.fences import fenced

# `@name` at the start of a word (so `me@example.com` is not a mention); trailing sentence
# punctuation is not part of the name ("see @a.py." names a.py).
MENTION = re.compile(r"(?<!\S)@([\w./-]+)")
MAX_ATTACHMENTS = 20  # files per message: each may be a page of open_file (thousands of tokens)


@dataclass
class Attached:
    """The message as the model reads it, and one line per mention that was not attached."""

    text: str
    refused: list[str] = field(default_factory=list)


def mentioned_paths(text: str) -> list[str]:
    """The `@path` mentions in `text`, in order, each once."""
    names = (name.rstrip(".,;:") for name in MENTION.findall(text))
    return list(dict.fromkeys(name for name in names if name))


def attach_mentions(ctx, text: str) -> Attached:
    """`text` with each mentioned file's content attached (as open_file shows it); refusals listed.

    `ctx` is the session's ToolContext: its workspace is the one the model's own open_file
    calls use."""
    from gptoss_agent.tools.files import open_file

    parts: list[str] = []
    refused: list[str] = []
    for index, name in enumerate(mentioned_paths(text)):
        if index >= MAX_ATTACHMENTS:
            refused.append(f"not attached: {name}: more than {MAX_ATTACHMENTS} files in one message")
            continue
        try:
            result = open_file(ctx, path=name)
        except Exception as exc:  # a bug in a read must not lose the user's message
            refused.append(f"not attached: {name}: {type(exc).__name__}: {exc}")
            continue
        if result.ok:
            parts.append(prompts.render("attached_file", name=name, content=fenced(result.output)))
        else:
            reason = result.output
            for prefix in (f"{name}: ", f"{name} "):
                if reason.startswith(prefix):
                    reason = reason[len(prefix):]
                    break
            refused.append(f"not attached: {name}: {reason}")
    return Attached(text if not parts else text + "\n\n" + "\n\n".join(parts), refused)
