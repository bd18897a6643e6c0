"""Evolutionary searchers: FreeREA (Cavagnero et al., 2023), its multi-objective form, and classic aging evolution
(REA, Real et al., 2019)."""

from __future__ import annotations

from collections import deque

from nasx.interfaces import EvolvableSpace, Searcher
from nasx.options import positive
from nasx.search import SearchContext, draw_new


class FreeREA(Searcher):
    """Each step samples ``sample_size`` members; the best two are parents; each is mutated once and one child is
    their uniform crossover (infeasible children are drawn again). The oldest member is removed and the best
    ``population_size`` are kept. Stops after ``patience`` steps that explore nothing new."""

    name = "freerea"
    summary = "FreeREA: aging tournament, 2 parents, 2 mutants + 1 crossover child, keep the best N"
    requires = EvolvableSpace
    defaults = {"population_size": 25, "sample_size": 5, "patience": 200}
    option_checks = {"population_size": positive, "sample_size": positive, "patience": positive}

    def search(self, context: SearchContext) -> None:
        space, rng = context.space, context.rng
        size, tournament, patience = (self.options[k] for k in ("population_size", "sample_size", "patience"))
        initial, stalled = draw_new(context, size, patience)
        # key -> [genotype, birth step]; insertion order breaks age ties
        population: dict[str, list] = {space.key(g): [g, 0] for g in initial}
        step = 0
        while stalled < patience:
            step += 1
            members = [entry[0] for entry in population.values()]
            sampled = rng.sample(members, min(tournament, len(members)))
            parents = self.order(context, sampled)[:2]
            children = [context.feasible(lambda p=p: space.mutate(p, rng)) for p in parents]
            if len(parents) == 2:
                children.append(context.feasible(lambda: space.crossover(parents[0], parents[1], rng)))
            before = len(context.explored)
            context.evaluate_many(children)
            new = len(context.explored) > before
            for child in children:
                key = space.key(child)
                if key in population:
                    population[key][1] = step  # seen again: it is young again, as in FreeREA
                else:
                    population[key] = [child, step]
            stalled = 0 if new else stalled + 1
            if len(population) > size:
                oldest = min(population, key=lambda k: population[k][1])
                del population[oldest]
                ranked = self.order(context, [entry[0] for entry in population.values()])
                keep = {space.key(g) for g in ranked[:size]}
                population = {k: v for k, v in population.items() if k in keep}
        context.stop_reason = f"no new architecture in {patience} steps"

    def order(self, context: SearchContext, genotypes: list) -> list:
        """Explored genotypes from best to worst: by fitness."""
        return context.rank(genotypes)


class MultiObjectiveFreeREA(FreeREA):
    """FreeREA's loop with Pareto rank, then crowding distance (NSGA-II's crowded comparison, within the set
    compared), in place of the fitness: the tournament's two best are its least dominated, least crowded members,
    and the population keeps the best ``population_size`` by that order. With the fitness as the only objective
    it is FreeREA."""

    name = "mo-freerea"
    summary = "FreeREA's aging evolution on the objectives: Pareto rank, then crowding distance, instead of fitness"

    def order(self, context: SearchContext, genotypes: list) -> list:
        return context.pareto_rank(genotypes)


class RegularizedEvolution(Searcher):
    """Aging evolution: the best of ``sample_size`` sampled members is mutated once; the child joins the
    population and the oldest member leaves (FreeREA without crossover and elitism: "FreeREA-")."""

    name = "rea"
    summary = "Regularized (aging) evolution: one parent, one mutant per step, the oldest dies"
    requires = EvolvableSpace
    defaults = {"population_size": 25, "sample_size": 5, "patience": 200}
    option_checks = {"population_size": positive, "sample_size": positive, "patience": positive}

    def search(self, context: SearchContext) -> None:
        size = self.options["population_size"]
        population: deque = deque()
        stalled, seen = 0, set(context.explored)
        while len(population) < size and stalled < self.options["patience"]:
            genotype = context.sample()
            key = context.space.key(genotype)
            stalled = 0 if key not in seen else stalled + 1
            seen.add(key)
            population.append(genotype)
        context.evaluate_many(list(population))
        self.evolve(context, population, stalled)

    def evolve(self, context: SearchContext, population: deque, stalled: int) -> None:
        """Aging evolution from ``population`` (oldest first) until the budget ends or ``patience`` steps in a
        row (counting the ``stalled`` ones before) explore nothing new."""
        space, rng = context.space, context.rng
        tournament, patience = self.options["sample_size"], self.options["patience"]
        while stalled < patience:
            parent = context.rank(rng.sample(list(population), min(tournament, len(population))))[0]
            child = context.feasible(lambda: space.mutate(parent, rng))
            stalled = 0 if context.evaluate_is_new(child) else stalled + 1
            population.append(child)
            population.popleft()
        context.stop_reason = f"no new architecture in {patience} steps"


class AssistedREA(RegularizedEvolution):
    """NASWOT's Assisted-REA: score ``2 * population_size`` random architectures, start aging evolution from the
    best ``population_size`` of them. In NASWOT the evolution then trains networks; here it keeps using the
    proxies' fitness, so the whole search stays training-free. Defaults are NAS-Bench-201's REA settings."""

    name = "area"
    summary = "Assisted REA (NASWOT): best P of 2P random architectures start an aging evolution"
    defaults = {"population_size": 10, "sample_size": 3, "patience": 200}

    def search(self, context: SearchContext) -> None:
        size = self.options["population_size"]
        candidates, stalled = draw_new(context, 2 * size, self.options["patience"])
        best = context.rank(candidates)[:size]
        self.evolve(context, deque(reversed(best)), stalled)  # the best member is the youngest
