"""Read a test runner's own summary from its output: counts, failing ids, the test that was running.

Pure functions over text. Used when there is no structured report (a configured
`test_cmd`, `npm test`, `cargo test`, a report the sandbox spoiled) and to name
the test a timed-out suite was stuck in. Each parser recognises only its
runner's exact summary lines, so output that matches none of them is reported
as `unknown` instead of being guessed into "0 passed".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


@dataclass
class Summary:
    """What a runner said about a run. `runner` names the format that was recognised."""

    runner: str
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing: list[str] = field(default_factory=list)
    running: str | None = None  # the test that had started and not finished (a hang)


def strip_ansi(text: str) -> str:
    """Colour and cursor codes removed: runners colour their summaries when they think a person is watching."""
    return _ANSI.sub("", text)


def parse_summary(output: str, prefer: str | None = None) -> Summary | None:
    """The summary of the first runner whose format the output carries (`prefer` is tried first)."""
    text = strip_ansi(output).replace("\r\n", "\n")
    order = sorted(PARSERS, key=lambda name: name != prefer)
    for name in order:
        try:
            found = PARSERS[name](text)
        except ValueError:  # a count of more digits than Python converts: the output is not a real summary
            return None
        if found is not None:
            return found
    return None


def running_test(output: str, prefer: str | None = None) -> str | None:
    """The test that had started but not finished when the output ends, from any runner's progress lines."""
    text = strip_ansi(output).replace("\r\n", "\n")
    order = sorted(_RUNNING, key=lambda name: name != prefer)
    for name in order:
        found = _RUNNING[name](text)
        if found:
            return found
    return None


# ---------------------------------------------------------------------- pytest

_PYTEST_COUNT = r"\d+ (?:failed|passed|skipped|deselected|xfailed|xpassed|errors?|warnings?)"
_PYTEST_FINAL = re.compile(rf"^=*\s*((?:{_PYTEST_COUNT})(?:, {_PYTEST_COUNT})*|no tests ran)"
                           r"(?: in [\d.]+s(?: \([\d:.]+\))?)\s*=*\s*$", re.MULTILINE)
_PYTEST_FAILED_ID = re.compile(r"^(FAILED|ERROR) (\S+?)(?: - .*)?$", re.MULTILINE)
_PYTEST_VERBOSE = re.compile(r"^(\S+::\S+?)(?: (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b.*)?\s*$", re.MULTILINE)


def _pytest(text: str) -> Summary | None:
    finals = _PYTEST_FINAL.findall(text)
    if not finals:
        return None
    summary = Summary("pytest")
    for count, word in re.findall(r"(\d+) (\w+)", finals[-1]):
        number = int(count)
        if word == "passed" or word == "xpassed":
            summary.passed += number
        elif word == "failed":
            summary.failed += number
        elif word in ("error", "errors"):
            summary.errors += number
        elif word in ("skipped", "xfailed"):
            summary.skipped += number
    summary.failing = _unique(m.group(2) for m in _PYTEST_FAILED_ID.finditer(text))
    return summary


def _pytest_running(text: str) -> str | None:
    last = None
    for match in _PYTEST_VERBOSE.finditer(text):
        last = match
    if last is not None and last.group(2) is None:
        return last.group(1)
    return None


# ---------------------------------------------------------------------- unittest

_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in [\d.]+s\s*$", re.MULTILINE)
_UNITTEST_RESULT = re.compile(r"^(OK|FAILED|NO TESTS RAN)(?: \(([^)]*)\))?\s*$", re.MULTILINE)
_UNITTEST_PROBLEM = re.compile(r"^(FAIL|ERROR): (\S+) \(([\w.]+)\)", re.MULTILINE)
_UNITTEST_VERBOSE = re.compile(r"^(\w+) \(([\w.]+)\)(?: |\n[^\n]*? )\.\.\.(.*)$", re.MULTILINE)


def _unittest_id(method: str, where: str) -> str:
    """`test_x (pkg.mod.Case.test_x)` (3.11+) or `test_x (pkg.mod.Case)` (older) → pkg.mod.Case.test_x."""
    return where if where.endswith("." + method) else f"{where}.{method}"


def _unittest(text: str) -> Summary | None:
    ran = _UNITTEST_RAN.findall(text)
    if not ran:
        return None
    tail = text[text.rfind("\nRan ") + 1:]
    result = _UNITTEST_RESULT.search(tail)
    if result is None:
        return None
    counts = dict((k.strip(), int(v)) for k, v in re.findall(r"([\w ]+)=(\d+)", result.group(2) or ""))
    summary = Summary("unittest", failed=counts.get("failures", 0), errors=counts.get("errors", 0),
                      skipped=counts.get("skipped", 0) + counts.get("expected failures", 0))
    summary.passed = max(int(ran[-1]) - summary.failed - summary.errors - summary.skipped, 0)
    summary.failing = _unique(_unittest_id(m.group(2), m.group(3)) for m in _UNITTEST_PROBLEM.finditer(text))
    return summary


def _unittest_running(text: str) -> str | None:
    last = None
    for match in _UNITTEST_VERBOSE.finditer(text):
        last = match
    if last is not None and not last.group(3).strip():
        return _unittest_id(last.group(1), last.group(2))
    return None


# ---------------------------------------------------------------------- go test

_GO_RESULT = re.compile(r"^(\s*)--- (PASS|FAIL|SKIP): (\S+)", re.MULTILINE)
_GO_PACKAGE = re.compile(r"^(ok|FAIL|\?)\s+(\S+)\s+(?:[\d.]+s|\(cached\)|\[[^\]]+\])", re.MULTILINE)
_GO_TIMEOUT_RUNNING = re.compile(r"^panic: test timed out after \S+\nrunning tests:\n\t(\S+)", re.MULTILINE)


def _go(text: str) -> Summary | None:
    if text.lstrip().startswith("{") and '"Action"' in text:
        return _go_json(text)
    packages = _GO_PACKAGE.findall(text)
    results = _GO_RESULT.findall(text)
    if not packages and not results:
        return None
    summary = Summary("go")
    for indent, verdict, name in results:
        if indent:  # subtests: their parent carries the verdict
            continue
        if verdict == "PASS":
            summary.passed += 1
        elif verdict == "SKIP":
            summary.skipped += 1
        else:
            summary.failed += 1
            summary.failing.append(name)
    if not summary.failed:  # a package that failed without a failing test: build error, panic, timeout
        broken = [package for verdict, package in packages if verdict == "FAIL"]
        summary.errors += len(broken)
        summary.failing += broken
    summary.running = _go_running(text)
    return summary


def _go_json(text: str) -> Summary | None:
    summary = Summary("go")
    started: dict[str, None] = {}
    seen = False
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or "Action" not in event:
            continue
        seen = True
        test, action = event.get("Test"), event.get("Action")
        if not test:
            if action == "fail" and not any(k.startswith(f"{event.get('Package')}.") for k in summary.failing):
                summary.errors += 1
                summary.failing.append(str(event.get("Package")))
            continue
        key = f"{event.get('Package')}.{test}"
        if action == "run":
            started[key] = None
        elif action in ("pass", "fail", "skip"):
            started.pop(key, None)
            if "/" in test:
                continue
            if action == "pass":
                summary.passed += 1
            elif action == "skip":
                summary.skipped += 1
            else:
                summary.failed += 1
                summary.failing.append(key)
    if not seen:
        return None
    summary.running = next(reversed(started), None) if started else None
    return summary


def _go_running(text: str) -> str | None:
    panic = _GO_TIMEOUT_RUNNING.search(text)
    if panic:
        return panic.group(1)
    if text.lstrip().startswith("{"):
        found = _go_json(text)
        return found.running if found else None
    open_tests: dict[str, None] = {}
    for match in re.finditer(r"^=== RUN\s+(\S+)|^\s*--- (?:PASS|FAIL|SKIP): (\S+)", text, re.MULTILINE):
        if match.group(1):
            open_tests[match.group(1)] = None
        else:
            open_tests.pop(match.group(2), None)
    return next(reversed(open_tests), None)


# ---------------------------------------------------------------------- cargo test (libtest)

_CARGO_RESULT = re.compile(r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored; "
                           r"(\d+) measured; (\d+) filtered out", re.MULTILINE)
_CARGO_FAILED = re.compile(r"^test (\S+) \.\.\. FAILED$", re.MULTILINE)
_CARGO_STARTED = re.compile(r"^test (\S+) \.\.\. ?(\S*)$|^test (\S+) has been running for over", re.MULTILINE)


def _cargo(text: str) -> Summary | None:
    results = _CARGO_RESULT.findall(text)
    if not results:
        return None
    summary = Summary("cargo")
    for passed, failed, ignored, _measured, _filtered in results:  # one line per test binary
        summary.passed += int(passed)
        summary.failed += int(failed)
        summary.skipped += int(ignored)
    summary.failing = _unique(_CARGO_FAILED.findall(text))
    return summary


def _cargo_running(text: str) -> str | None:
    last = None
    for match in _CARGO_STARTED.finditer(text):
        last = match
    if last is None:
        return None
    if last.group(3):
        return last.group(3)
    return last.group(1) if not last.group(2) else None


def _from_counts(runner: str, line: str, *, skipped: tuple[str, ...]) -> Summary:
    """A summary from a "3 passed, 1 failed, 2 todo" style line (jest and vitest word it alike)."""
    counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (\w+)", line))
    summary = Summary(runner)
    summary.passed = counts.get("passed", 0)
    summary.failed = counts.get("failed", 0)
    summary.skipped = sum(counts.get(word, 0) for word in skipped)
    return summary


# ---------------------------------------------------------------------- jest

_JEST_TESTS = re.compile(r"^Tests:\s+(.*?)(\d+) total\s*$", re.MULTILINE)
_JEST_FAILED = re.compile(r"^  ● (.+?)\s*$", re.MULTILINE)


def _jest(text: str) -> Summary | None:
    found = _JEST_TESTS.findall(text)
    if not found:
        return None
    summary = _from_counts("jest", found[-1][0], skipped=("skipped", "todo", "pending"))
    summary.failing = _unique(name for name in _JEST_FAILED.findall(text) if name != "Test suite failed to run")
    return summary


# ---------------------------------------------------------------------- vitest

_VITEST_TESTS = re.compile(r"^\s*Tests\s+(\d+ \w+(?: \| \d+ \w+)*)\s*\((\d+)\)\s*$", re.MULTILINE)
_VITEST_FAILED = re.compile(r"^ FAIL\s+(.+?)\s*$", re.MULTILINE)


def _vitest(text: str) -> Summary | None:
    found = _VITEST_TESTS.findall(text)
    if not found:
        return None
    summary = _from_counts("vitest", found[-1][0], skipped=("skipped", "todo"))
    summary.failing = _unique(_VITEST_FAILED.findall(text))
    return summary


# ---------------------------------------------------------------------- node --test (spec and TAP reporters)

_NODE_COUNT = re.compile(r"^(?:ℹ|#) (tests|pass|fail|cancelled|skipped|todo) (\d+)\s*$", re.MULTILINE)
_NODE_TAP_FAILED = re.compile(r"^\s*not ok \d+ - (.+?)(?: # .*)?$", re.MULTILINE)
_NODE_SPEC_FAILED = re.compile(r"^\s*✖ (.+?) \([\d.]+m?s\)\s*$", re.MULTILINE)


def _node(text: str) -> Summary | None:
    counts = dict((word, int(n)) for word, n in _NODE_COUNT.findall(text))
    if "tests" not in counts or "pass" not in counts or "fail" not in counts:
        return None
    summary = Summary("node", passed=counts["pass"], failed=counts["fail"] + counts.get("cancelled", 0),
                      skipped=counts.get("skipped", 0) + counts.get("todo", 0))
    summary.failing = _unique(list(_NODE_TAP_FAILED.findall(text)) + list(_NODE_SPEC_FAILED.findall(text)))
    return summary


def _node_running(text: str) -> str | None:
    started = re.findall(r"^# Subtest: (.+)$", text, re.MULTILINE)
    finished = set(re.findall(r"^\s*(?:not )?ok \d+ - (.+?)(?: # .*)?$", text, re.MULTILINE))
    for name in reversed(started):
        if name not in finished:
            return name
    return None


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


PARSERS = {"pytest": _pytest, "unittest": _unittest, "cargo": _cargo, "jest": _jest, "vitest": _vitest,
           "node": _node, "go": _go}
_RUNNING = {"pytest": _pytest_running, "unittest": _unittest_running, "go": _go_running, "cargo": _cargo_running,
            "node": _node_running}
