"""Git for the agent: status, diff, commit what the agent changed, and undo (GitPython).

Every git call runs with hooks off, fsmonitor off and transports refused, so a
hook or `core.fsmonitor` planted in the repository never executes. The agent
never pushes, fetches, rewrites or resets commits it did not make.
"""

from __future__ import annotations

from pathlib import Path

from agent.types import ToolResult
from tools.context import ToolContext
from tools.paths import write_atomic
from tools.registry import tool
from tools.sandbox import hardened_git_env

TRAILER = "Co-authored-by: gptoss-agent <gptoss-agent@localhost>"


class GitError(RuntimeError):
    """A git operation was refused or failed; the message says why."""


def open_repo(workspace: Path):
    """A GitPython repo whose every git call is hardened."""
    import git

    try:
        repo = git.Repo(workspace)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{workspace} is not a git repository (run `git init` first)") from None
    repo.git.update_environment(**hardened_git_env())
    return repo


def dirty_paths(workspace: Path) -> set[str]:
    """Every path with changes: modified, staged, deleted, renamed or untracked (not ignored)."""
    repo = open_repo(workspace)
    raw = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all")
    paths: set[str] = set()
    entries = raw.split("\0")
    index = 0
    while index < len(entries):
        entry = entries[index]
        if len(entry) > 3:
            paths.add(entry[3:])
            if entry[0] in "RC":  # a rename carries its source path next
                index += 1
                paths.add(entries[index])
        index += 1
    return paths


def status_text(workspace: Path) -> str:
    return open_repo(workspace).git.status("--short", "--branch")


def diff_text(workspace: Path) -> str:
    """The working tree against HEAD, untracked files included (for /diff and the UI)."""
    repo = open_repo(workspace)
    untracked = repo.untracked_files
    parts = [repo.git.diff("HEAD") if repo.head.is_valid() else ""]
    for name in untracked:
        parts.append(repo.git.diff("--no-index", "--", "/dev/null", name, with_exceptions=False))
    return "\n".join(p for p in parts if p)


def current_branch(workspace: Path) -> str | None:
    repo = open_repo(workspace)
    return None if repo.head.is_detached else repo.active_branch.name


def commit_changes(ctx: ToolContext, message: str, *, include_user_changes: bool = False) -> tuple[str, list[str], list[str]]:
    """Commit what the agent changed; returns (sha, committed paths, skipped user paths)."""
    import git

    repo = open_repo(ctx.workspace)
    changed = dirty_paths(ctx.workspace)
    skipped = sorted(changed & ctx.baseline_dirty) if not include_user_changes else []
    paths = sorted(changed - set(skipped))
    if not paths:
        raise GitError("nothing to commit: the agent has not changed any file" +
                       (f" (left alone: {', '.join(skipped)}, which you had modified before)" if skipped else ""))
    body = message.strip() or "Changes by gptoss-agent"
    if TRAILER not in body:
        body += "\n\n" + TRAILER
    env = {}
    reader = repo.config_reader()
    if not reader.has_option("user", "name"):
        env.update(GIT_AUTHOR_NAME="gptoss-agent", GIT_COMMITTER_NAME="gptoss-agent")
    if not reader.has_option("user", "email"):
        env.update(GIT_AUTHOR_EMAIL="gptoss-agent@localhost", GIT_COMMITTER_EMAIL="gptoss-agent@localhost")
    try:
        repo.git.add("-A", "--", *paths)
        with repo.git.custom_environment(**env):
            repo.git.commit("--no-verify", "-m", body, "--only", "--", *paths)
    except git.GitCommandError as exc:
        raise GitError(f"git commit failed: {exc.stderr.strip() or exc}") from None
    sha = repo.head.commit.hexsha
    ctx.agent_commits.append(sha)
    for path in paths:
        ctx.changes.pop(path, None)
    return sha, paths, skipped


@tool("functions.git_commit", mutating=True, string_argument="message")
def git_commit(ctx: ToolContext, message: str) -> ToolResult:
    """Commit the changes you made (only yours; the user's pending edits are left alone).

    Args:
        message: the commit message: a short summary line, then details if useful
    """
    try:
        sha, paths, skipped = commit_changes(ctx, message)
    except GitError as exc:
        return ToolResult.error(str(exc))
    text = f"Committed {sha[:12]}: {len(paths)} file(s): {', '.join(paths)}"
    if skipped:
        text += f"\nNot committed (the user had modified them before this session): {', '.join(skipped)}"
    return ToolResult(True, text, data={"sha": sha, "message": message, "files": paths, "skipped": skipped})


def undo(ctx: ToolContext) -> str:
    """Revert the agent's uncommitted edits, else its last commit; refuse if the user changed those files."""
    import git

    if ctx.changes:
        touched = [p for p, c in ctx.changes.items() if _read(ctx.workspace / p) != c.after]
        if touched:
            raise GitError(f"not undoing: {', '.join(sorted(touched))} changed since the agent edited them")
        for path, change in ctx.changes.items():
            target = ctx.workspace / path
            if change.before is None:
                target.unlink(missing_ok=True)
            else:
                write_atomic(target, change.before)
        restored = sorted(ctx.changes)
        ctx.changes.clear()
        return f"restored {len(restored)} file(s) to their state before the agent's edits: {', '.join(restored)}"
    if not ctx.agent_commits:
        raise GitError("nothing to undo: the agent has made no edits or commits in this session")
    repo = open_repo(ctx.workspace)
    head = repo.head.commit.hexsha
    last = ctx.agent_commits[-1]
    if head != last:
        raise GitError(f"not undoing: HEAD is {head[:12]}, not the agent's last commit {last[:12]}; "
                       "the agent only undoes its own commits")
    try:
        repo.git.reset("--keep", "HEAD~1")
    except git.GitCommandError as exc:
        raise GitError(f"not undoing: {exc.stderr.strip() or exc}") from None
    ctx.agent_commits.pop()
    return f"reverted the agent's commit {last[:12]}"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
