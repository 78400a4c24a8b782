"""A repository that ships packages named like ours must never get its code run on the host.

A hostile repository can hold `gptoss_agent/`, `agent/`, `tools/` and `prompts/` packages (the last three are the
names our code had before it moved under `gptoss_agent`). Our own Python processes started in it (the console
script, and the sandbox's launchers, which run on the host before they confine the command) must import our code,
never the repository's: each planted package writes a marker outside the repository when imported, and a marker
on the host is code the repository ran as the user.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.repos import call, final, git, make_calc_repo, write_replay

PLANTED = ("gptoss_agent", "agent", "tools", "prompts")


def _plant(repo: Path, marker_dir: Path) -> None:
    """Packages that announce their import by writing a file outside the repository (host-side only)."""
    for name in PLANTED:
        package = repo / name
        package.mkdir()
        (package / "__init__.py").write_text(
            "import pathlib\n"
            f"pathlib.Path({str(marker_dir / name)!r}).write_text('imported from the repository')\n")
    for sub in ("agent", "tools", "sandbox", "frontends"):  # so a dotted import would find them too
        nested = repo / "gptoss_agent" / sub
        nested.mkdir(exist_ok=True)
        (nested / "__init__.py").write_text(
            "import pathlib\n"
            f"pathlib.Path({str(marker_dir / ('gptoss_agent.' + sub))!r}).write_text('imported')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "packages named like the agent's")


def _console_script() -> Path:
    script = Path(sys.executable).with_name("gptoss-agent")
    if not script.exists():
        pytest.skip("the gptoss-agent console script is not installed beside this Python")
    return script


@pytest.mark.parametrize("sandbox", ["bwrap", "landlock"])
def test_the_console_script_and_the_sandbox_launchers_import_our_code_not_the_repositorys(tmp_path, vocab_dir,
                                                                                          sandbox):
    from gptoss_agent.tools.sandbox import detect

    if detect(sandbox).mechanism != sandbox:
        pytest.skip(f"{sandbox} is not available here")
    repo = make_calc_repo(tmp_path / "project")
    markers = tmp_path / "markers"
    markers.mkdir()
    _plant(repo, markers)
    replay = write_replay(tmp_path / "replay.json", [
        call("container.exec", {"cmd": ["sh", "-c", "echo ran"]}),
        call("functions.run_tests", {}),
        final("Looked around."),
    ])
    done = subprocess.run([str(_console_script()), "exec", "--backend", f"replay:{replay}", "--json",
                           "--sandbox", sandbox, "--approval", "full-auto", "look around", "--cwd", str(repo)],
                          cwd=repo, capture_output=True, text=True, timeout=240)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("type") == "tool_result"]
    assert len(finished) == 2, done.stdout + done.stderr  # both commands really ran, through the launchers
    assert "ran" in json.dumps(finished[0])
    assert sorted(p.name for p in markers.iterdir()) == []
