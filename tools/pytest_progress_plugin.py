"""A pytest plugin that run_tests loads inside the sandbox to learn which test is running.

It appends `start NODEID` and `end NODEID` lines to the file named by
GPTOSS_AGENT_PROGRESS, flushed at once, so when a suite hangs and is killed the
agent can name the test that never finished. It is copied into the run's
scratch folder and imported from there; it never imports anything of the agent.
"""

import os

_stream = None


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
