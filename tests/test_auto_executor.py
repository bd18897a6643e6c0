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
    monkeypatch.delenv("NASX_EXECUTOR", raising=False)  # the suite sets it (conftest.py)
    monkeypatch.setattr(executors, "cores", lambda: cores)
    assert auto_executor(settings) == expected


def test_auto_is_the_default_and_nasx_executor_overrides_what_it_picks(monkeypatch):
    from nasx.settings import DEFAULT_EXECUTOR

    assert DEFAULT_EXECUTOR == "auto" and Execution().executor == "auto"
    monkeypatch.setattr(executors, "cores", lambda: 4)
    monkeypatch.setenv("NASX_EXECUTOR", "serial")
    assert auto_executor(Execution()) == "serial"
    assert auto_executor(Execution(workers=2)) == "process"  # asked-for workers need processes
    monkeypatch.setenv("NASX_EXECUTOR", "auto")
    assert auto_executor(Execution()) == "process"


def test_a_default_run_uses_worker_processes_on_several_cores(monkeypatch):
    """The default search scores in one worker per core, with the results of one process."""
    import nasx

    monkeypatch.delenv("NASX_EXECUTOR", raising=False)
    monkeypatch.setattr(executors, "cores", lambda: 2)
    found = nasx.run(proxies=["naswot", "skip"], max_evals=4, seed=3, cache=False, options={"batch_size": 8})
    assert found.executor.startswith("process (2 workers")
    alone = nasx.run(proxies=["naswot", "skip"], max_evals=4, seed=3, cache=False, options={"batch_size": 8},
                     executor="serial", threads=1)
    assert (found.arch, found.scores) == (alone.arch, alone.scores)


def test_zero_workers_is_refused_with_the_way_to_one_per_core():
    from nasx.errors import NasxError

    with pytest.raises(NasxError, match=r"--workers must be a positive integer \(leave it out for one worker per "
                                        r"core\), got 0"):
        Execution(workers=0)
