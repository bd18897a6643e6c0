"""A worker process of the ``process`` executor, started by :func:`nasx.executors.worker_context`.

It reads ("setup", id, payload) and ("task", ScoreTask) messages from the driver and answers each task with a
TaskResult, until ("stop",) or the end of its input. Importing this module imports no torch: the forkserver
preloads torch next to it (:mod:`nasx._forkserver`), so every worker it forks starts with torch imported.
"""

from __future__ import annotations

from multiprocessing.connection import Connection


def serve(inbox: Connection, outbox: Connection, threads: int = 0) -> None:
    import gc

    from nasx.scoring import TaskResult, import_torch, run_task, unpack

    torch = import_torch()  # already imported where the worker was forked from a forkserver
    if threads:
        torch.set_num_threads(threads)
    # What the worker inherits (torch and the other preloaded modules, ~185,000 objects) lives as long as it does:
    # frozen, the cyclic collector never walks it again. Each full collection then takes about a millisecond
    # instead of a tenth of a second, and no longer writes to (and so copies) the pages shared with the forkserver.
    # The forkserver froze what it preloaded (nasx._forkserver); this covers a worker started without one (spawn).
    gc.freeze()
    outbox.send(("ready",))  # it got this far: a death from now on is not a failure to start
    setups: dict[str, object] = {}
    broken: dict[str, str] = {}
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):  # the driver has gone
            return
        if message[0] == "stop":
            return
        if message[0] == "setup":
            _, identity, payload = message
            setups.clear()
            broken.clear()
            try:
                setups[identity] = unpack(payload)
            except Exception as exc:  # e.g. a component class this interpreter cannot import
                broken[identity] = f"a worker cannot load the scoring setup: {type(exc).__name__}: {exc}"
            continue
        task = message[1]
        if task.setup_id in broken:
            outbox.send(TaskResult(task.number, task.arch, fatal=broken[task.setup_id]))
        else:
            outbox.send(run_task(setups[task.setup_id], task))
