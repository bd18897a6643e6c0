"""Built-in executors: ``serial`` (in this process, the default) and ``process`` (a local pool of worker processes).

The ``dask`` executor, for a Dask cluster, is the ``nasx-dask`` plugin.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import replace
from multiprocessing.connection import wait
from typing import Any, Iterable, Iterator

from nasx.errors import NasxError
from nasx.interfaces import Executor
from nasx.options import non_negative
from nasx.scoring import ScoreTask, ScoringSetup, TaskResult, import_torch, pack, run_task, setup_id

#: how often a task whose worker died is run again before it is given up as failed
RETRIES_AFTER_A_DEATH = 1


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SerialExecutor(Executor):
    """Scores in this process, one task at a time (today's behaviour; ``threads`` sets torch's threads)."""

    name = "serial"
    summary = "in this process, one architecture at a time"
    defaults = {"threads": 0}
    option_checks = {"threads": non_negative}  # 0: torch's default

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.previous_threads = 0

    def start(self, setup: ScoringSetup) -> None:
        setup.threads = self.options["threads"]
        torch = import_torch()  # scoring here needs it; imported here first, it is imported a little faster
        if setup.threads and not self.previous_threads:
            self.previous_threads = torch.get_num_threads()  # given back on close: this process is the caller's
        self.setup = setup

    def run(self, tasks: Iterable[ScoreTask]) -> Iterator[TaskResult]:
        for task in tasks:  # pulled one at a time: the caller sees each result before the next task is made
            yield run_task(self.setup, task)

    def close(self) -> None:
        if self.previous_threads:
            import torch

            torch.set_num_threads(self.previous_threads)
            self.previous_threads = 0

    def describe(self) -> str:
        return f"serial ({self.options['threads'] or 'default'} torch threads)"


class ProcessExecutor(Executor):
    """A local pool of ``workers`` processes (0: one per core), each with ``threads`` torch threads, so that N
    workers never oversubscribe N cores. Worker start-up (torch, the plugins, the input batch) is paid once per
    worker; a worker that dies is replaced and its task run once more."""

    name = "process"
    summary = "a local pool of worker processes, each with its own torch threads"
    defaults = {"workers": 0, "threads": 1}
    option_checks = {"workers": non_negative, "threads": non_negative}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.workers: list[_Worker] = []
        self.payload = b""
        self.setup_id = ""
        self._opener: threading.Thread | None = None
        self._open_error: BaseException | None = None

    @property
    def capacity(self) -> int:
        return self.options["workers"] or cores()

    def open(self) -> None:
        """Starts the workers in a background thread; ``start`` waits for them. Their start-up (mostly the
        forkserver importing torch) then overlaps with what the command does meanwhile: building the space,
        reading the benchmark table, importing torch in this process."""
        if self._opener is not None or len(self.workers) >= self.capacity:
            return

        def start_workers() -> None:
            try:
                while len(self.workers) < self.capacity:
                    self.workers.append(_Worker(self.options["threads"]))
            except BaseException as exc:  # raised again in this process's thread by _opened
                self._open_error = exc

        self._opener = threading.Thread(target=start_workers, name="nasx-worker-start", daemon=True)
        self._opener.start()

    def _opened(self) -> None:
        """Every worker started: waits for ``open``'s thread (starting it first when it was not called)."""
        self.open()
        if self._opener is not None:
            self._opener.join()
            self._opener = None
            error, self._open_error = self._open_error, None
            if error is not None:
                raise error

    def start(self, setup: ScoringSetup) -> None:
        setup.threads = self.options["threads"]
        self.payload = pack(setup)
        self.setup_id = setup_id(self.payload)
        self._opened()
        for worker in self.workers:
            worker.send(("setup", self.setup_id, self.payload))

    def run(self, tasks: Iterable[ScoreTask]) -> Iterator[TaskResult]:
        if not self.payload:
            raise RuntimeError("start() the executor before run()")
        pending = iter(tasks)
        retry: deque[ScoreTask] = deque()
        busy: dict[_Worker, ScoreTask] = {}
        more = True
        try:
            while True:
                for worker in [w for w in self.workers if w not in busy]:
                    task = retry.popleft() if retry else (next(pending, None) if more else None)
                    if task is None:
                        more = False
                        break
                    task = replace(task, setup_id=self.setup_id)
                    if worker.send(("task", task)):
                        busy[worker] = task
                    else:  # it died between tasks: its successor takes the task on the next pass
                        self._replace(worker)
                        retry.appendleft(task)
                if not busy:
                    if retry:
                        continue
                    return
                ready = wait([w.inbox for w in busy])
                for worker in [w for w in busy if w.inbox in ready]:
                    result = worker.receive()
                    if result is not None:
                        busy.pop(worker)
                        yield result
                        continue
                    task = busy.pop(worker)
                    if not worker.started:  # no cell's fault: every worker would die the same way
                        raise NasxError(_start_failure(worker.stop()))
                    code = self._replace(worker)
                    if task.attempt <= RETRIES_AFTER_A_DEATH:
                        retry.append(replace(task, attempt=task.attempt + 1))
                    else:
                        yield _died(task, code)
        finally:
            # a caller that stops early (a budget ran out) must not find these results in its next run
            for worker in list(busy):
                if worker.receive() is None:
                    self._replace(worker)

    def _replace(self, worker: "_Worker") -> int | None:
        """Start a new worker in place of a dead one; the dead one's exit code."""
        code = worker.stop()
        fresh = _Worker(self.options["threads"])
        fresh.send(("setup", self.setup_id, self.payload))
        self.workers[self.workers.index(worker)] = fresh
        return code

    def close(self) -> None:
        if self._opener is not None:
            self._opener.join()
            self._opener, self._open_error = None, None
        for worker in self.workers:  # all told first, so that they exit together
            worker.tell_to_stop()
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def describe(self) -> str:
        return f"process ({self.capacity} workers x {self.options['threads'] or 'default'} torch threads)"


def _start_failure(code: int | None) -> str:
    return (f"a worker process died as it started (exit code {code}; its error is printed above). Workers import "
            "the script that started them again: in a script, call nasx under `if __name__ == \"__main__\":`, "
            "or use the serial executor")


def _died(task: ScoreTask, code: int | None) -> TaskResult:
    return TaskResult.failed(task, f"the worker scoring it died twice (exit code {code})")


def worker_context():
    """The multiprocessing context workers start from: a forkserver, a fresh interpreter (not a fork of the caller,
    so no OpenMP state is inherited and a user's script is never imported again) that imports torch, networkx and
    nasx's scoring once and then forks every worker of this process ready to compute; ``spawn`` where the platform
    has no forkserver (each worker then imports torch itself)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # preload only before the server starts (it lives as long as this process): a later call would be ignored
    context.set_forkserver_preload(["nasx._forkserver"])
    return context


def start_forkserver() -> None:
    """Start the forkserver that workers fork from now, where there is one: its import of torch (about a second)
    then overlaps whatever the command does before its first worker is needed. Starting it again does nothing."""
    context = worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class _Worker:
    """One worker process (``nasx.worker.serve``) and the two pipes to it."""

    def __init__(self, threads: int) -> None:
        context = worker_context()
        worker_reads, self_writes = context.Pipe(duplex=False)
        self_reads, worker_writes = context.Pipe(duplex=False)
        from nasx.worker import serve

        self.process = context.Process(target=serve, args=(worker_reads, worker_writes, threads), daemon=True)
        try:
            self.process.start()
        except OSError as exc:
            raise NasxError(f"cannot start a worker process: {exc}") from None
        finally:
            # the worker holds its own ends now: with ours closed, its death is an end of file here
            worker_reads.close()
            worker_writes.close()
        self.outbox = self_writes
        self.inbox = self_reads
        #: whether the worker said it is ready (``serve`` running): until then a death is a failure to start
        self.started = False

    def send(self, message: Any) -> bool:
        try:
            self.outbox.send(message)
            return True
        except (BrokenPipeError, OSError):
            return False

    def receive(self) -> TaskResult | None:
        """The next result, or None when the worker has died."""
        try:
            message = self.inbox.recv()
            if message == ("ready",):
                self.started = True
                message = self.inbox.recv()
            return message
        except (EOFError, OSError):
            return None

    def tell_to_stop(self) -> None:
        """Ask the worker to exit; ``stop`` waits for it."""
        if not self.outbox.closed:
            self.send(("stop",))
            for connection in (self.outbox, self.inbox):
                connection.close()

    def stop(self) -> int | None:
        self.tell_to_stop()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        return self.process.exitcode
