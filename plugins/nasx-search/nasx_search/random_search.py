"""Random search (as in NASWOT): score uniformly drawn feasible architectures, keep the best."""

from __future__ import annotations

from nasx.interfaces import Searcher
from nasx.options import non_negative, positive
from nasx.search import SearchContext, draw_new


class RandomSearch(Searcher):
    name = "random"
    summary = "Random search: score N random feasible architectures (0 = until the budget ends), keep the best"
    defaults = {"n": 0, "patience": 1000}
    option_checks = {"n": non_negative, "patience": positive}  # n 0: until the budget ends

    def search(self, context: SearchContext) -> None:
        wanted, patience = self.options["n"], self.options["patience"]
        stalled = 0
        while (not wanted or len(context.explored) < wanted) and stalled < patience:
            # as many new architectures at once as the executor runs, and never more than still wanted: the draws
            # and what is scored are the same as one at a time
            count = context.evaluator.executor.capacity
            if wanted:
                count = min(count, wanted - len(context.explored))
            _, stalled = draw_new(context, count, patience, stalled)
        context.stop_reason = f"scored {len(context.explored)} architectures" if stalled < patience else (
            f"no new architecture in {patience} draws"
        )
