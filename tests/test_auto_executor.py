"""--executor auto: a Dask cluster when a scheduler is named, worker processes on a machine of several cores."""

import pytest

from nasx import executors
from nasx._build import auto_executor
from nasx.settings import Execution


@pytest.mark.parametrize(
    "cores, settings, expected",
    [
        (2, Execution(executor="auto"), "process"),
        (1, Execution(executor="auto"), "serial"),
        (1, Execution(executor="auto", workers=3), "process"),
        (8, Execution(executor="auto", scheduler="tcp://host:8786"), "dask"),
    ],
)
def test_auto_picks_by_cores_and_options(monkeypatch, cores, settings, expected):
    monkeypatch.setattr(executors, "cores", lambda: cores)
    assert auto_executor(settings) == expected


def test_zero_workers_is_refused_with_the_way_to_one_per_core():
    from nasx.errors import NasxError

    with pytest.raises(NasxError, match=r"--workers must be a positive integer \(leave it out for one worker per "
                                        r"core\), got 0"):
        Execution(workers=0)
