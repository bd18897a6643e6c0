"""nasx: training-free neural architecture search.

Importing nasx is cheap: torch and the plugins are loaded only when needed.
"""

from nasx.errors import BudgetExhausted, InvalidGenotype, NasxError, PluginError
from nasx.interfaces import (
    Combiner,
    Constraint,
    Cost,
    EnumerableSpace,
    EvolvableSpace,
    Oracle,
    Proxy,
    Searcher,
    Space,
)

__version__ = "0.1.0"

#: the Python API (nasx.api), imported on first use so that ``import nasx`` stays cheap
_API = ("run", "score", "iter_scores", "correlate", "experiment", "build", "export", "load_export", "train",
        "RunResult", "ExperimentResult", "ExportResult", "TrainResult")


def __getattr__(name: str):
    if name in _API:
        from nasx import api

        return getattr(api, name)
    raise AttributeError(f"module 'nasx' has no attribute {name!r}")

__all__ = [
    "BudgetExhausted",
    "Combiner",
    "Constraint",
    "Cost",
    "EnumerableSpace",
    "ExperimentResult",
    "EvolvableSpace",
    "ExportResult",
    "InvalidGenotype",
    "NasxError",
    "Oracle",
    "PluginError",
    "Proxy",
    "RunResult",
    "Searcher",
    "Space",
    "TrainResult",
    "__version__",
    "build",
    "correlate",
    "experiment",
    "export",
    "iter_scores",
    "load_export",
    "run",
    "score",
    "train",
]
