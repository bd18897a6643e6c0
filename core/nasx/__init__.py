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

__all__ = [
    "BudgetExhausted",
    "Combiner",
    "Constraint",
    "Cost",
    "EnumerableSpace",
    "EvolvableSpace",
    "InvalidGenotype",
    "NasxError",
    "Oracle",
    "PluginError",
    "Proxy",
    "Searcher",
    "Space",
    "__version__",
]
