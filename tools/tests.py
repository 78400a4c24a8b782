"""run_tests: detect the project's runner, run it in the sandbox, report structured failures.

For pytest the report is read from a JUnit XML file, never scraped from text.
Other runners (npm, go, cargo, or a configured command) report counts and
failing ids from their summary lines.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.types import ToolResult
from tools.context import ToolContext
from tools.registry import tool
from tools.sandbox import SandboxUnavailable

TEST_TIMEOUT_S = 600
TRACEBACK_LINES = 25
_LOCATION = re.compile(r"^([\w./-]+\.py):(\d+):", re.MULTILINE)


@dataclass(frozen=True)
class TestFailure:
    test_id: str
    location: str
    message: str
    traceback: str


@dataclass
class TestReport:
    runner: str
    command: list[str]
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failures: list[TestFailure] = field(default_factory=list)
    exit_code: int | None = None
    timed_out: bool = False
    output_tail: str = ""

    @property
    def green(self) -> bool:
        return self.exit_code == 0 and not self.failed and not self.errors and not self.timed_out

    @property
    def failing_ids(self) -> list[str]:
        return [f.test_id for f in self.failures]


def detect_runner(workspace: Path, override: str | None = None) -> tuple[str, list[str]]:
    """(runner name, base command). An explicit command wins; pytest is tried first."""
    if override:
        return "custom", shlex.split(override)
    python_markers = ("pytest.ini", "conftest.py", "pyproject.toml", "setup.cfg", "tox.ini", "setup.py")
    if any((workspace / m).exists() for m in python_markers) or any(workspace.glob("test*/**/test_*.py")) \
            or any(workspace.glob("test_*.py")):
        return "pytest", [_python(workspace), "-m", "pytest"]
    package = workspace / "package.json"
    if package.exists():
        try:
            if json.loads(package.read_text()).get("scripts", {}).get("test"):
                return "npm", ["npm", "test", "--silent"]
        except (OSError, json.JSONDecodeError):
            pass
    if (workspace / "go.mod").exists():
        return "go", ["go", "test", "./..."]
    if (workspace / "Cargo.toml").exists():
        return "cargo", ["cargo", "test"]
    return "pytest", [_python(workspace), "-m", "pytest"]


def _python(workspace: Path) -> str:
    for venv in (".venv", "venv"):
        candidate = workspace / venv / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    return "python3"


def run_test_suite(ctx: ToolContext, paths: list[str] | None = None, select: str | None = None) -> TestReport:
    """Run the suite (or the given paths) and read back a structured report."""
    runner, base = detect_runner(ctx.workspace, ctx.test_command)
    with tempfile.TemporaryDirectory(prefix="gptoss-tests-") as scratch:
        report_file = Path(scratch) / "junit.xml"
        command = list(base)
        if runner == "pytest":
            command += ["-q", "-p", "no:cacheprovider", f"--junitxml={report_file}", "-o", "junit_family=xunit1"]
            command += list(paths or [])
            command += ["-k", select] if select else []
        elif runner == "go" and paths:
            command = ["go", "test", *paths] + (["-run", select] if select else [])
        elif runner == "cargo" and select:
            command += [select]
        else:
            command += list(paths or [])
        result = ctx.sandbox.run(command, timeout_s=TEST_TIMEOUT_S, cancel=ctx.cancel, scratch=Path(scratch))
        report = TestReport(runner, command, exit_code=result.exit_code, timed_out=result.timed_out,
                            output_tail="\n".join(result.output.splitlines()[-40:]))
        if runner == "pytest" and report_file.exists():
            _read_junit(report, report_file.read_text(encoding="utf-8", errors="replace"), ctx.workspace)
        else:
            _read_summary(report, result.output)
    return report


def _read_junit(report: TestReport, xml_text: str, workspace: Path) -> None:
    root = ET.fromstring(xml_text)
    for case in root.iter("testcase"):
        problem = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if problem is None and error is None:
            if skipped is not None:
                report.skipped += 1
            else:
                report.passed += 1
            continue
        node = problem if problem is not None else error
        if problem is not None:
            report.failed += 1
        else:
            report.errors += 1
        trace = (node.text or "").strip()
        lines = trace.splitlines()
        trimmed = "\n".join(lines[-TRACEBACK_LINES:])
        if len(lines) > TRACEBACK_LINES:
            trimmed = f"[… {len(lines) - TRACEBACK_LINES} lines …]\n" + trimmed
        report.failures.append(TestFailure(_test_id(case), _location(case, trace, workspace),
                                           (node.get("message") or "").strip()[:500], trimmed))


def _test_id(case: ET.Element) -> str:
    name, classname, file = case.get("name", ""), case.get("classname", ""), case.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    inner = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
    return "::".join(part for part in (file, inner, name) if part)


def _location(case: ET.Element, trace: str, workspace: Path) -> str:
    hits = [(f, n) for f, n in _LOCATION.findall(trace) if (workspace / f).exists()]
    if hits:
        return f"{hits[-1][0]}:{hits[-1][1]}"
    line = case.get("line")
    return f"{case.get('file')}:{int(line) + 1}" if case.get("file") and line else (case.get("file") or "")


_SUMMARIES = {
    "go": (re.compile(r"^--- FAIL: (\S+)", re.MULTILINE), re.compile(r"^--- PASS: ", re.MULTILINE)),
    "cargo": (re.compile(r"^test (\S+) \.\.\. FAILED", re.MULTILINE), re.compile(r"^test \S+ \.\.\. ok", re.MULTILINE)),
}


def _read_summary(report: TestReport, output: str) -> None:
    failing, passing = _SUMMARIES.get(report.runner, (None, None))
    if failing is not None:
        ids = failing.findall(output)
        report.failures = [TestFailure(i, "", "failed", "") for i in ids]
        report.failed = len(ids)
        report.passed = len(passing.findall(output))
    elif report.exit_code not in (0, None):
        report.failed = 1
        report.failures = [TestFailure(report.runner, "", f"exit code {report.exit_code}", report.output_tail)]


def format_report(report: TestReport) -> str:
    """The model's view: counts first, then each failure with its place and trimmed traceback."""
    if report.timed_out:
        head = f"Tests timed out after {TEST_TIMEOUT_S}s ({shlex.join(report.command)})."
    else:
        head = (f"{report.passed} passed, {report.failed} failed, {report.errors} errors, {report.skipped} skipped "
                f"({report.runner}, exit code {report.exit_code}).")
    parts = [head]
    for failure in report.failures:
        parts.append(f"\nFAILED {failure.test_id}" + (f" at {failure.location}" if failure.location else "")
                     + (f"\n  {failure.message}" if failure.message else "")
                     + (f"\n{failure.traceback}" if failure.traceback else ""))
    if not report.failures and not report.green and report.output_tail:
        parts.append("\nLast output:\n" + report.output_tail)
    return "\n".join(parts)


@tool("functions.run_tests")
def run_tests(ctx: ToolContext, paths: list[str] | None = None, select: str | None = None) -> ToolResult:
    """Run the project's tests in the sandbox and report passes and failures.

    Args:
        paths: test files or folders to run (default: the whole suite)
        select: only tests whose name matches this expression (pytest -k)
    """
    if ctx.sandbox is None:
        return ToolResult.error("commands are disabled in this session")
    try:
        report = run_test_suite(ctx, paths, select)
    except SandboxUnavailable as exc:
        return ToolResult.error(f"cannot run tests: {exc}")
    return ToolResult(report.green, format_report(report),
                      data={"passed": report.passed, "failed": report.failed, "errors": report.errors,
                            "skipped": report.skipped, "failing": report.failing_ids,
                            "failures": [asdict(f) for f in report.failures], "runner": report.runner})
