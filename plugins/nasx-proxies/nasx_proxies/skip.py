"""FreeREA's skip proxy: the mean number of layers that the cell's skip connections jump over."""

from __future__ import annotations

from nasx.interfaces import Proxy


class Skip(Proxy):
    name = "skip"
    summary = "FreeREA's #skipped layers / #skip connections of the cell (0 without skips)"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        # A skip from node u to node v (nodes numbered in topological order) jumps over v - u - 1 nodes.
        edges = space.skip_edges(genotype)
        if not edges:
            return 0.0
        return sum(v - u - 1 for u, v in edges) / len(edges)
