"""A pytest plugin that run_tests loads inside the sandbox: which test is running, and a per-test limit.

It appends `start NODEID` and `end NODEID` lines to the file named by
GPTOSS_AGENT_PROGRESS, flushed at once, so when a suite hangs and is killed the
agent can name the test that never finished. When GPTOSS_AGENT_TEST_LIMIT gives
a number of seconds, a test body that runs longer is failed right where it was
stuck (the failure's traceback is the hung line) and the rest of the suite runs
on: one endless loop no longer costs the whole suite's results. It is copied
into the run's scratch folder and imported from there; it never imports
anything of the agent.
"""

import os
import signal
import threading

import pytest

_stream = None
STOPPED = "test ran longer than"  # run_tests recognises a stopped test by this start of its message


def _write(line: str) -> None:
    global _stream
    if _stream is None:
        target = os.environ.get("GPTOSS_AGENT_PROGRESS")
        if not target:
            return
        _stream = open(target, "a", encoding="utf-8", errors="replace")
    _stream.write(line + "\n")
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
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0 or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
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
