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


def _int(digits: str) -> int:
    """A number the output printed (a regex's digits), at most 18 digits. A longer one is not a real count or
    line: ValueError, which parse_summary turns into `unknown` and running_test into "that parser found none"
    (before, 5000 digits made int() raise out of running_test and crash run_tests)."""
    if len(digits) > 18:
        raise ValueError(f"a number of {len(digits)} digits in the output")
    return int(digits)

# Escape sequences, and the `#x1B[…m` that pytest's JUnit writer leaves of them (ESC is not allowed in XML).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
                   r"|#x1[bB]\[[0-?]*[ -/]*[@-~]")


Frame = tuple[str, int, str]  # (file as the runner printed it, line, function or "")
MAX_FRAMES = 64  # per failure: a deep recursion's stack is not kept whole
MAX_MESSAGE_CHARS = 2_000


@dataclass
class FailureDetail:
    """What a runner said about one failing test: its message and the stack, deepest frame last.

    Paths are as printed (absolute, relative to the crate, or a Go import path
    plus file name); run_tests decides which of them are the project's own.
    """

    message: str = ""
    frames: list[Frame] = field(default_factory=list)
    test_frame: Frame | None = None  # the test's own line that failed, when the runner tells it apart


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
    details: dict[str, FailureDetail] = field(default_factory=dict)  # failing id → message and stack


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
        try:
            found = _RUNNING[name](text)
        except (ValueError, RecursionError):  # output no real runner writes (a 5000-digit line number)
            continue
        if found:
            return found
    return None


# ---------------------------------------------------------------------- pytest

_PYTEST_COUNT = r"\d+ (?:failed|passed|skipped|deselected|xfailed|xpassed|errors?|warnings?)"
_PYTEST_FINAL = re.compile(rf"^=*[ \t]*((?:{_PYTEST_COUNT})(?:, {_PYTEST_COUNT})*|no tests ran)"
                           r"(?: in [\d.]+s(?: \([\d:.]+\))?)\s*=*[ \t\r]*$", re.MULTILINE)
_PYTEST_FAILED_ID = re.compile(r"^(FAILED|ERROR) (\S+?)(?: - .*)?$", re.MULTILINE)
_PYTEST_VERBOSE = re.compile(r"^(\S+::\S+?)(?: (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b.*)?[ \t\r]*$", re.MULTILINE)


def _pytest(text: str) -> Summary | None:
    finals = _PYTEST_FINAL.findall(text)
    if not finals:
        return None
    summary = Summary("pytest")
    for count, word in re.findall(r"(\d+) (\w+)", finals[-1]):
        number = _int(count)
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

_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in [\d.]+s[ \t\r]*$", re.MULTILINE)
_UNITTEST_RESULT = re.compile(r"^(OK|FAILED|NO TESTS RAN)(?: \(([^)]*)\))?[ \t\r]*$", re.MULTILINE)
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
    counts = dict((k.strip(), _int(v)) for k, v in re.findall(r"([\w ]+)=(\d+)", result.group(2) or ""))
    summary = Summary("unittest", failed=counts.get("failures", 0), errors=counts.get("errors", 0),
                      skipped=counts.get("skipped", 0) + counts.get("expected failures", 0))
    summary.passed = max(_int(ran[-1]) - summary.failed - summary.errors - summary.skipped, 0)
    summary.failing = _unique(_unittest_id(m.group(2), m.group(3)) for m in _UNITTEST_PROBLEM.finditer(text))
    for block in _UNITTEST_BLOCK.finditer(text):
        test_id = _unittest_id(block.group(2), block.group(3))
        if test_id in summary.failing and test_id not in summary.details:
            summary.details[test_id] = _unittest_detail(block.group(2), block.group(4))
    return summary


_UNITTEST_BLOCK = re.compile(r"^(FAIL|ERROR): (\S+) \(([\w.]+)\)\n(?:[^\n]*\n)?-{70}\n(.*?)(?=^={70}$|^-{70}\nRan |\Z)",
                             re.MULTILINE | re.DOTALL)
_PYTHON_FRAME = re.compile(r"^[ \t]*File \"([^\"\n]+)\", line (\d+), in (\S+)", re.MULTILINE)
MESSAGE_LINES = 20


def _unittest_detail(method: str, body: str) -> FailureDetail:
    """The exception (from its first unindented line on: a doctest's whole report) and every frame, in order."""
    lines = [line for line in body.strip("\n").splitlines() if line.strip("-")]  # doctest's rulers say nothing
    start = next((i for i, line in enumerate(lines) if i and line[:1].strip() and not line.startswith("Traceback")),
                 0)
    message = lines[start:start + MESSAGE_LINES] + (["[…]"] if len(lines) > start + MESSAGE_LINES else [])
    frames = [(path, _int(line), function) for path, line, function in _PYTHON_FRAME.findall(body)][-MAX_FRAMES:]
    in_test = [f for f in frames if f[2] == method or f[2].endswith("." + method)]
    return FailureDetail("\n".join(message).strip()[:MAX_MESSAGE_CHARS], frames, in_test[-1] if in_test else None)


def _unittest_running(text: str) -> str | None:
    last = None
    for match in _UNITTEST_VERBOSE.finditer(text):
        last = match
    if last is not None and not last.group(3).strip():
        return _unittest_id(last.group(1), last.group(2))
    return None


# ---------------------------------------------------------------------- go test

_GO_RESULT = re.compile(r"^([ \t]*)--- (PASS|FAIL|SKIP): (\S+)", re.MULTILINE)
_GO_PACKAGE = re.compile(r"^(ok|FAIL|\?)[ \t]+(\S+)[ \t]+(?:[\d.]+s|\(cached\)|\[[^\]]+\])", re.MULTILINE)
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
    outputs: dict[str, list[str]] = {}
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
        elif action == "output" and key in started:
            kept = outputs.setdefault(key, [])
            if len(kept) < 4 * MAX_FRAMES:
                kept.append(str(event.get("Output", "")).rstrip("\n"))
        elif action in ("pass", "fail", "skip"):
            started.pop(key, None)
            lines = outputs.pop(key, [])
            if "/" in test:
                if action == "fail":  # a subtest's failure explains its parent's
                    parent = f"{event.get('Package')}.{test.split('/', 1)[0]}"
                    outputs.setdefault(parent, []).extend(lines)
                continue
            if action == "pass":
                summary.passed += 1
            elif action == "skip":
                summary.skipped += 1
            else:
                summary.failed += 1
                summary.failing.append(key)
                summary.details[key] = _go_detail(str(event.get("Package")), test, lines)
    if not seen:
        return None
    summary.running = next(reversed(started), None) if started else None
    summary.failing.sort()  # packages run in parallel: the same failures read the same on every run
    return summary


_GO_LOG = re.compile(r"^[ \t]+([\w.-]+\.go):(\d+): (.*)$")  # t.Errorf / t.Fatalf: `    calc_test.go:7: message`
_GO_FRAME_PATH = re.compile(r"^\t(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?$")


def _go_detail(package: str, test: str, lines: list[str]) -> FailureDetail:
    """t.Errorf lines (file relative to the package: given as `package/file`), or a panic and its goroutine stack."""
    detail = FailureDetail()
    messages: list[str] = []
    panic = ""
    frames: list[Frame] = []
    function = ""
    for line in lines:
        if line.lstrip().startswith(("=== ", "--- ")):
            continue
        logged = _GO_LOG.match(line)
        if logged and not panic:
            place = (f"{package}/{logged.group(1)}", _int(logged.group(2)), test)
            detail.test_frame = detail.test_frame or place
            messages.append(logged.group(3))
            continue
        if line.startswith("        ") and messages and not panic:  # a multi-line message goes on, indented
            messages[-1] += "\n" + line.strip()
            continue
        if line.startswith("panic: ") and not panic:
            panic = line.removeprefix("panic: ").removesuffix(" [recovered]")
            continue
        frame = _GO_FRAME_PATH.match(line)
        if frame and len(frames) < MAX_FRAMES:
            frames.append((frame.group(1), _int(frame.group(2)), function))
        elif not line.startswith("\t"):
            function = line.strip()
    frames.reverse()  # goroutine stacks print the deepest call first
    name = test.split("/", 1)[0]
    in_test = [f for f in frames if f[2].split("(")[0].endswith("." + name)]
    detail.test_frame = detail.test_frame or (in_test[-1] if in_test else None)
    detail.frames = frames or ([detail.test_frame] if detail.test_frame else [])
    detail.message = ("panic: " + panic if panic else "\n".join(messages))[:MAX_MESSAGE_CHARS]
    return detail


def _go_running(text: str) -> str | None:
    panic = _GO_TIMEOUT_RUNNING.search(text)
    if panic:
        return panic.group(1)
    if text.lstrip().startswith("{"):
        found = _go_json(text)
        return found.running if found else None
    open_tests: dict[str, None] = {}
    for match in re.finditer(r"^=== RUN[ \t]+(\S+)|^[ \t]*--- (?:PASS|FAIL|SKIP): (\S+)", text, re.MULTILINE):
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
        summary.passed += _int(passed)
        summary.failed += _int(failed)
        summary.skipped += _int(ignored)
    summary.failing = _unique(_CARGO_FAILED.findall(text))
    for section in _CARGO_SECTION.finditer(text):
        if section.group(1) in summary.failing:
            summary.details[section.group(1)] = _cargo_detail(section.group(1), section.group(2))
    return summary


_CARGO_SECTION = re.compile(r"^---- (\S+) stdout ----\n(.*?)(?=^---- \S+ stdout ----$|^failures:$|\Z)",
                            re.MULTILINE | re.DOTALL)
# `panicked at src/lib.rs:7:17:` + message lines (1.73+), or `panicked at 'message', src/lib.rs:7:17` (older)
_CARGO_PANIC = re.compile(r"^thread '[^'\n]*'(?: \(\d+\))? panicked at (?:(\S+?):(\d+):\d+:\n(.*?)"
                          r"(?=^note: |^stack backtrace:|\n\n|\Z)|'(.*?)', (\S+?):(\d+):\d+$)",
                          re.MULTILINE | re.DOTALL)
MAX_SECTION_CHARS = 32_000
_CARGO_FRAME = re.compile(r"^[ \t]+\d+: (\S.*?)\n\s+at (\S+?):(\d+)(?::\d+)?$", re.MULTILINE)


def _cargo_detail(test: str, body: str) -> FailureDetail:
    """The panic's place and message, and with RUST_BACKTRACE the stack (deepest first in libtest's print)."""
    detail = FailureDetail()
    body = body[:MAX_SECTION_CHARS]  # a panic message is short; a hostile one is not searched whole
    panic = _CARGO_PANIC.search(body)
    if panic is None:
        detail.message = body.strip()[:MAX_MESSAGE_CHARS]
        return detail
    if panic.group(1):
        place, detail.message = (panic.group(1), _int(panic.group(2)), ""), panic.group(3).strip()
    else:
        place, detail.message = (panic.group(5), _int(panic.group(6)), ""), panic.group(4)
    detail.message = detail.message[:MAX_MESSAGE_CHARS]
    frames = [(path.removeprefix("./"), _int(line), function)
              for function, path, line in _CARGO_FRAME.findall(body[panic.end():])[:MAX_FRAMES]
              if not function.endswith("{{closure}}")]  # the closure libtest wraps each test in
    frames.reverse()
    in_test = [f for f in frames if f[2] == test or f[2].endswith("::" + test)]
    detail.test_frame = in_test[-1] if in_test else None
    detail.frames = frames or [place]
    return detail


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
    counts = dict((word, _int(n)) for n, word in re.findall(r"(\d+) (\w+)", line))
    summary = Summary(runner)
    summary.passed = counts.get("passed", 0)
    summary.failed = counts.get("failed", 0)
    summary.skipped = sum(counts.get(word, 0) for word in skipped)
    return summary


# ---------------------------------------------------------------------- jest

_JEST_TESTS = re.compile(r"^Tests:[ \t]+(.*?)(\d+) total[ \t\r]*$", re.MULTILINE)
_JEST_FAILED = re.compile(r"^  ● (.+?)[ \t\r]*$", re.MULTILINE)


def _jest(text: str) -> Summary | None:
    found = _JEST_TESTS.findall(text)
    if not found:
        return None
    summary = _from_counts("jest", found[-1][0], skipped=("skipped", "todo", "pending"))
    summary.failing = _unique(name for name in _JEST_FAILED.findall(text) if name != "Test suite failed to run")
    for name, lines in _blocks(text, _JEST_FAILED, lambda line: line.startswith("  ● ") or line[:1].strip()):
        if name in summary.failing and name not in summary.details:
            summary.details[name] = _js_detail(lines)
    return summary


_JS_FRAME = re.compile(r"^[ \t]*(?:at |❯ )(?:(?:async )?(\S[^()]*?) \()?((?:file://)?[^\s():]+):(\d+):\d+\)?$")
_CODE_FRAME = re.compile(r"^[ \t]*(?:>\s*)?\d+\s*\||^[ \t]+\|")  # the source excerpt jest and vitest print


def _blocks(text: str, header: re.Pattern, ends, limit: int = 4 * MAX_FRAMES):
    """(name, body lines) of each failure block: a header line, then lines until `ends(line)` (one pass)."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        found = header.match(lines[index])
        index += 1
        if not found:
            continue
        start = index
        while index < len(lines) and not ends(lines[index]) and index - start < limit:
            index += 1
        yield found.group(1), lines[start:index]


def _js_detail(lines: list[str]) -> FailureDetail:
    """jest's and vitest's failure block: the message, the source excerpt (skipped), the stack (deepest first)."""
    message: list[str] = []
    frames: list[Frame] = []
    for line in lines:
        frame = _JS_FRAME.match(line)
        if frame:
            frames.append((frame.group(2).removeprefix("file://"), _int(frame.group(3)), frame.group(1) or ""))
        elif not frames and not _CODE_FRAME.match(line) and len(message) < MESSAGE_LINES:
            message.append(line.strip())
    frames = frames[:MAX_FRAMES][::-1]
    tests = [f for f in frames if re.search(r"\.(?:test|spec)\.[cm]?[jt]sx?$|(?:^|/)__tests__/", f[0])]
    detail = FailureDetail("\n".join(message).strip()[:MAX_MESSAGE_CHARS], frames, tests[-1] if tests else None)
    return detail


# ---------------------------------------------------------------------- vitest

_VITEST_TESTS = re.compile(r"^[ \t]*Tests\s+(\d+ \w+(?: \| \d+ \w+)*)\s*\((\d+)\)[ \t\r]*$", re.MULTILINE)
_VITEST_FAILED = re.compile(r"^ FAIL[ \t]+(.+?)[ \t\r]*$", re.MULTILINE)


def _vitest(text: str) -> Summary | None:
    found = _VITEST_TESTS.findall(text)
    if not found:
        return None
    summary = _from_counts("vitest", found[-1][0], skipped=("skipped", "todo"))
    summary.failing = _unique(_VITEST_FAILED.findall(text))
    for name, lines in _blocks(text, _VITEST_FAILED, lambda line: line.startswith((" FAIL ", "⎯"))):
        if name in summary.failing and name not in summary.details:
            summary.details[name] = _js_detail(lines)
    return summary


# ---------------------------------------------------------------------- node --test (spec and TAP reporters)

_NODE_COUNT = re.compile(r"^(?:ℹ|#) (tests|pass|fail|cancelled|skipped|todo) (\d+)[ \t\r]*$", re.MULTILINE)
_NODE_TAP_FAILED = re.compile(r"^[ \t]*not ok \d+ - (.+?)(?: # .*)?$", re.MULTILINE)
_NODE_SPEC_FAILED = re.compile(r"^[ \t]*✖ (.+?) \([\d.]+m?s\)[ \t\r]*$", re.MULTILINE)


def _node(text: str) -> Summary | None:
    counts = dict((word, _int(n)) for word, n in _NODE_COUNT.findall(text))
    if "tests" not in counts or "pass" not in counts or "fail" not in counts:
        return None
    summary = Summary("node", passed=counts["pass"], failed=counts["fail"] + counts.get("cancelled", 0),
                      skipped=counts.get("skipped", 0) + counts.get("todo", 0))
    summary.failing = _unique(list(_NODE_TAP_FAILED.findall(text)) + list(_NODE_SPEC_FAILED.findall(text)))
    for name, indent, block in _tap_failure_blocks(text):
        if name in summary.failing and name not in summary.details:
            summary.details[name] = _node_detail(block, indent)
    return summary


_NODE_NOT_OK = re.compile(r"^( *)not ok \d+ - (.+?)(?: # .*)?$")


def _tap_failure_blocks(text: str):
    """(test name, YAML indent, YAML text) of each `not ok` with a diagnostic block: one pass over the lines."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        failed = _NODE_NOT_OK.match(lines[index])
        index += 1
        if not failed or index >= len(lines) or lines[index] != failed.group(1) + "  ---":
            continue
        indent, end = failed.group(1) + "  ", index + 1
        while end < len(lines) and lines[end] != indent + "..." and end - index < 4 * MAX_FRAMES:
            end += 1
        yield failed.group(2), len(indent), "\n".join(lines[index + 1:end])
        index = end
_NODE_STACK_FRAME = re.compile(r"^(?:(?:async )?(.*?) \()?((?:file://)?/[^():]+):(\d+):\d+\)?$")


def _node_detail(block: str, indent: int) -> FailureDetail:
    """The YAML diagnostic node's TAP reporter writes under a failing test: error, name, location, stack."""
    fields = _tap_fields(block, indent)
    detail = FailureDetail()
    error, kind = fields.get("error", ""), fields.get("name", "")
    detail.message = (f"{kind}: {error}" if kind and kind not in error else error).strip()[:MAX_MESSAGE_CHARS]
    frames: list[Frame] = []
    for line in fields.get("stack", "").splitlines()[:MAX_FRAMES]:
        frame = _NODE_STACK_FRAME.match(line.strip())
        if frame:
            frames.append((frame.group(2).removeprefix("file://"), _int(frame.group(3)), frame.group(1) or ""))
    frames.reverse()
    location = re.match(r"^((?:file://)?/[^:]+):(\d+):\d+$", fields.get("location", ""))
    if location:
        test_file = location.group(1).removeprefix("file://")
        in_test = [f for f in frames if f[0] == test_file]
        detail.test_frame = in_test[-1] if in_test else (test_file, _int(location.group(2)), "")
    detail.frames = frames or ([detail.test_frame] if detail.test_frame else [])
    return detail


def _tap_fields(block: str, indent: int) -> dict[str, str]:
    """The flat keys of a TAP YAML block: quoted scalars and `|-` literal blocks (all node writes there)."""
    fields: dict[str, str] = {}
    lines = block.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        key = re.match(rf"^ {{{indent}}}(\w+): ?(.*)$", line)
        if not key:
            continue
        value = key.group(2)
        if value in ("|-", "|", ">-"):
            body = []
            while index < len(lines) and (lines[index].startswith(" " * (indent + 2)) or not lines[index].strip()):
                body.append(lines[index][indent + 2:])
                index += 1
            value = "\n".join(body).strip("\n")
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        fields[key.group(1)] = value
    return fields


def _node_running(text: str) -> str | None:
    started = re.findall(r"^# Subtest: (.+)$", text, re.MULTILINE)
    finished = set(re.findall(r"^[ \t]*(?:not )?ok \d+ - (.+?)(?: # .*)?$", text, re.MULTILINE))
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
