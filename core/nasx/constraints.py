"""Built-in constraints on FLOPs and parameters, in the space's benchmark units (millions)."""

from __future__ import annotations

import math

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
