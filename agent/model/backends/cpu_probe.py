"""Does llama.cpp's AMX path really work on this CPU? Asked once per machine, in a child.

Some x86-64 virtual machines advertise AMX (`amx_tile` in /proc/cpuinfo, the tile
state enabled in XCR0, `ARCH_REQ_XCOMP_PERM` granted) while the hypervisor does
not actually run tile instructions: the first `tilezero` raises SIGILL. llama.cpp
trusts the advertisement and, through its "extra buffer types", routes quantised
matrix products to AMX kernels, so the whole process (the TUI, the test run) dies
with "Illegal instruction". Nothing may depend on luck with CPU features, so before
loading a model we run exactly the instructions those kernels start with
(request tile permission, `ldtilecfg`, `tilezero`, `tilerelease`) in a throwaway
child process. If the child dies, the model is loaded with the extra buffer types
off, which keeps llama.cpp on its ordinary AVX kernels.

The verdict is cached per machine (CPU flags + kernel release), so the probe's
~50 ms are paid once. This module does not import llama_cpp.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")

# Run in the child: ask the kernel for the AMX tile state, then execute the first
# instructions of llama.cpp's AMX kernels from an executable page.
#   ldtilecfg [rdi]  C4 E2 78 49 07     tilezero tmm0  C4 E2 7B 49 C0
#   tilerelease      C4 E2 78 49 C0     ret            C3
_CHILD = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA, SYS_arch_prctl = 0x1023, 18, 158
if libc.syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0:
    sys.exit(3)  # the kernel refuses the tile state: llama.cpp will not use AMX either
code = bytes.fromhex("c4e2784907" "c4e27b49c0" "c4e27849c0" "c3")
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
address = ctypes.addressof(ctypes.c_char.from_buffer(page))
config = (ctypes.c_uint8 * 64)()
config[0] = 1                                  # palette 1
config[16], config[17] = 64, 0                 # tile 0: 64 bytes per row
config[48] = 16                                # tile 0: 16 rows
ctypes.CFUNCTYPE(None, ctypes.c_void_p)(address)(ctypes.addressof(config))
sys.exit(0)
"""


@dataclass(frozen=True)
class ProbeVerdict:
    """Whether llama.cpp may use its extra CPU buffer types, and why."""

    extra_buffer_types: bool
    reason: str
    advertised: tuple[str, ...] = ()

    def describe(self) -> str:
        state = "on" if self.extra_buffer_types else "off"
        return f"extra CPU buffer types (AMX) {state}: {self.reason}"


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def decide(flags: frozenset[str], child_returncode: int | None) -> ProbeVerdict:
    """The verdict from the advertised flags and the child's exit status (None: not run)."""
    advertised = tuple(f for f in AMX_FLAGS if f in flags)
    if "amx_tile" not in flags:
        return ProbeVerdict(True, "this CPU does not advertise AMX, so llama.cpp will not use it", advertised)
    if child_returncode == 0:
        return ProbeVerdict(True, "AMX is advertised and tile instructions ran in a probe", advertised)
    if child_returncode == 3:
        return ProbeVerdict(True, "AMX is advertised but the kernel withholds the tile state, "
                                  "so llama.cpp does not use it", advertised)
    if child_returncode is not None and child_returncode < 0:
        name = signal.Signals(-child_returncode).name if -child_returncode in signal.valid_signals() else "?"
        return ProbeVerdict(False, f"AMX is advertised but a tile instruction killed the probe with {name}; "
                                   "llama.cpp's AMX kernels would crash the same way", advertised)
    return ProbeVerdict(False, f"AMX is advertised but the probe failed (exit status {child_returncode}); "
                               "staying on the ordinary kernels to be safe", advertised)


def run_child(source: str = _CHILD, *, timeout_s: float = 20.0) -> int | None:
    """Run `source` in a fresh interpreter; its exit status (negative: the signal that killed it)."""
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", source], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.returncode


def probe(cache_dir: Path | None = None, *, cpuinfo: str | None = None) -> ProbeVerdict:
    """The verdict for this machine: from the cache, else by running the probe child once."""
    flags = cpu_flags(cpuinfo)
    if "amx_tile" not in flags or platform.machine() not in ("x86_64", "AMD64"):
        return decide(flags, None)
    cache = (cache_dir or _default_cache_dir()) / f"cpu-probe-{_machine_key(flags)}.json"
    try:
        data = json.loads(cache.read_text())
        return ProbeVerdict(bool(data["extra_buffer_types"]), str(data["reason"]),
                            tuple(str(f) for f in data.get("advertised", ())))
    except (OSError, ValueError, TypeError, KeyError):
        pass  # no verdict yet, or an unreadable one: probe again
    verdict = decide(flags, run_child())
    try:
        cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(verdict)))
        temporary.replace(cache)
    except OSError:
        pass  # a probe we cannot cache is run again next time; never a reason to fail
    return verdict


def _machine_key(flags: frozenset[str]) -> str:
    material = " ".join(sorted(flags)) + "|" + platform.release() + "|" + platform.machine()
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _default_cache_dir() -> Path:
    from gptoss_agent.agent.model.vocab import cache_dir

    return cache_dir()
