"""NSGA-II (Deb, Pratap, Agarwal and Meyarivan, 2002) over a space's genetic operators, on the search's objectives."""

from __future__ import annotations

from nasx.interfaces import EvolvableSpace, Searcher
from nasx.options import non_negative, positive, probability
from nasx.pareto import crowding_distance, non_dominated_sort
from nasx.search import SearchContext, draw_new


class NSGA2(Searcher):
    """NSGA-II. A population of ``population_size`` random feasible architectures; each generation makes as many
    children: two parents by binary tournaments (the lower Pareto rank wins, then the larger crowding distance,
    then the first drawn), with probability ``crossover_rate`` the child is their crossover, else a copy of the
    first, then with probability ``mutation_rate`` one gene is mutated (a child that is an explored architecture
    costs no budget). Parents and children together are sorted into non-dominated fronts; whole fronts fill the
    next population and the last one that fits only in part gives its least crowded members. Ranks and crowding
    are computed on the objectives the context gives (``context.objective_table()``), so with the fitness alone
    this is an elitist genetic algorithm. Stops after ``generations`` generations (0: when the budget ends) or
    ``patience`` generations that explore nothing new."""

    name = "nsga2"
    summary = "NSGA-II: non-dominated sorting, crowding distance, binary tournaments, crossover and mutation"
    requires = EvolvableSpace
    defaults = {"population_size": 20, "generations": 0, "crossover_rate": 0.9, "mutation_rate": 0.5,
                "patience": 20}
    option_checks = {"population_size": positive, "generations": non_negative, "crossover_rate": probability,
                     "mutation_rate": probability, "patience": positive}

    def search(self, context: SearchContext) -> None:
        space = context.space
        size, patience = self.options["population_size"], self.options["patience"]
        population, stalled = draw_new(context, size, patience)
        rank, crowding = self.rank_and_crowding(context, population)
        generation = 0
        while stalled < patience and (not self.options["generations"] or generation < self.options["generations"]):
            generation += 1
            children = [context.feasible(lambda: self.child(context, population, rank, crowding))
                        for _ in range(size)]
            before = len(context.explored)
            context.evaluate_many(children)
            stalled = 0 if len(context.explored) > before else stalled + 1
            merged = list({space.key(g): g for g in [*population, *children]}.values())
            population = self.survivors(context, merged, size)
            rank, crowding = self.rank_and_crowding(context, population)
        context.stop_reason = (f"{generation} generations" if stalled < patience
                               else f"no new architecture in {patience} generations")

    def child(self, context: SearchContext, population, rank, crowding):
        space, rng = context.space, context.rng
        first = self.tournament(rng, population, rank, crowding)
        if rng.random() < self.options["crossover_rate"]:
            child = space.crossover(first, self.tournament(rng, population, rank, crowding), rng)
        else:
            child = first
        if rng.random() < self.options["mutation_rate"]:
            child = space.mutate(child, rng)
        return child

    @staticmethod
    def tournament(rng, population, rank, crowding):
        """Binary tournament by NSGA-II's crowded comparison: lower rank, then larger crowding distance."""
        if len(population) == 1:
            return population[0]
        a, b = rng.sample(range(len(population)), 2)
        if (rank[b], -crowding[b]) < (rank[a], -crowding[a]):
            return population[b]
        return population[a]

    @staticmethod
    def rank_and_crowding(context: SearchContext, population) -> tuple[list[int], list[float]]:
        """Each member's non-domination rank (0 = the first front) and crowding distance within its front."""
        table = context.objective_table()
        points = [table[context.space.key(g)] for g in population]
        rank, crowding = [0] * len(population), [0.0] * len(population)
        for number, front in enumerate(non_dominated_sort(points)):
            for member, distance in zip(front, crowding_distance(points, front)):
                rank[member], crowding[member] = number, distance
        return rank, crowding

    @staticmethod
    def survivors(context: SearchContext, candidates, size: int):
        """The next population: whole fronts while they fit, then the least crowded of the front that does not."""
        table = context.objective_table()
        points = [table[context.space.key(g)] for g in candidates]
        chosen: list[int] = []
        for front in non_dominated_sort(points):
            if len(chosen) + len(front) <= size:
                chosen.extend(front)
                continue
            distance = crowding_distance(points, front)
            by_crowding = sorted(range(len(front)), key=lambda p: -distance[p])  # stable: ties keep front order
            chosen.extend(front[p] for p in by_crowding[: size - len(chosen)])
            break
        return [candidates[i] for i in chosen]
