"""The tool set the model sees, under the names gpt-oss was trained with."""

from __future__ import annotations

from gptoss_agent.tools.editing import apply_patch_tool
from gptoss_agent.tools.files import list_dir, open_file, print_tree, search
from gptoss_agent.tools.git import git_commit
from gptoss_agent.tools.plan import update_plan
from gptoss_agent.tools.registry import Registry
from gptoss_agent.tools.shell import exec_command
from gptoss_agent.tools.symbols import find_symbol
from gptoss_agent.tools.tests import run_tests

# Names the model uses unprompted for the same tools.
ALIASES = {
    "functions.apply_patch": "repo_browser.apply_patch",
    "functions.exec": "container.exec",
    "functions.shell": "container.exec",
    "shell": "container.exec",
    "bash": "container.exec",
    "functions.open_file": "repo_browser.open_file",
    "functions.read_file": "repo_browser.open_file",
    "read_file": "repo_browser.open_file",
    "functions.search": "repo_browser.search",
    "grep": "repo_browser.search",
    "functions.print_tree": "repo_browser.print_tree",
    "functions.list_dir": "repo_browser.list_dir",
    "commit": "functions.git_commit",
}


def default_registry() -> Registry:
    """Every tool, in the order they are declared to the model."""
    return Registry().add(print_tree, list_dir, open_file, search, apply_patch_tool, exec_command,
                          run_tests, git_commit, update_plan, find_symbol, aliases=ALIASES)
