"""The real TUI over the real loop and a replay backend, for tests that drive it in a pseudo-terminal.

    python tests/tui/pty_app.py REPO REPLAY.json RESULT.json [APPROVAL]

It runs `GptossApp` with its real Textual driver on this process's terminal.
When the app exits it writes what the model received (the user messages, the
tool results) to RESULT.json, so a test can check what the keys it typed did.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(repo: str, replay: str, result_path: str, approval: str = "ask", type_ahead: str = "") -> None:
    from gptoss_agent.agent.frontends.tui.app import GptossApp

    def connect(model_override, progress, sink, cancel_load=None):
        from gptoss_agent.agent.frontends.headless import RunOptions, build_runtime, prepare_workspace

        options = RunOptions(cwd=repo, backend=f"replay:{replay}")
        progress(1.0)
        return build_runtime(options, task="tui", sink=sink, workspace=prepare_workspace(options))

    app = GptossApp(connect, approval=approval, timings=False, animate=False, repo=Path(repo),
                    type_ahead=type_ahead)
    app.run()
    result = {"users": [], "tools": [], "approval": app.approval}
    if app.runtime is not None:
        conversation = app.runtime.agent.conversation
        codec = app.runtime.agent.codec
        for segment in conversation.segments:
            text = codec.decode(segment.tokens)
            if segment.kind == "user":
                match = re.search(r"<\|message\|>(.*?)<\|end\|>", text, re.DOTALL)
                result["users"].append(match.group(1) if match else text)
            elif segment.kind == "tool":
                result["tools"].append(text)
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    from gptoss_agent.agent.frontends.tui.terminal import keys_held  # as agent/cli.py does, before Textual is imported

    with keys_held(sys.stdin) as typed:
        main(*sys.argv[1:], type_ahead=typed.text)
