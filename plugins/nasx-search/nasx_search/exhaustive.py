"""Exhaustive search: score every feasible architecture of an enumerable space, in official index order."""

from __future__ import annotations

from nasx.interfaces import EnumerableSpace, Searcher
from nasx.search import SearchContext


class Exhaustive(Searcher):
    name = "exhaustive"
    summary = "Score every feasible architecture (index order): the proxy-optimal one, and whole-space studies"
    requires = EnumerableSpace

    #: feasible architectures handed to the executor at once (enough to keep every worker busy)
    chunk = 256

    def search(self, context: SearchContext) -> None:
        space = context.space
        chunk = []
        for index in range(len(space)):
            genotype = space.genotype_at(index)
            if context.is_feasible(genotype):
                chunk.append(genotype)
            if len(chunk) == self.chunk:
                context.evaluate_many(chunk)
                chunk = []
        context.evaluate_many(chunk)
        context.stop_reason = "space exhausted"
