"""A worker process of the ``process`` executor: ``python -m nasx.worker READ_FD WRITE_FD``.

It reads ("setup", id, payload) and ("task", ScoreTask) messages from the driver and answers each task with a
TaskResult. A fresh interpreter (not a fork) so that no OpenMP state is inherited and a user's script is never
imported again; its torch threads are set from the environment before torch is imported.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def serve(inbox: Connection, outbox: Connection) -> None:
    from nasx.scoring import TaskResult, run_task, unpack

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


def main() -> None:
    import torch  # noqa: F401  (paid now, while the driver prepares, not inside the first task)

    inbox = Connection(int(sys.argv[1]), writable=False)
    outbox = Connection(int(sys.argv[2]), readable=False)
    serve(inbox, outbox)


if __name__ == "__main__":
    main()
