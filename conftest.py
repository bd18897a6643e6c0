"""Fixtures shared by every test folder. Data-dependent tests fail (never skip) under CI when NASX_DATA is missing."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("NASX_DATA")
    if not value or not Path(value).is_dir():
        message = "NASX_DATA must point at the benchmark data directory (../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(value)
