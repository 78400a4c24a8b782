"""What every ACP scenario starts from: the user's repository and a state directory of its own.

The state directory is passed to the agent's environment (not set here) so
that its session logs land where the test can read them and nowhere else.
"""

from __future__ import annotations

import pytest

from tests.fixtures.repos import make_calc_repo


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


@pytest.fixture
def state(tmp_path):
    return {"GPTOSS_AGENT_STATE_DIR": str(tmp_path / "state")}
