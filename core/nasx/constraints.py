"""Built-in constraints on FLOPs and parameters, in the space's benchmark units (millions), and on the measured
latency (milliseconds)."""

from __future__ import annotations

import math

from nasx.errors import NasxError
from nasx.interfaces import Constraint, Cost


class MaxFlops(Constraint):
    name = "max-flops"
    summary = "FLOPs (millions, the benchmark's definition) at most `limit`"
    defaults = {"limit": math.inf}

    def is_feasible(self, cost: Cost) -> bool:
        return cost.flops_m <= self.options["limit"]


class MaxParams(Constraint):
    name = "max-params"
    summary = "parameters (millions) at most `limit`"
    defaults = {"limit": math.inf}

    def is_feasible(self, cost: Cost) -> bool:
        return cost.params_m <= self.options["limit"]


class MaxLatency(Constraint):
    name = "max-latency"
    summary = "measured latency (milliseconds, median of timed runs) at most `limit`"
    defaults = {"limit": math.inf}
    needs_latency = True

    def is_feasible(self, cost: Cost) -> bool:
        if cost.latency_ms is None:
            raise NasxError("max-latency needs a measured latency: the search was given no latency meter")
        return cost.latency_ms <= self.options["limit"]

    def describe(self) -> str:
        return f"max-latency(limit={self.options['limit']} ms)"
