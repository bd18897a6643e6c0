"""What the ``process`` executor's forkserver imports before it forks any worker (:func:`nasx.executors.worker_context`).

multiprocessing preloads by module name only, so importing this module is that step; nothing else imports it.
It imports torch, networkx and nasx's scoring with the cyclic garbage collector paused, then freezes everything
(``gc.freeze``), as Python's documentation advises before forking: these objects live as long as the process, so
no collection, in the forkserver or in a worker, ever needs to walk them, or to write to the pages the workers
share with the forkserver.
"""

import gc

from nasx.scoring import collector_paused

with collector_paused():
    import networkx  # noqa: F401
    import torch  # noqa: F401

    import nasx.worker  # noqa: F401

    gc.freeze()  # before the collector is back: its next collection would otherwise walk them all once
