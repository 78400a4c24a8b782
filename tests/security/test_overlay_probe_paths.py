"""The overlay probe treats the work tree's path as data: a folder name holding shell syntax runs nothing.

Found by attack: the probe pasted the path into `sh -c` text, so a repository cloned into a folder named
`x"$(...)"` ran its code on the first command or `doctor`, outside the command sandbox's seccomp filter
(the attack sent a file to a local listener).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gptoss_agent.tools.sandbox import overlay as sandbox_overlay


def test_a_work_tree_path_holding_shell_syntax_runs_nothing(tmp_path: Path, monkeypatch):
    # The probe sees the host read-only, so the planted command reports through a FIFO (writable on a
    # read-only mount); a folder name cannot hold '/', so the FIFO's path rides in the environment.
    fifo = tmp_path / "reports"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    monkeypatch.setenv("PLANTED_FIFO", str(fifo))
    tree = tmp_path / 'x"$(echo${IFS}ran>${PLANTED_FIFO})"'
    tree.mkdir()
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    sandbox_overlay.probe.cache_clear()
    try:
        sandbox_overlay.probe(tree)
        try:
            heard = os.read(reader, 100)
        except BlockingIOError:
            heard = b""
    finally:
        os.close(reader)
    assert heard == b"", "the folder name was run as a shell command"
