"""The status bar names the project's own Python environment (tools/python_env.py), and only that."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.fixtures.repos import final
from tests.tui.conftest import wait_for


def test_the_status_bar_shows_the_repositorys_venv(make_app, repo):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(repo / ".venv")], check=True)
    app = make_app([final("ok")])

    async def scenario():
        async with app.run_test(size=(160, 30)) as pilot:
            await wait_for(pilot, lambda: app.runtime is not None)
            await wait_for(pilot, lambda: "python .venv" in str(app.query_one("#status").render()))

    asyncio.run(scenario())


def test_no_python_field_without_a_project_environment(make_app, repo):
    app = make_app([final("ok")])

    async def scenario():
        async with app.run_test(size=(160, 30)) as pilot:
            await wait_for(pilot, lambda: app.runtime is not None and "sandbox" in str(app.query_one("#status").render()))
            assert "python" not in str(app.query_one("#status").render())

    asyncio.run(scenario())
