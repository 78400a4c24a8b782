"""Git for the agent: status, diff, commit exactly what the agent wrote, and undo only the agent's own work.

Every git process goes through tools.host_git (nothing the repository
controls runs). Commits are built from the bytes the agent recorded, not from
whatever the work tree holds: a temporary index starts from HEAD, gets one
blob per file the agent wrote, and becomes a commit whose parent is HEAD; the
branch moves only if HEAD has not moved meanwhile. So the user's other edits,
staged or not, new files, files a test run created and nested repositories
are never swept in, and a file the user edited after the agent wrote it, or
between two of the agent's writes, is reported as a conflict instead of being
committed or reverted.

Limit, said plainly: a file written while one of the agent's commands runs is
attributed to that command (tools/attribution.py); the sandbox does not yet
give each command a copy-on-write view that would tell the two apart.

Undo restores the agent's recorded before-content through no-follow writes
(tools.worktree_io) and moves the branch back only for a commit this process
made, while HEAD is still that commit and its parent the recorded base; a sha
read from a session log never authorises a reset.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gptoss_agent.agent.events import Committed
from gptoss_agent.agent.types import ToolResult
from gptoss_agent.tools import worktree_io
from gptoss_agent.tools.attribution import ignored_at_start, is_git_dir, status_entries
from gptoss_agent.tools.commit_message import TRAILER, compose
from gptoss_agent.tools.context import FileChange, ToolContext
from gptoss_agent.tools.host_git import HostGitError, find_root, one_operation, run_git, validate
from gptoss_agent.tools.registry import ToolError, tool

__all__ = ["TRAILER", "GitError", "git_commit", "commit_changes", "commit_agent_changes", "left_out_of_commit", "undo",
           "dirty_paths",
           "diff_text", "current_branch", "repository_root"]

DIFF_CAP = 2 * 2**20


class GitError(RuntimeError):
    """A git operation was refused or failed; the message says why."""


@dataclass(frozen=True)
class _AgentCommit:
    """A commit this process made: its parent and the changes it holds (with their before-contents)."""

    workspace: Path
    base: str | None
    changes: dict[str, FileChange]


_MADE_HERE: dict[str, _AgentCommit] = {}


@dataclass
class CommitReport:
    sha: str
    files: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # path → why it was not committed
    message: str = ""
    conflicts: list[str] = field(default_factory=list)  # files both the user and the agent changed
    by_command: list[str] = field(default_factory=list)  # committed files a command wrote (see the limit above)

BOTH_EDITED = ("a conflict: you edited it between two of the agent's edits, so it holds both your changes "
               "and the agent's; yours to review and commit")


def repository_root(cwd: Path) -> Path:
    """The validated work-tree root for `cwd` (found and checked without running repository code)."""
    try:
        return validate(find_root(cwd)).root
    except HostGitError as exc:
        raise GitError(str(exc)) from None


def _git(workspace: Path, *args: str, **kwargs):
    try:
        return run_git(workspace, *args, **kwargs)
    except HostGitError as exc:
        raise GitError(str(exc)) from None


def dirty_paths(workspace: Path) -> set[str]:
    """Every path with changes: modified, staged, deleted or untracked (not ignored); nested repos end in '/'."""
    try:
        return {path for _, path in status_entries(workspace)}
    except HostGitError as exc:
        raise GitError(str(exc)) from None


def current_branch(workspace: Path) -> str | None:
    done = _git(workspace, "symbolic-ref", "-q", "--short", "HEAD")
    return done.text.strip() if done.ok else None


def _head(workspace: Path) -> str | None:
    done = _git(workspace, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    return done.text.strip() if done.ok else None


def diff_text(workspace: Path) -> str:
    """The working tree against HEAD, untracked files included (for /diff and the UI)."""
    with one_operation():
        return _diff_text(workspace)


def _diff_text(workspace: Path) -> str:
    head = _head(workspace) or _git(workspace, "hash-object", "-t", "tree", "--stdin", input=b"").text.strip()
    parts = [_git(workspace, "diff", head, "--", check=True).text]
    for code, path in status_entries(workspace):
        if code != "??":
            continue
        if path.endswith("/"):
            parts.append(f"# {path}: a nested repository, not shown and never committed by the agent\n")
            continue
        parts.append(_new_file_diff(workspace, path))
    text = "".join(p for p in parts if p)
    if len(text) > DIFF_CAP:
        text = text[:DIFF_CAP] + f"\n# diff cut at {DIFF_CAP >> 20} MiB\n"
    return text


def _new_file_diff(workspace: Path, path: str) -> str:
    try:
        data = worktree_io.read_file(workspace, path, cap=DIFF_CAP)
    except OSError as exc:
        return f"# {path}: not shown ({exc})\n"
    data = data or b""
    header = f"diff --git a/{path} b/{path}\nnew file mode 100644\n"
    if b"\0" in data[:8000]:
        return header + f"Binary files /dev/null and b/{path} differ\n"
    lines = data.decode("utf-8", "replace").splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    if data and not data.endswith(b"\n"):
        body += "\\ No newline at end of file\n"
    return header + f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n" + body if lines else header


def commit_agent_changes(ctx: ToolContext, message: str, *, tests: str | None = None) -> CommitReport:
    """Commit the files the agent wrote, with exactly the content it left there (see the module docstring)."""
    with one_operation():
        return _commit_agent_changes(ctx, message, tests)


def _commit_agent_changes(ctx: ToolContext, message: str, tests: str | None) -> CommitReport:
    workspace = ctx.workspace
    base = _head(workspace)
    committed, skipped = _committable(ctx, base)
    if not committed:
        reasons = "; ".join(f"{p}: {why}" for p, why in sorted(skipped.items()))
        raise GitError("nothing to commit: the agent has not changed any file" +
                       (f" (not committed: {reasons})" if reasons else ""))
    text = compose(message, tests=tests)
    sha = _write_commit(workspace, base, {p: ctx.changes[p].after for p in committed}, text)
    by_command = sorted(p for p in committed if ctx.changes[p].by_command)
    _MADE_HERE[sha] = _AgentCommit(workspace, base, {p: ctx.changes.pop(p) for p in committed})
    ctx.agent_commits.append(sha)
    try:
        _sync_index(workspace, sha, committed)
    except GitError as exc:  # the commit stands; only the index's view of these files is stale
        skipped["(index)"] = f"the index was not updated for the committed files: {exc}"
    for path in dirty_paths(workspace):
        if path.endswith("/") and path not in skipped:
            skipped[path] = "a nested repository; the agent never commits one"
    conflicts = sorted(p for p, why in skipped.items() if why.startswith("a conflict") or "(a conflict" in why)
    return CommitReport(sha, committed, skipped, text, conflicts, by_command)


def left_out_of_commit(ctx: ToolContext) -> dict[str, str]:
    """The agent's changed files that a commit now would leave out (path → why), committing nothing.

    `fix` asks first: a fix whose files cannot all be committed is not a committed fix.
    """
    with one_operation():
        return _committable(ctx, _head(ctx.workspace))[1]


def commit_changes(ctx: ToolContext, message: str, *, tests: str | None = None) -> tuple[str, list[str], list[str]]:
    """(sha, committed paths, paths left out): the tuple form of commit_agent_changes."""
    report = commit_agent_changes(ctx, message, tests=tests)
    return report.sha, report.files, sorted(report.skipped)


def _committable(ctx: ToolContext, base: str | None) -> tuple[list[str], dict[str, str]]:
    """Split the agent's recorded files into those to commit and those to leave, with the reason."""
    paths = sorted(ctx.changes)
    head_content = _blobs(ctx.workspace, base, paths)
    ignored = _ignored(ctx.workspace, [p for p in paths if p not in head_content])
    committed, skipped = [], {}
    for path in paths:
        change = ctx.changes[path]
        if path in ignored or ignored_at_start(ctx, path):
            skipped[path] = "ignored by the repository's .gitignore (now or when the session started)"
            continue
        if _inside_nested_repository(ctx.workspace, path):
            skipped[path] = "inside a nested repository; the agent never commits into one"
            continue
        try:
            now = worktree_io.read_file(ctx.workspace, path)
        except OSError as exc:
            skipped[path] = f"not a regular file any more ({exc})"
            continue
        if change.user_between:
            skipped[path] = BOTH_EDITED
        elif now != change.after:
            skipped[path] = "changed since the agent wrote it (a conflict: yours to resolve)"
        elif change.before != head_content.get(path):
            skipped[path] = "held uncommitted changes of yours before the agent edited it"
        elif change.after == head_content.get(path):
            ctx.changes.pop(path)  # back to the committed content: nothing to commit, nothing to undo
        else:
            committed.append(path)
    return committed, skipped


def _inside_nested_repository(workspace: Path, path: str) -> bool:
    parts = Path(path).parts[:-1]
    return any(os.path.lexists(workspace.joinpath(*parts[:depth], ".git")) or is_git_dir(workspace.joinpath(*parts[:depth]))
               for depth in range(1, len(parts) + 1))


def _ignored(workspace: Path, paths: list[str]) -> set[str]:
    """Which of these untracked paths .gitignore excludes (git add would refuse them too); names are literal."""
    if not paths:
        return set()
    done = _git(workspace, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--", *paths, check=True)
    return {p.decode("utf-8", "surrogateescape") for p in done.stdout.split(b"\0") if p}


def _blobs(workspace: Path, commit: str | None, paths: list[str]) -> dict[str, bytes]:
    """Content at `commit` of each path that exists there (work-tree form, no filter programs run)."""
    if commit is None or not paths:
        return {}
    found = {}
    for path in paths:  # one call each: `--batch --filters` loses the path in git 2.39
        done = _git(workspace, "cat-file", "--filters", f"{commit}:{path}")
        if done.ok:
            found[path] = done.stdout
    return found


def _modes(workspace: Path, commit: str | None, paths: list[str]) -> dict[str, str]:
    if commit is None or not paths:
        return {}
    done = _git(workspace, "ls-tree", "-z", commit, "--", *paths, check=True)
    modes = {}
    for row in done.stdout.split(b"\0"):
        if b"\t" in row:
            meta, name = row.split(b"\t", 1)
            modes[name.decode("utf-8", "surrogateescape")] = meta.split()[0].decode()
    return modes


def _write_commit(workspace: Path, base: str | None, contents: dict[str, bytes | None], message: str) -> str:
    """Commit `contents` (None: delete) on top of `base` through a temporary index; move the branch atomically."""
    paths = sorted(contents)
    base_modes = _modes(workspace, base, paths)
    entries = []
    for path in paths:
        data = contents[path]
        if data is None:
            entries.append(("0", None, path))
            continue
        # --path: the repository's line-ending rules apply as `git add` would; filter programs are neutralised.
        blob = _git(workspace, "hash-object", "-w", f"--path={path}", "--stdin", input=data, check=True).text.strip()
        executable = worktree_io.is_executable(workspace, path)
        mode = "100755" if executable else "100644"
        if base_modes.get(path) not in (None, "100644", "100755"):
            mode = base_modes[path] if base_modes[path] != "120000" else mode
        entries.append((mode, blob, path))
    with tempfile.TemporaryDirectory(prefix="gptoss-index-") as private:
        index = {"GIT_INDEX_FILE": str(Path(private) / "index")}
        if base:
            _git(workspace, "read-tree", base, env=index, check=True)
        else:
            _git(workspace, "read-tree", "--empty", env=index, check=True)
        _git(workspace, "update-index", "-z", "--index-info", env=index, check=True,
             input=_index_info(entries, _null_oid(base)))
        tree = _git(workspace, "write-tree", env=index, check=True).text.strip()
    parents = ["-p", base] if base else []
    sha = _git(workspace, "commit-tree", "--no-gpg-sign", tree, *parents, "-F", "-", input=message.encode(),
               env=_identity(workspace), check=True).text.strip()
    moved = _git(workspace, "update-ref", "-m", "gptoss-agent: commit", "HEAD", sha, base or "")
    if not moved.ok:
        raise GitError(f"not committed: HEAD moved while the agent was committing ({moved.error})")
    return sha


def _index_info(entries: list[tuple[str, str | None, str]], null: str) -> bytes:
    return b"".join(f"{mode} {blob or null}\t{path}".encode("utf-8", "surrogateescape") + b"\0"
                    for mode, blob, path in entries)


def _null_oid(sample: str | None) -> str:
    return "0" * (len(sample) if sample else 40)


def _sync_index(workspace: Path, commit: str | None, paths: list[str]) -> None:
    """Make the real index hold `commit`'s version of `paths` (absent: removed), leaving other entries alone."""
    entries: dict[str, tuple[str, str | None]] = {p: ("0", None) for p in paths}
    if commit:
        listed = _git(workspace, "ls-tree", "-z", commit, "--", *paths, check=True).stdout
        for row in listed.split(b"\0"):
            if b"\t" in row:
                meta, name = row.split(b"\t", 1)
                mode, _, blob = meta.decode().split()
                entries[name.decode("utf-8", "surrogateescape")] = (mode, blob)
    rows = [(mode, blob, path) for path, (mode, blob) in entries.items()]
    _git(workspace, "update-index", "-z", "--index-info", input=_index_info(rows, _null_oid(commit)), check=True)


def _identity(workspace: Path) -> dict[str, str]:
    """The user's own identity when git has one; otherwise the agent's."""
    listed = _git(workspace, "config", "--get-regexp", r"^user\.(name|email)$").text
    found = {line.split(" ", 1)[0] for line in listed.splitlines() if " " in line and line.split(" ", 1)[1].strip()}
    env = {}
    if "user.name" not in found:
        env.update(GIT_AUTHOR_NAME="gptoss-agent", GIT_COMMITTER_NAME="gptoss-agent")
    if "user.email" not in found:
        env.update(GIT_AUTHOR_EMAIL="gptoss-agent@localhost", GIT_COMMITTER_EMAIL="gptoss-agent@localhost")
    return env


@tool("functions.git_commit", mutating=True, string_argument="message")
def git_commit(ctx: ToolContext, message: str) -> ToolResult:
    """Commit the changes you made (only yours; the user's edits and new files are left alone).

    Args:
        message: the commit message: a summary line of at most 72 characters, then details if useful
    """
    try:
        report = commit_agent_changes(ctx, message)
    except GitError as exc:
        raise ToolError(str(exc)) from None
    text = f"Committed {report.sha[:12]}: {len(report.files)} file(s): {', '.join(report.files)}"
    if report.skipped:
        text += "\nNot committed: " + "; ".join(f"{p} ({why})" for p, why in sorted(report.skipped.items()))
    if report.conflicts:
        text += "\nConflicts (changed by both you and the agent, left for you): " + ", ".join(report.conflicts)
    if report.by_command:
        text += (f"\nWritten by a command: {', '.join(report.by_command)}; a change anyone else made to these "
                 "files while that command ran counts as the command's (commands do not yet get a copy-on-write "
                 "view of the work tree)")
    subject = report.message.split("\n", 1)[0]
    ctx.emitter.emit(Committed(report.sha, subject))
    return ToolResult(True, text, data={"sha": report.sha, "message": subject, "files": report.files,
                                        "skipped": sorted(report.skipped), "conflicts": report.conflicts,
                                        "written_by_commands": report.by_command})


def undo(ctx: ToolContext) -> str:
    """Revert the agent's uncommitted edits, else its last commit; refuse, saying why, if the user touched them."""
    with one_operation():
        return _undo(ctx)


def _undo(ctx: ToolContext) -> str:
    if ctx.changes:
        changes = dict(ctx.changes)
        both = sorted(p for p, change in changes.items() if change.user_between)
        # A file both edited goes back only to the state right before the agent's last write: earlier
        # restores would drop the user's bytes written in between.
        targets = {p: FileChange(c.before_last if c.user_between else c.before, c.after) for p, c in changes.items()}
        restored = _restore(ctx.workspace, targets)
        ctx.changes.clear()
        text = f"restored {len(restored)} file(s) to their state before the agent's edits: {', '.join(restored)}"
        if both:
            text += (f"; {', '.join(both)}: you edited it between the agent's edits, so only the agent's last edit "
                     "was undone and your edits (and the agent's earlier ones) are kept")
        return text
    if not ctx.agent_commits:
        raise GitError("nothing to undo: the agent has made no edits or commits in this session")
    last = ctx.agent_commits[-1]
    record = _MADE_HERE.get(last)
    if record is None or record.workspace != ctx.workspace:
        raise GitError(f"not undoing {last[:12]}: the agent only undoes its own commits made in this run "
                       "(a commit named in a session log is not proof)")
    head = _head(ctx.workspace)
    if head != last:
        raise GitError(f"not undoing: HEAD is {(head or 'unborn')[:12]}, not the agent's last commit {last[:12]}; "
                       "the agent only undoes its own commits")
    parent = _git(ctx.workspace, "rev-parse", "-q", "--verify", f"{last}^1").text.strip() or None
    if parent != record.base:
        raise GitError(f"not undoing {last[:12]}: its parent is not the commit it was made on")
    paths = sorted(record.changes)
    staged = _git(ctx.workspace, "diff-index", "--cached", "--name-only", "-z", last, "--", *paths, check=True)
    if staged.stdout.strip(b"\0"):
        raise GitError("not undoing: you staged other changes to " + staged.text.replace("\0", " ").strip())
    _preflight(ctx.workspace, record.changes)
    moved = _git(ctx.workspace, "update-ref", "-m", "gptoss-agent: undo", "HEAD", record.base, last) \
        if record.base else _git(ctx.workspace, "update-ref", "-d", "HEAD", last)
    if not moved.ok:
        raise GitError(f"not undoing: HEAD moved meanwhile ({moved.error})")
    _restore(ctx.workspace, record.changes, checked=True, modes=_modes(ctx.workspace, record.base, paths))
    _sync_index(ctx.workspace, record.base, paths)
    ctx.agent_commits.pop()
    del _MADE_HERE[last]
    return f"reverted the agent's commit {last[:12]} ({len(paths)} file(s): {', '.join(paths)})"


def _preflight(workspace: Path, changes: dict[str, FileChange]) -> None:
    """Refuse, naming the files, unless each still holds exactly what the agent left and no link is in the way."""
    touched, blocked = [], []
    for path, change in sorted(changes.items()):
        try:
            if worktree_io.read_file(workspace, path) != change.after:
                touched.append(path)
        except OSError as exc:
            blocked.append(f"{path} ({exc})")
    if blocked:
        raise GitError("not undoing: " + "; ".join(blocked))
    if touched:
        raise GitError(f"not undoing: {', '.join(touched)} changed since the agent edited them "
                       "(your edits are kept; undo would lose them)")


def _restore(workspace: Path, changes: dict[str, FileChange], *, checked: bool = False,
             modes: dict[str, str] | None = None) -> list[str]:
    if not checked:
        _preflight(workspace, changes)
    for path, change in sorted(changes.items()):
        try:
            if change.before is None:
                worktree_io.remove_file(workspace, path)
            else:
                mode = {"100755": 0o755, "100644": 0o644}.get((modes or {}).get(path, ""))
                worktree_io.write_file(workspace, path, change.before, mode=mode)
        except OSError as exc:
            raise GitError(f"undo stopped at {path}: {exc}") from None
    return sorted(changes)
