"""A pytest plugin that run_tests loads inside the sandbox: which test is running, and a per-test limit.

It appends `KEY start NODEID` and `KEY end NODEID` records to the file named by
GPTOSS_AGENT_PROGRESS, flushed at once, so when a suite hangs and is killed the
agent can name the test that never finished. When GPTOSS_AGENT_TEST_LIMIT gives
a number of seconds, a test body that runs longer is failed right where it was
stuck (the failure's traceback is the hung line) and the rest of the suite runs
on: one endless loop no longer costs the whole suite's results. It is copied
into the run's scratch folder and imported from there; it never imports
anything of the agent.

Why the KEY: the tests run in this very process, and the file's path was theirs
to read, so a test could append a `start` line naming whatever it liked. At
import (before any conftest or test module) the plugin opens the file, reads the
per-run key from GPTOSS_AGENT_PROGRESS_MARK_FILE and deletes that file, and takes
both variables out of os.environ; run_tests reads back only the records that
carry the key (the variable and file say MARK, not KEY: the sandbox withholds
names that look like secrets). A test that blindly appends to the file is ignored. This is not a
secret from code in the same process (it could read this module's memory), so
run_tests still treats the name as the run's words: shown only inside the
report's fence, on one escaped line with a length cap.

A test that sets SIGALRM to SIG_IGN does not switch the per-test limit off: an
ignored alarm is not "the project's own timeout", so the plugin installs its
handler anyway; a test that ignores the alarm from inside its own body is ended
by run_tests' suite limit, which names it from the keyed records.
"""

import os
import signal
import threading

import pytest

STOPPED = "test ran longer than"  # run_tests recognises a stopped test by this start of its message


def _open_stream():
    target = os.environ.pop("GPTOSS_AGENT_PROGRESS", None)
    key_file = os.environ.pop("GPTOSS_AGENT_PROGRESS_MARK_FILE", None)
    key = ""
    if key_file:
        try:
            with open(key_file, encoding="ascii") as handle:
                key = handle.read(64).strip()
            os.unlink(key_file)
        except OSError:
            key = ""
    if not target or not key:
        return None, ""
    try:
        return open(target, "a", encoding="utf-8", errors="replace"), key
    except OSError:
        return None, ""


_stream, _key = _open_stream()


def _write(line: str) -> None:
    if _stream is None:
        return
    _stream.write(_key + " " + line.replace("\n", " ").replace("\r", " ") + "\n")
    _stream.flush()


def pytest_runtest_logstart(nodeid, location):
    _write("start " + nodeid)


def pytest_runtest_logfinish(nodeid, location):
    _write("end " + nodeid)


def _limit():
    try:
        value = float(os.environ.get("GPTOSS_AGENT_TEST_LIMIT", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _limited():
    """Run one phase of a test (setup, call, teardown) under the per-test limit, when there is one."""
    limit = _limit()
    if limit is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0 or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        yield  # the project's own timeout (pytest-timeout, an alarm of its own) is in charge: never replace it
        return

    def stop(signum, frame):
        __tracebackhide__ = True  # the traceback ends on the test's own line, not here
        pytest.fail(f"{STOPPED} {limit:g}s (run_tests' per-test limit) and was stopped where this traceback ends",
                    pytrace=True)

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGALRM) is stop:  # a test that set an alarm of its own keeps it
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _limited()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _limited()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield from _limited()
