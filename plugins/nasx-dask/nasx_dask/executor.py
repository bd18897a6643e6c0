"""Scoring on a Dask cluster: ``--executor dask --scheduler tcp://HOST:8786`` uses a running scheduler (any Dask
deployment: dask-jobqueue on SLURM/PBS, Kubernetes, ``dask scheduler`` + ``dask worker`` by hand); without
``--scheduler`` a ``LocalCluster`` of ``workers`` single-threaded worker processes is started and stopped.

The scoring setup reaches every worker once, as a worker plugin, so that a worker started later (one that replaces a
dead worker, or joins the cluster) gets it too; each task carries only an architecture string. Only the driver
writes the score cache. A task whose worker dies is rescheduled by Dask once on the local cluster
(``allowed-failures`` 1; a running cluster keeps its own setting); after that it is a failed score.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from nasx.errors import NasxError
from nasx.interfaces import Executor
from nasx.options import non_negative
from nasx.scoring import ScoreTask, ScoringSetup, TaskResult, pack, setup_id

class DaskExecutor(Executor):
    name = "dask"
    summary = "a Dask distributed cluster (a running scheduler, or a local cluster of worker processes)"
    defaults = {"workers": 0, "threads": 1, "scheduler": ""}
    option_checks = {"workers": non_negative, "threads": non_negative}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.client = None
        self.cluster = None
        self.plugin_name = ""
        self.identity = ""

    @property
    def capacity(self) -> int:
        if self.client is None:
            from nasx.executors import cores

            return self.options["workers"] or cores()
        # one task per worker thread in flight keeps the cluster busy without queueing the whole list
        return max(1, sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values()))

    def _connect(self) -> None:
        import dask
        from distributed import Client, LocalCluster

        if self.options["scheduler"]:
            try:
                self.client = Client(self.options["scheduler"], timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise NasxError(f"cannot reach the Dask scheduler {self.options['scheduler']}: {exc}") from None
            return
        from nasx.executors import cores

        threads = self.options["threads"]
        env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        # Dask's default trims freed memory back to the system at 64 KiB: every forward pass then faults its
        # tensors in afresh, which made scoring about 2.5 times slower than in a plain process
        env.pop("MALLOC_TRIM_THRESHOLD_", None)
        if threads:
            env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        # Each worker's statistical profiler samples the scoring thread's stack every 10 ms and its system monitor
        # measures GIL contention: both take the GIL from a computation that is mostly short Python-driven torch
        # calls. Nobody looks at them here (no dashboard).
        with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                              "distributed.nanny.pre-spawn-environ": env,
                              "distributed.worker.profile.enabled": False,
                              "distributed.admin.system-monitor.gil.enabled": False}):
            self.cluster = LocalCluster(n_workers=self.options["workers"] or cores(), threads_per_worker=1,
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)

    def open(self) -> None:
        if self.client is None:
            self._connect()

    def start(self, setup: ScoringSetup) -> None:
        setup.threads = self.options["threads"]
        self.open()
        payload = pack(setup)
        if self.plugin_name and setup_id(payload) == self.identity:
            return  # the workers have it already
        self.identity = setup_id(payload)
        # Every worker gets the setup once, and so does any worker that starts later. (Data scattered to the workers
        # would be lost with a worker that dies, and the tasks that need it cancelled.) Registering under the same
        # name replaces this driver's previous setup.
        from nasx_dask.on_worker import SetupPlugin

        self.plugin_name = f"nasx-setup-{self.client.id}"
        self.client.register_plugin(SetupPlugin(self.identity, payload), name=self.plugin_name)

    def run(self, tasks: Iterable[ScoreTask]) -> Iterator[TaskResult]:
        from distributed import as_completed

        from nasx_dask.on_worker import score_on_worker

        if not self.plugin_name:
            raise RuntimeError("start() the executor before run()")
        pending = iter(tasks)
        submitted: dict[Any, ScoreTask] = {}

        def submit() -> Any | None:
            task = next(pending, None)
            if task is None:
                return None
            future = self.client.submit(score_on_worker, self.identity, task, pure=False)
            submitted[future] = task
            return future

        # two tasks per worker thread: while one runs, the next is already on the worker, so no worker waits for
        # the round trip of its result through the scheduler and the driver
        first = [f for f in (submit() for _ in range(2 * self.capacity)) if f is not None]
        if not first:
            return
        completed = as_completed(first)
        try:
            for future in completed:
                task = submitted.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # KilledWorker after a second death, or a task that could not run
                    result = TaskResult.failed(task, f"{type(exc).__name__}: {exc}")
                yield result
                following = submit()
                if following is not None:
                    completed.add(following)
        finally:
            for future in submitted:  # a caller that stopped early: let nothing run on
                future.cancel()

    def close(self) -> None:
        if self.client is not None:
            if self.plugin_name and self.cluster is None:  # a running cluster outlives this driver
                self.client.unregister_worker_plugin(self.plugin_name)
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
        self.plugin_name = ""

    def describe(self) -> str:
        where = self.options["scheduler"] or f"local cluster, {self.capacity} workers"
        return f"dask ({where} x {self.options['threads'] or 'default'} torch threads)"
