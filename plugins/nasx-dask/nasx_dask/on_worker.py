"""What runs in a Dask worker process (this module imports distributed, so the executor loads it only when used)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from nasx.scoring import ScoreTask, ScoringSetup, TaskResult

#: a worker's setups by id, as packed by the driver (bytes) until its first task unpacks them
_SETUPS: dict[str, "bytes | ScoringSetup"] = {}


class SetupPlugin(WorkerPlugin):
    """Hands a driver's scoring setup to every worker of the cluster, present and future."""

    def __init__(self, identity: str, payload: bytes) -> None:
        self.identity, self.payload = identity, payload

    def setup(self, worker) -> None:
        _SETUPS[self.identity] = self.payload

    def teardown(self, worker) -> None:
        _SETUPS.pop(self.identity, None)


def score_on_worker(identity: str, task: ScoreTask) -> TaskResult:
    """Runs on a Dask worker."""
    from nasx.scoring import run_task, unpack

    setup = _SETUPS.get(identity)
    if setup is None:
        raise RuntimeError("this Dask worker has no nasx scoring setup (its plugin was not installed)")
    if isinstance(setup, bytes):  # unpacked once per worker process, not once per task
        setup = _SETUPS[identity] = unpack(setup)
    return run_task(setup, task)
