"""The AMX probe: a CPU that advertises AMX but cannot run it must not crash the process."""

from __future__ import annotations

import json
import platform

import pytest

from gptoss_agent.agent.model.backends import cpu_probe

AMX_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile amx_int8\n"
PLAIN_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2\n"


def test_flags_come_from_the_first_cpu():
    assert {"amx_tile", "avx2"} <= cpu_probe.cpu_flags(AMX_CPUINFO)
    assert "amx_tile" not in cpu_probe.cpu_flags(PLAIN_CPUINFO)


@pytest.mark.parametrize("status, allowed, words", [
    (0, True, "ran in a probe"),
    (3, True, "withholds the tile state"),
    (-4, False, "SIGILL"),
    (1, False, "exit status 1"),
    (None, False, "exit status None"),
])
def test_the_verdict_follows_the_child(status, allowed, words):
    verdict = cpu_probe.decide(cpu_probe.cpu_flags(AMX_CPUINFO), status)
    assert verdict.extra_buffer_types is allowed
    assert words in verdict.reason and verdict.advertised == ("amx_tile", "amx_int8", "amx_bf16")


def test_a_cpu_without_amx_needs_no_probe(tmp_path):
    verdict = cpu_probe.probe(tmp_path, cpuinfo=PLAIN_CPUINFO)
    assert verdict.extra_buffer_types and "does not advertise" in verdict.reason
    assert not list(tmp_path.iterdir()), "nothing to cache when there is nothing to probe"


def test_a_child_killed_by_sigill_is_reported_not_fatal():
    """The child runner survives exactly the crash the AMX kernels cause."""
    status = cpu_probe.run_child("import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    assert status == -4
    assert not cpu_probe.decide(cpu_probe.cpu_flags(AMX_CPUINFO), status).extra_buffer_types


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the tile instructions are x86-64")
def test_the_probe_runs_the_tile_instructions_once_and_caches_the_verdict(tmp_path):
    verdict = cpu_probe.probe(tmp_path, cpuinfo=AMX_CPUINFO)
    # On this CPU the tile instructions either run (0), are withheld by the kernel (3)
    # or crash (SIGILL): whichever it is, the verdict is the one for that status.
    assert verdict == cpu_probe.decide(cpu_probe.cpu_flags(AMX_CPUINFO), cpu_probe.run_child())
    [cached] = tmp_path.glob("cpu-probe-*.json")
    assert json.loads(cached.read_text())["extra_buffer_types"] is verdict.extra_buffer_types

    cached.write_text(json.dumps({"extra_buffer_types": False, "reason": "recorded earlier", "advertised": []}))
    assert cpu_probe.probe(tmp_path, cpuinfo=AMX_CPUINFO).reason == "recorded earlier"

    cached.write_text("{not json")
    assert cpu_probe.probe(tmp_path, cpuinfo=AMX_CPUINFO) == verdict, "a damaged cache is probed again"
