"""Kernel surfaces a command must not reach: odd socket families, other processes' limits and priority.

Found by an attack on the Landlock fallback without namespaces, where the
agent is visible: `prlimit --pid AGENT`, `renice`, `taskset` changed the agent
itself. Under bubblewrap, socket(AF_VSOCK) reached the hypervisor.
"""

from __future__ import annotations

import os
import socket

import pytest
from sandbox_agent import run_agent

_FAMILIES = {"AF_VSOCK": 40, "AF_PACKET": 17, "AF_BLUETOOTH": 31, "AF_ALG": 38, "AF_KEY": 15, "AF_CAN": 29}


@pytest.mark.parametrize("family", sorted(_FAMILIES))
def test_unusual_socket_families_are_refused(make_sandbox, mechanism, family):
    code = (f"import socket\ntry:\n    socket.socket({_FAMILIES[family]}, socket.SOCK_STREAM if {_FAMILIES[family]} != 38 "
            "else socket.SOCK_SEQPACKET)\n    print('OPENED')\nexcept OSError as e:\n    print('REFUSED', e.errno)")
    result = make_sandbox().run(["python3", "-c", code])
    assert "OPENED" not in result.output
    import errno
    expected = errno.EAFNOSUPPORT if mechanism == "bwrap" else errno.EPERM  # Landlock: no sockets at all
    assert f"REFUSED {expected}" in result.output, result.output


def test_ordinary_socket_families_still_open_under_bwrap(make_sandbox, mechanism):
    if mechanism != "bwrap":
        pytest.skip("the Landlock fallback refuses every socket (no network namespace to rely on)")
    code = ("import socket\nfor f in (socket.AF_INET, socket.AF_INET6):\n    socket.socket(f, socket.SOCK_STREAM).close()\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.bind(('127.0.0.1', 0))\ns.listen()\n"
            "c = socket.create_connection(s.getsockname())\nprint('LOOPBACK OK')")
    result = make_sandbox().run(["python3", "-c", code])
    assert "LOOPBACK OK" in result.output, result.output


_AGENT_STATE = ("import os\np = int(os.environ['AGENT_PID'])\n"
                "print('LIMIT', open(f'/proc/{p}/limits').read().count('\\n') if os.path.exists(f'/proc/{p}/limits') "
                "else -1)\n")


@pytest.mark.parametrize("how", [
    "prlimit --pid $AGENT_PID --nofile=3:3",
    "prlimit --pid $AGENT_PID --as=1000000",
    "renice -n 19 -p $AGENT_PID",
    "renice -n 19 -u $(id -u)",
    "taskset -p -c 0 $AGENT_PID",
    "chrt -i -p 0 $AGENT_PID",
])
def test_a_command_cannot_change_the_agents_limits_priority_or_cpus(sandbox_repo, mechanism, how):
    before = (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0))
    report = run_agent(sandbox_repo, mechanism, ["sh", "-c", f"{how}; echo rc=$?; "
                       "cat /proc/$AGENT_PID/limits 2>/dev/null | grep -E 'open files|address space'; "
                       "ps -o ni= -p $AGENT_PID 2>/dev/null; taskset -p $AGENT_PID 2>/dev/null"])
    assert report["alive"], report
    output = report["output"]
    assert "rc=0" not in output, output
    # the stand-in reports what it sees of itself afterwards
    assert report["agent_after"]["nofile"] == report["agent_after"]["nofile_before"]
    assert report["agent_after"]["as"] == report["agent_after"]["as_before"]
    assert report["agent_after"]["nice"] == report["agent_after"]["nice_before"]
    assert report["agent_after"]["cpus"] == report["agent_after"]["cpus_before"]
    assert report["agent_after"]["policy"] == report["agent_after"]["policy_before"]
    assert (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0)) == before


def test_a_command_still_changes_its_own_limits_and_priority(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "prlimit --nofile=64:64 sh -c 'ulimit -n'; nice -n 5 sh -c 'echo ok'; "
                                             "taskset -c 0 echo pinned"])
    assert "64" in result.output and "ok" in result.output and "pinned" in result.output, result.output
