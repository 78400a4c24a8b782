"""What a person may do to the repository besides asking the model: /diff, /undo, /commit, /test, the file list.

Front-ends (the TUI's slash commands, the editor's commands, the CLI's `map`)
call these and never import a tool module: each operation is the tool code the
model's own calls use, with the same sandbox and the same host-git rules (no
hooks, filters, textconv or external diff from the repository), so the trust
boundary is kept in one place rather than once per front-end. A runtime offers
them as `Runtime.operations`; before a model is loaded (or when none could
start) `repository_operations(root)` offers the same on a fresh tool context,
where the agent has made no edits.

Tool modules are imported inside each operation: a front-end that imports this
module at start-up pays nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable


class OperationFailed(Exception):
    """Git refused or failed; the message says why, as the tool's own error did."""


@dataclass
class WorkspaceOperations:
    """The operations on one tool context: the session's, so /undo and /commit see the agent's recorded edits."""

    ctx: Any

    @property
    def root(self) -> Path:
        return self.ctx.workspace

    def diff(self) -> str:
        """The work tree against HEAD, untracked files included; git errors are raised as they come."""
        from gptoss_agent.tools.git import diff_text

        return diff_text(self.root)

    def undo(self) -> str:
        """Revert the agent's last edits or commit (only the agent's own work); what was done, in words."""
        from gptoss_agent.tools import git as git_tools

        try:
            return git_tools.undo(self.ctx)
        except git_tools.GitError as exc:
            raise OperationFailed(str(exc)) from None

    def commit(self, message: str, *, tests: str | None = None) -> tuple[str, list[str]]:
        """Commit exactly what the agent wrote (`tests`: the test result for the body): the sha and its files."""
        from gptoss_agent.tools import git as git_tools

        try:
            sha, paths, _ = git_tools.commit_changes(self.ctx, message, tests=tests)
        except git_tools.GitError as exc:
            raise OperationFailed(str(exc)) from None
        return sha, paths

    def left_out_of_commit(self) -> dict[str, str]:
        """The agent's changed files a commit now would leave out (path → why), committing nothing."""
        from gptoss_agent.tools import git as git_tools

        try:
            return git_tools.left_out_of_commit(self.ctx)
        except git_tools.GitError as exc:
            raise OperationFailed(str(exc)) from None

    def user_changes(self, environments: Iterable[str] = ()) -> list[str]:
        """The user's uncommitted work in the tree: changed and untracked paths, less the untracked noise
        (environments named in `environments`, caches, build outputs: tools/untracked_noise.py)."""
        from gptoss_agent.tools.attribution import status_entries
        from gptoss_agent.tools.host_git import HostGitError
        from gptoss_agent.tools.untracked_noise import user_changes

        try:
            entries = status_entries(self.root)
        except HostGitError as exc:
            raise OperationFailed(str(exc)) from None
        return user_changes(entries, list(environments), Path(self.root))

    def environment_diagnosis(self, report):
        """Which of a test report's failures no edit can fix (tools/environment_problems.py)."""
        from gptoss_agent.tools.environment_problems import diagnose_report

        return diagnose_report(self.ctx, report)

    def environment_message(self, diagnosis) -> str:
        """What the user reads about a diagnosis: each problem and what to run."""
        from gptoss_agent.tools.environment_problems import user_message

        return user_message(self.ctx, diagnosis)

    def run_tests(self):
        """The project's test suite in the sandbox, as the run_tests tool runs it: the structured report."""
        from gptoss_agent.tools.tests import run_test_suite

        return run_test_suite(self.ctx)

    def test_report_text(self, report) -> str:
        """A test report as the model reads it (failures with their places)."""
        from gptoss_agent.tools.tests import format_report

        return format_report(report)

    def focused_map(self, budget: int, focus_text: str, extra_focus: Iterable[str] = ()) -> str:
        """The repo map for the developer message, focused on the files `focus_text` names, then `extra_focus`."""
        from gptoss_agent.tools.repomap import build_map, mentioned_files
        from gptoss_agent.tools.repomap_rank import mentioned_identifiers

        files = self.repo_files()
        focus = mentioned_files(focus_text, files) + list(extra_focus)
        return build_map(self.root, files, budget, lambda: self.ctx.count_tokens, focus,
                         mentioned=mentioned_identifiers(focus_text)).text

    def repo_files(self) -> list[str]:
        """Tracked and untracked-not-ignored files (for @path completion)."""
        from gptoss_agent.tools.files import repo_files

        return repo_files(self.root)

    def dirty_paths(self) -> set[str]:
        """Every path with changes: modified, staged, deleted or untracked (not ignored); git errors as they come."""
        from gptoss_agent.tools.git import dirty_paths

        return dirty_paths(self.root)

    def git_state(self) -> str:
        """The branch and a `*` when the tree has changes, for a status bar; "?" when git cannot tell."""
        try:
            from gptoss_agent.tools.git import current_branch, dirty_paths

            return f"{current_branch(self.root) or '(detached)'}{'*' if dirty_paths(self.root) else ''}"
        except Exception:
            return "?"

    def patch_preview(self, patch: str) -> tuple[str, bool]:
        """What an apply_patch call would change, as a diff (True), or the patch and why it will not apply (False).

        Only reads: the patch is applied to the files' text in memory."""
        from gptoss_agent.tools.patch import PatchError, apply_patch, parse_patch

        root = self.root

        def read(name: str) -> str | None:
            path = root / name
            return path.read_text(errors="surrogateescape") if path.is_file() else None

        try:
            return apply_patch(parse_patch(patch or ""), read).diff or patch, True
        except (PatchError, OSError) as exc:
            return f"{patch}\n\n(this patch will not apply: {exc})", False

    def python_env_name(self) -> str | None:
        """The project's own venv or conda env the sandbox runs, for the status bar (None for a plain python)."""
        from gptoss_agent.tools.python_env import status_name

        return status_name(getattr(self.ctx.sandbox, "python_env", None))

    def repo_map(self, budget: int, counter_factory: Callable[[], Callable[[str], int]],
                 focus: Iterable[str] = ()):
        """The repo map the model sees, for `budget` tokens, `focus` files first (a MapResult)."""
        from gptoss_agent.tools.repomap import build_map

        return build_map(self.root, self.repo_files(), budget, counter_factory, list(focus))


def repository_operations(root: Path) -> WorkspaceOperations:
    """The operations for `root` without a session: no agent edits to undo or commit, git read as usual."""
    from gptoss_agent.tools.context import ToolContext

    return WorkspaceOperations(ToolContext(workspace=root))


def tree_lock(root: Path | str):
    """The work tree's lock in this process: held by every command and test and by each editor file operation,
    so the editor never resolves a path while something of ours may change the tree's links."""
    from gptoss_agent.tools.editor_files import tree_lock as lock

    return lock(root)


def editor_files(**methods):
    """The editor's file methods (read_text, write_text, unsafe, notify) as `Runtime.use_editor_files` takes them."""
    from gptoss_agent.tools.editor_files import EditorFiles

    return EditorFiles(**methods)


def editor_patch_preview(root: Path | str, files, patch: str) -> list[tuple[str, str | None, str]]:
    """What an apply_patch call would write, per file (name, text now or None, new text), read from the editor's
    buffers when it offers them and may be asked now, else from the disk, inside the jail either way."""
    from gptoss_agent.tools.editor_files import preview_patch
    from gptoss_agent.tools.patch import PatchError
    from gptoss_agent.tools.paths import PathRefused

    try:
        return preview_patch(root, files, patch)
    except (PatchError, OSError, PathRefused) as exc:
        raise OperationFailed(str(exc)) from None


def trusted_git(args: list[str], cwd: Path):
    """git run for the user's own bookkeeping (batch's worktrees and branches), through the sandbox module's
    `run_trusted` like every process we start: the completed process (returncode, stdout, stderr as bytes)."""
    from gptoss_agent.tools.sandbox import run_trusted

    return run_trusted(["git", *args], cwd=cwd)


def write_new_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write one of our own files (a batch report beside its plan) without following a link at its name."""
    from gptoss_agent.tools.paths import write_new_file as write

    write(path, data, mode=mode)


def commit_subject(prefix: str, text: str) -> str:
    """A commit subject: `prefix` plus a summary of `text` (its first meaningful line), within git's limit."""
    from gptoss_agent.tools.commit_message import prefixed_subject

    return prefixed_subject(prefix, text)


def environment_model_note(diagnosis) -> str:
    """What the model reads about environment problems (no test ids: those are the repository's text)."""
    from gptoss_agent.tools.environment_problems import model_note

    return model_note(diagnosis)


def sandbox_report(mode: str):
    """`doctor`: the sandbox mechanism `mode` finds on this machine, and each guarantee with whether it holds."""
    from gptoss_agent.tools.sandbox import detect, sandbox_properties

    report = detect(mode)
    return report, sandbox_properties(report.mechanism)


def python_env_lines(root: Path, override: str | None) -> list[str]:
    """`doctor`: the project's Python for `root` (your `python` setting first), in lines (folder names unescaped)."""
    from gptoss_agent.tools.python_env import detect, doctor_lines

    return doctor_lines(detect(root, override=override))
