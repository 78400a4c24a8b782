"""The tool set the model sees, under the names gpt-oss was trained with."""

from __future__ import annotations

from tools.editing import apply_patch_tool
from tools.files import list_dir, open_file, print_tree, search
from tools.git import git_commit
from tools.plan import update_plan
from tools.registry import Registry
from tools.shell import exec_command
from tools.symbols import find_symbol
from tools.tests import run_tests

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
