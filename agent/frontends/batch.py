"""`gptoss-agent batch PLAN.toml`: many tasks, each in its own git worktree and branch.

Tasks never see each other's edits and the user's checkout is never touched:
every task starts from HEAD in a worktree on `gptoss/BATCH/TASK`. A manifest
(JSONL beside the plan) records each task as it finishes, so an interrupted
batch resumes with only what is left. Generation on the embedded model is
serialised (one llama.cpp context) while other tasks' tool work overlaps it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import stat
import string
import threading
import time
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

PLAN_KEYS = {"defaults", "tasks"}
DEFAULT_KEYS = {"reasoning", "test_cmd", "max_steps", "approval", "commit_message", "backend", "model"}
TASK_KEYS = {"id", "instruction", "files", "per_file", "test_cmd", "max_steps", "reasoning", "commit_message"}
DEFAULT_COMMIT = "{task_id}: {instruction}"
COMMIT_FIELDS = ("task_id", "instruction", "file")
TASK_ID = r"[A-Za-z0-9._-]+"
BRANCH = re.compile(rf"gptoss/{TASK_ID}/{TASK_ID}")
MANIFEST_MAX_BYTES = 16 * 1024 * 1024


class PlanError(ValueError):
    """The plan cannot run; the message names the problem in one line."""


@dataclass(frozen=True)
class BatchTask:
    id: str
    instruction: str
    test_cmd: str | None = None
    max_steps: int | None = None
    reasoning: str | None = None
    commit_message: str = DEFAULT_COMMIT
    file: str | None = None


@dataclass
class TaskOutcome:
    task: str
    status: str  # done | failed | error
    branch: str
    commit: str | None = None
    files: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    tests: str = ""
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    reason: str = ""


# ---------------------------------------------------------------------- plan

def load_plan(path: Path, repo_files: list[str]) -> tuple[dict[str, Any], list[BatchTask]]:
    """Parse and check the plan; fan `per_file` tasks out over their globs."""
    try:
        data = tomllib.loads(_read_plan(path).decode("utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plan not found: {path}") from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the plan ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # bad TOML, an integer too long, nesting too deep
        raise PlanError(f"{path}: not valid TOML ({str(exc)[:200] or type(exc).__name__})") from None
    problem = _plan_shape_problem(data)
    if problem:
        raise PlanError(f"{path}: {problem}")
    _unknown(data, PLAN_KEYS, f"{path}")
    defaults = data.get("defaults", {})
    _unknown(defaults, DEFAULT_KEYS, f"{path} [defaults]")
    raw_tasks = data.get("tasks", [])
    if not raw_tasks:
        raise PlanError(f"{path}: no [[tasks]]")
    tasks: list[BatchTask] = []
    for number, raw in enumerate(raw_tasks, 1):
        _unknown(raw, TASK_KEYS, f"{path} task {number}")
        if not raw.get("id") or not raw.get("instruction"):
            raise PlanError(f"{path} task {number}: needs an id and an instruction")
        template = raw.get("commit_message", defaults.get("commit_message", DEFAULT_COMMIT))
        problem = commit_template_problem(template)
        if problem:
            raise PlanError(f"{path} task {number}: commit_message {problem}")
        common = dict(test_cmd=raw.get("test_cmd", defaults.get("test_cmd")),
                      max_steps=raw.get("max_steps", defaults.get("max_steps")),
                      reasoning=raw.get("reasoning", defaults.get("reasoning")),
                      commit_message=template)
        globs = raw.get("files", [])
        matched = sorted({f for g in globs for f in repo_files if fnmatch.fnmatch(f, g)})
        if globs and not matched:
            raise PlanError(f"{path} task {raw['id']!r}: the glob(s) {', '.join(globs)} match no file")
        if raw.get("per_file"):
            if not globs:
                raise PlanError(f"{path} task {raw['id']!r}: per_file needs files = [globs]")
            for name in matched:
                tasks.append(BatchTask(f"{raw['id']}-{_slug(name)}", _with_file(raw["instruction"], name), file=name,
                                       **common))
        else:
            instruction = raw["instruction"] + (f"\n\nFiles: {', '.join(matched)}" if matched else "")
            tasks.append(BatchTask(raw["id"], instruction, **common))
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise PlanError(f"{path}: task id {task.id!r} is used twice")
        if not re.fullmatch(TASK_ID, task.id):
            raise PlanError(f"{path}: task id {task.id!r} may only hold letters, digits, '.', '_' and '-'")
        seen.add(task.id)
    return defaults, tasks


PLAN_MAX_BYTES = 4 * 1024 * 1024


def _read_plan(path: Path) -> bytes:
    """The plan's bytes: the user's own file, so a link is followed, but a FIFO or device is refused
    (reading one would hang or never end) and the size is capped."""
    return _read_regular(path, PLAN_MAX_BYTES, follow=True)


_TASK_TYPES = {"id": str, "instruction": str, "files": list, "per_file": bool, "test_cmd": str, "max_steps": int,
               "reasoning": str, "commit_message": str}
_DEFAULT_TYPES = {"reasoning": str, "test_cmd": str, "max_steps": int, "approval": str, "commit_message": str,
                  "backend": str, "model": str}


def _plan_shape_problem(data: Any) -> str | None:
    """Why the parsed plan has the wrong types (`id = 5`, `tasks = [1]`, `defaults = 5`), or None."""
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        return "[defaults] must be a table"
    tasks = data.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        return "tasks must be [[tasks]] tables"
    for where, table, types in [("[defaults]", defaults, _DEFAULT_TYPES)] + [
            (f"task {n}", task, _TASK_TYPES) for n, task in enumerate(tasks, 1)]:
        for key, wanted in types.items():
            value = table.get(key)
            if value is None:
                continue
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                name = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}[wanted]
                return f"{where}: {key} must be {name}, not {value!r:.40}"
            if key == "files" and not all(isinstance(g, str) for g in value):
                return f"{where}: files must be a list of glob strings"
    return None


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise PlanError(f"{where}: unknown key(s) {', '.join(extra)} (known: {', '.join(sorted(allowed))})")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _with_file(instruction: str, name: str) -> str:
    return instruction.replace("{file}", name) if "{file}" in instruction else f"{instruction}\n\nFile: {name}"


# ---------------------------------------------------------------------- commit messages

def commit_template_problem(template: object) -> str | None:
    """Why a commit_message template is refused: only {task_id}, {instruction} and {file}, nothing else.

    `str.format` would also evaluate `{instruction.__class__.__mro__}` or `{file[0]}`; this
    template language has named fields and `{{ }}` for literal braces, no attributes,
    indexes, conversions or format specs.
    """
    if not isinstance(template, str):
        return "must be a string"
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"is not a valid template ({exc}); write {{{{ and }}}} for literal braces"
    for _text, name, spec, conversion in pieces:
        if name is None:
            continue
        if name not in COMMIT_FIELDS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            return f"may only use {', '.join('{' + f + '}' for f in COMMIT_FIELDS)}, not {shown}"
    return None


def render_commit_message(template: str, **values: str) -> str:
    """Fill a template checked by `commit_template_problem`: plain substitution, never attribute access."""
    if commit_template_problem(template):
        template = DEFAULT_COMMIT
    out = []
    for text, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(text)
        if name is not None:
            out.append(str(values.get(name, "")))
    return "".join(out)


# ---------------------------------------------------------------------- manifest and report

# The manifest's record schema: field → (types, required). Anything else in a record is ignored.
_RECORD_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "batch": ((str,), True), "task": ((str,), True), "status": ((str,), True), "branch": ((str,), True),
    "commit": ((str, type(None)), False), "files": ((list,), False), "added": ((int,), False),
    "removed": ((int,), False), "tests": ((str,), False), "steps": ((int,), False), "tokens": ((int,), False),
    "seconds": ((int, float), False), "reason": ((str,), False),
}


def manifest_record(record: object) -> tuple[TaskOutcome | None, str]:
    """A manifest line as a TaskOutcome, or (None, why it was refused). The manifest is data, not authority."""
    if not isinstance(record, dict):
        return None, "not a JSON object"
    for name, (types, required) in _RECORD_FIELDS.items():
        if name not in record:
            if required:
                return None, f"no {name!r}"
            continue
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, types):
            return None, f"{name!r} is not a {' or '.join(t.__name__ for t in types if t is not type(None))}"
    if not re.fullmatch(TASK_ID, record["task"]) or not re.fullmatch(TASK_ID, record["batch"]):
        return None, "a task or batch id with characters a plan cannot produce"
    if record["status"] not in ("done", "failed", "error"):
        return None, f"unknown status {record['status']!r}"
    if record["branch"] and not BRANCH.fullmatch(record["branch"]):
        return None, f"a branch name this tool does not make ({record['branch']!r})"
    commit = record.get("commit")
    if commit is not None and not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit):
        return None, "a commit that is not a full hexadecimal object id"
    if not all(isinstance(f, str) for f in record.get("files", [])):
        return None, "'files' holds something other than file names"
    fields = {k: v for k, v in record.items() if k in TaskOutcome.__dataclass_fields__}
    return TaskOutcome(**fields), ""


class Manifest:
    """JSONL beside the plan: one record per task outcome, appended as it happens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> tuple[str | None, dict[str, TaskOutcome], list[str]]:
        """(batch id, finished tasks, warnings): records that fail the schema are skipped, naming file and line."""
        try:
            data = _read_regular(self.path, MANIFEST_MAX_BYTES)
        except FileNotFoundError:
            return None, {}, []
        except OSError as exc:
            return None, {}, [f"{self.path}: not used ({exc.strerror or exc}); every task runs again"]
        batch_id, finished, warnings = None, {}, []
        lines = data.decode("utf-8", errors="replace").split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                outcome, why = manifest_record(record)
            except (ValueError, RecursionError):  # ValueError: also an integer too long to convert
                if number == len(lines):
                    continue  # a torn last line: the task it described runs again
                outcome, why = None, "not valid JSON"
            if outcome is None:
                warnings.append(f"{self.path} line {number}: record skipped ({why})")
                continue
            batch = record["batch"]
            if batch_id is not None and batch != batch_id:
                warnings.append(f"{self.path} line {number}: record skipped (it belongs to batch {batch}, "
                                f"not {batch_id})")
                continue
            batch_id = batch
            finished[outcome.task] = outcome
        return batch_id, finished, warnings

    def check_target(self) -> None:
        """Refuse, before any task runs, a manifest name that is a link or not a regular file: every
        record would be refused after its task ran, and the batch's progress lost."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(info.st_mode):
            raise PlanError(f"{self.path} is a link or not a regular file; the batch records nothing through it. "
                            "Remove it (or move the plan) and run again")

    def write(self, batch_id: str, record: dict) -> None:
        line = (json.dumps({"batch": batch_id, **record}) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(f"{self.path} is not a regular file")
                os.write(fd, line)
            finally:
                os.close(fd)


def _read_regular(path: Path, limit: int, *, follow: bool = False) -> bytes:
    """Bytes of a regular file, capped; a link at its name is refused unless `follow`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > limit:
            raise OSError(0, f"larger than {limit} bytes")
        return os.read(fd, limit)
    finally:
        os.close(fd)


def write_report(path: Path, text: str) -> None:
    """Write a report beside the plan: never through a link at its name (the repository may ship one)."""
    try:
        from gptoss_agent.agent.operations import write_new_file
    except ImportError:  # pragma: no cover - the shared helper not there yet
        write_new_file = _write_new_file
    write_new_file(path, text.encode(errors="backslashreplace"), mode=0o644)  # a lone surrogate is shown, not fatal


def _write_new_file(path: Path, data: bytes, *, mode: int) -> None:
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OSError(0, f"{path} is a link or not a regular file; not written through")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def merge_command(outcomes: list[TaskOutcome]) -> str:
    """One line the user may paste: the successful branches, each quoted (they were checked against git)."""
    branches = [o.branch for o in outcomes if o.status == "done" and o.commit]
    return "git merge " + " ".join(shlex.quote(b) for b in branches) if branches else ""


def _cell(value: object) -> str:
    """A table cell: one line, no pipes, no control characters (text from the model, git and the manifest)."""
    text = " ".join(str(value).split())
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"<U+{ord(c):04X}>"
                   for c in text)
    return text.replace("|", "\\|")


def report_markdown(batch_id: str, outcomes: list[TaskOutcome]) -> str:
    lines = [f"# Batch {_cell(batch_id)}", "",
             "| task | status | branch | commit | files | +/- | tests | steps | tokens | time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {_cell(o.task)} | {_cell(o.status)} | {_cell(o.branch)} | {_cell((o.commit or '')[:10])} | "
                     f"{len(o.files)} | +{o.added}/-{o.removed} | {_cell(o.tests)} | {o.steps} | {o.tokens} | "
                     f"{o.seconds:.1f}s |")
    done = sum(o.status == "done" for o in outcomes)
    lines += ["", f"**{done} done, {len(outcomes) - done} not** — {sum(o.tokens for o in outcomes)} tokens, "
                  f"{sum(o.seconds for o in outcomes):.1f}s of task time."]
    command = merge_command(outcomes)
    if command:
        lines += ["", "Merge the successful branches (gptoss-agent never merges by itself):", "", f"    {command}"]
    for o in outcomes:
        if o.reason:
            lines.append(f"- {_cell(o.task)}: {_cell(o.reason)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- running

TaskRunner = Callable[[BatchTask, Path, str], TaskOutcome]


def run_batch(plan_path: Path, root: Path, tasks: list[BatchTask], run_task: TaskRunner, *, jobs: int = 1,
              resume: bool = False, on_progress: Callable[[str], None] = print,
              check: Callable[[TaskOutcome], TaskOutcome] = lambda outcome: outcome) -> tuple[str, list[TaskOutcome]]:
    """Run every task not finished yet, `jobs` at a time; returns (batch id, outcomes in plan order).

    `check` confirms each outcome against git (its branch and commit) before the
    report prints a command with them; the manifest is only a record, not a source of truth.
    """
    manifest = Manifest(plan_path.with_suffix(".manifest.jsonl"))
    manifest.check_target()
    batch_id, finished = None, {}
    if resume:
        batch_id, finished, warnings = manifest.read()
        for warning in warnings:
            on_progress(warning)
    batch_id = batch_id or time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
    pending = [t for t in tasks if t.id not in finished]
    if resume and finished:
        on_progress(f"resuming batch {batch_id}: {len(finished)} task(s) already finished, {len(pending)} to run")
    done_count = [len(finished)]
    lock = threading.Lock()

    def one(task: BatchTask) -> TaskOutcome:
        branch = f"gptoss/{batch_id}/{task.id}"
        on_progress(f"[{task.id}] started on {branch}")
        try:
            outcome = run_task(task, root, branch)
        except Exception as exc:  # one task's crash is its outcome: the others and the report still come
            outcome = TaskOutcome(task.id, "error", branch, reason=f"{type(exc).__name__}: {exc}")
        try:
            manifest.write(batch_id, asdict(outcome))
        except OSError as exc:
            on_progress(f"[{task.id}] not recorded in the manifest ({exc}); a resume runs it again")
        with lock:
            done_count[0] += 1
            on_progress(f"[{task.id}] {outcome.status} ({done_count[0]}/{len(tasks)})"
                        + (f": {outcome.reason}" if outcome.reason else ""))
        return outcome

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        fresh = {o.task: o for o in pool.map(one, pending)}
    outcomes = [check(fresh[t.id] if t.id in fresh else finished[t.id]) for t in tasks]
    for path, text in ((plan_path.with_suffix(".report.md"), report_markdown(batch_id, outcomes)),
                       (plan_path.with_suffix(".report.json"), json.dumps(
                           {"batch": batch_id, "tasks": [asdict(o) for o in outcomes],
                            "merge": merge_command(outcomes)}, indent=2))):
        try:
            write_report(path, text)
        except (OSError, ValueError) as exc:  # ValueError: tools.paths refused a link or special file
            on_progress(f"report not written: {exc}")
    return batch_id, outcomes
