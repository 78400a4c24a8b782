"""Re-ranking the repo map during a run, when the agent edits files or the tests point somewhere new.

The map the run started with was ranked for the task's text. Once the agent has
edited `a.py`, or a test run fails in `b.py`, the definitions worth seeing are
those files' and their neighbours'. After such a tool call, and only when it
points at a file the map was not yet focused on, the map is rebuilt with those
files first (the parse cache makes that cheap: only edited files are parsed
again) and handed to the model as a fenced notice, at half the start-up budget,
a few times a run at most.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from gptoss_agent.tools.repomap import build_map, focus_paths
from gptoss_agent.tools.tags import language_for

MAX_UPDATES = 4  # each costs up to half the map budget in the context
MAX_FOCUS = 6
log = logging.getLogger("gptoss_agent.repomap")


def files_pointed_at(tool: str, data: dict) -> list[str]:
    """The repository files a tool result points at: the files a patch wrote, the files where failing
    tests failed (project line first, then the test's own line)."""
    found: list[str] = []
    if tool.endswith("apply_patch"):
        found = [f for f in data.get("files", ()) if isinstance(f, str)]
    elif tool.endswith("run_tests"):
        for failure in data.get("failures", ()):
            if not isinstance(failure, dict):
                continue
            for key in ("location", "test_location"):
                where = failure.get(key)
                if isinstance(where, str) and where:
                    found.append(where.rsplit(":", 1)[0] if where.rsplit(":", 1)[-1].isdigit() else where)
        for test_id in data.get("failing", ()):
            if isinstance(test_id, str) and "::" in test_id:
                found.append(test_id.split("::", 1)[0])
    return [f for f in dict.fromkeys(found) if language_for(f) is not None]


class MapRefresher:
    """Called after each tool call; returns the text of a notice when the map was worth re-ranking."""

    def __init__(self, workspace: Path, budget: int, count_tokens: Callable[[str], int],
                 list_files: Callable[[Path], list[str]], *, cache_file: Path | None = None) -> None:
        self.workspace, self.budget, self.count_tokens = workspace, budget, count_tokens
        self.list_files, self.cache_file = list_files, cache_file
        self.focus: list[str] = []
        self.updates = 0
        self._last = ""

    def after_tool(self, tool: str, ok: bool, data: dict) -> str | None:
        if self.budget <= 0 or self.updates >= MAX_UPDATES or not isinstance(data, dict):
            return None
        if tool.endswith("apply_patch") and not ok:
            return None
        pointed = files_pointed_at(tool, data)
        if not pointed or all(f in self.focus for f in pointed):
            return None  # most calls point nowhere new: nothing is listed or parsed for them
        files = self.list_files(self.workspace)
        pointed = focus_paths(self.workspace, pointed, files)
        new = [f for f in pointed if f not in self.focus]
        if not new:
            return None
        self.focus = (new + [f for f in self.focus if f not in new])[:MAX_FOCUS]
        text = build_map(self.workspace, files, self.budget, lambda: self.count_tokens, self.focus,
                         cache_file=self.cache_file).text
        if not text or text == self._last:
            return None
        self._last = text
        self.updates += 1
        return text


def refresh_notice(text: str) -> str:
    """The re-ranked map as the model sees it: fenced as repository content, like the first one."""
    from gptoss_agent.agent import prompts
    from gptoss_agent.agent.fences import repository_fence as fence

    return prompts.render("repo_map_update", block=fence("repo map", text))


def map_refresher(workspace: Path, budget: int, count_tokens: Callable[[str], int]
                  ) -> Callable[[str, bool, dict], str | None]:
    """What the agent loop calls after each tool call (agent/loop.py `map_refresher`): a notice or None."""
    from gptoss_agent.tools.files import repo_files

    refresher = MapRefresher(workspace, budget, count_tokens, repo_files)

    def after(tool: str, ok: bool, data: dict) -> str | None:
        text = refresher.after_tool(tool, ok, data)
        return refresh_notice(text) if text else None

    return after
