"""Size baselines: parameters and FLOPs from the space's cost model (no network is built)."""

from __future__ import annotations

from nasx.interfaces import Proxy


class _CostProxy(Proxy):
    needs_network = False
    field = ""  # attribute of nasx.Cost

    def score_genotype(self, space, genotype) -> float:
        return float(getattr(space.cost(genotype), self.field))


class Params(_CostProxy):
    name = "params"
    summary = "Number of parameters (millions), from the space's cost model"
    field = "params_m"


class Flops(_CostProxy):
    name = "flops"
    summary = "FLOPs (millions, the benchmark's definition), from the space's cost model"
    field = "flops_m"
