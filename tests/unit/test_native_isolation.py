"""A native crash in a model test fails that test; the rest of the suite still runs and reports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_a_sigill_in_a_model_test_fails_only_that_test(tmp_path: Path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text((REPO_ROOT / "tests" / "conftest.py").read_text())
    (suite / "test_crash.py").write_text(textwrap.dedent("""
        import os, signal
        import pytest

        @pytest.mark.model
        def test_native_code_dies():
            os.kill(os.getpid(), signal.SIGILL)

        def test_after_the_crash():
            # Runs in the parent pytest after the crash: proof the run went on.
            open(os.environ["RAN_AFTER_THE_CRASH"], "w").close()
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "-o", "markers=model: native", str(suite)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT),
                               "RAN_AFTER_THE_CRASH": str(tmp_path / "ran-after-the-crash")})
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    assert "signal 4" in out or "SIGILL" in out, out
    assert (tmp_path / "ran-after-the-crash").exists(), "the test after the crash did not run"
