"""Size baselines: parameters and FLOPs from the space's cost model (no network is built)."""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx_proxies._common import ProxyPlugin


class Params(Proxy):
    name = "params"
    summary = "Number of parameters (millions), from the space's cost model"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        return float(space.cost(genotype).params_m)


class Flops(Proxy):
    name = "flops"
    summary = "FLOPs (millions, the benchmark's definition), from the space's cost model"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        return float(space.cost(genotype).flops_m)


params_plugin = ProxyPlugin(Params)
flops_plugin = ProxyPlugin(Flops)
