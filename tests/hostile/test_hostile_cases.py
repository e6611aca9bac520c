"""Every case under tests/hostile/cases/ through the real pipeline (see harness.py for the format)."""

from __future__ import annotations

import pytest
from harness import Case, case_params, check_case, hostile_env, run_case  # noqa: F401 - hostile_env is a fixture

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.mark.parametrize("case", case_params())
def test_hostile_case(case: Case, hostile_env, tmp_path):  # noqa: F811
    check_case(run_case(case, hostile_env, tmp_path))
