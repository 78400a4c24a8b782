"""The patch matrix through the real apply_patch tool on real files: intended result or refusal, never broken."""

from __future__ import annotations

import pytest

from tests.fixtures.patch_matrix_cases import build_cases, run_case

CASES = build_cases()


def test_the_matrix_is_big_enough_and_mostly_imperfect():
    assert len(CASES) >= 40
    assert sum(case.imperfect for case in CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_applies_as_intended_or_is_refused(case, tmp_path):
    verdict = run_case(case, tmp_path / "repo")
    if case.expected is None:
        assert verdict.kind == "refused", verdict.message
        assert case.refusal in verdict.message
        assert "nothing was written" in verdict.message
    else:
        assert verdict.kind == "applied", verdict.message
