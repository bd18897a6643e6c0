"""Random search (as in NASWOT): score uniformly drawn feasible architectures, keep the best."""

from __future__ import annotations

from nasx.hookspecs import hookimpl
from nasx.interfaces import Searcher
from nasx.options import non_negative, positive
from nasx.search import SearchContext


class RandomSearch(Searcher):
    name = "random"
    summary = "Random search: score N random feasible architectures (0 = until the budget ends), keep the best"
    defaults = {"n": 0, "patience": 1000}
    option_checks = {"n": non_negative, "patience": positive}  # n 0: until the budget ends

    def search(self, context: SearchContext) -> None:
        wanted, patience = self.options["n"], self.options["patience"]
        stalled = 0
        while (not wanted or len(context.explored) < wanted) and stalled < patience:
            before = len(context.explored)
            context.evaluate(context.sample())
            stalled = 0 if len(context.explored) > before else stalled + 1
        context.stop_reason = f"scored {len(context.explored)} architectures" if stalled < patience else (
            f"no new architecture in {patience} draws"
        )


@hookimpl
def nasx_register_searchers(register):
    register(RandomSearch)
