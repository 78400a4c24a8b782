"""Check-then-use races: a second process swaps a folder for a link out in a tight loop while the tools run.

Before tools/paths.py, apply_patch and open_file checked the path and then
opened it by name: 19 of 39 patches landed outside and an outside secret was
read 81 times in 299 calls. Now every operation is one open beneath the
repository's descriptor, so the swap can only make a call fail.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from tests.security.hostfiles_fixtures import SECRET, ctx, outside, outside_untouched, repo, resolution  # noqa: F401
from gptoss_agent.tools import files
from gptoss_agent.tools.editing import apply_patch_tool

ROUNDS = 250


def _swap_forever(repo: str, outside: str, ready, stop, swaps) -> None:
    """Alternate `d` between a real folder and a symlink to `outside`, as fast as possible."""
    os.chdir(repo)
    ready.set()
    while not stop.is_set():
        try:
            os.rename("d", "d.real")
            os.symlink(outside, "d")
            os.unlink("d")
            os.rename("d.real", "d")
            swaps.value += 1
        except OSError:
            pass


class Swapper:
    def __init__(self, repo: Path, outside: Path) -> None:
        context = multiprocessing.get_context("fork")
        self.ready, self.stop, self.swaps = context.Event(), context.Event(), context.Value("l", 0)
        self.process = context.Process(target=_swap_forever,
                                       args=(str(repo), str(outside), self.ready, self.stop, self.swaps))

    def __enter__(self) -> "Swapper":
        self.process.start()
        assert self.ready.wait(30)
        deadline = time.monotonic() + 30
        while self.swaps.value < 1 and time.monotonic() < deadline:  # the race is on before the first call
            time.sleep(0.001)
        assert self.swaps.value >= 1, "the swapping process never ran"
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def prepare(repo: Path) -> None:
    (repo / "d").mkdir()
    (repo / "d" / "f.txt").write_text("inside 0\n")


def test_apply_patch_never_writes_outside_while_a_folder_is_swapped(ctx, repo, outside):
    prepare(repo)
    applied = 0
    with Swapper(repo, outside) as swapper:
        for round_ in range(ROUNDS):
            target = "d/f.txt" if round_ % 2 else f"d/new{round_}.txt"
            if target == "d/f.txt":
                text = (repo / "d.real" / "f.txt") if (repo / "d.real").is_dir() else (repo / "d" / "f.txt")
                try:
                    old = text.read_text().strip()
                except OSError:
                    continue
                body = f"*** Update File: d/f.txt\n@@\n-{old}\n+inside {round_}\n"
            else:
                body = f"*** Add File: {target}\n+inside {round_}\n"
            result = apply_patch_tool.function(ctx, patch=f"*** Begin Patch\n{body}*** End Patch\n")
            applied += result.ok
        swaps = swapper.swaps.value
    assert outside_untouched(outside), f"a patch landed outside ({applied} applied, {swaps} swaps)"


def test_open_file_never_reads_outside_while_a_folder_is_swapped(ctx, repo, outside):
    prepare(repo)
    (outside / "f.txt").write_text(f"{SECRET}\n")
    leaks = reads = 0
    with Swapper(repo, outside) as swapper:
        for _ in range(ROUNDS):
            result = files.open_file.function(ctx, path="d/f.txt")
            reads += result.ok
            leaks += SECRET in result.output
        swaps = swapper.swaps.value
    assert leaks == 0, f"read the outside secret {leaks} times ({reads} reads, {swaps} swaps)"


def test_search_never_reports_outside_lines_while_a_folder_is_swapped(ctx, repo, outside):
    prepare(repo)
    leaks = 0
    with Swapper(repo, outside) as swapper:
        for _ in range(ROUNDS // 5):
            for path in ("d", "d/f.txt"):
                leaks += SECRET in files.search.function(ctx, query=SECRET[:7], path=path).output
    assert leaks == 0
