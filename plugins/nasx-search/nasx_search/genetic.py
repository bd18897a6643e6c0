"""The rank-based paper's genetic algorithm and simulated annealing (used there with the ``rank`` combiner
over ni + naswot + logsynflow: "GA-rk" and "SA-rk")."""

from __future__ import annotations

import math

from nasx.interfaces import EvolvableSpace, Searcher
from nasx.options import in_range, positive, probability
from nasx.search import SearchContext, draw_new


class GeneticAlgorithm(Searcher):
    """Generational GA with elitism. Each generation makes ``population_size`` children: two parents chosen by
    tournaments of ``tournament_size``; with probability ``crossover_rate`` the child is their uniform crossover,
    else a copy of the first parent; with probability ``mutation_rate`` one gene is then mutated. Parents and
    children compete: the best ``population_size`` form the next generation."""

    name = "ga"
    summary = "Genetic algorithm: tournament selection, uniform crossover, one-gene mutation, elitist survival"
    requires = EvolvableSpace
    defaults = {"population_size": 20, "tournament_size": 2, "crossover_rate": 0.9, "mutation_rate": 0.5,
                "patience": 50}
    option_checks = {"population_size": positive, "tournament_size": positive, "crossover_rate": probability,
                     "mutation_rate": probability, "patience": positive}

    def search(self, context: SearchContext) -> None:
        space, rng = context.space, context.rng
        size, patience = self.options["population_size"], self.options["patience"]
        population, stalled = draw_new(context, size, patience)
        while stalled < patience:
            # a generation's children are made from the parents alone, so they are scored together
            children = [context.feasible(lambda: self._child(space, rng, context, population)) for _ in range(size)]
            before = len(context.explored)
            context.evaluate_many(children)
            stalled = 0 if len(context.explored) > before else stalled + 1
            merged = {space.key(g): g for g in [*population, *children]}
            population = context.rank(list(merged.values()))[:size]
        context.stop_reason = f"no new architecture in {patience} generations"

    def _child(self, space, rng, context, population):
        first, second = (self._tournament(rng, context, population) for _ in range(2))
        child = space.crossover(first, second, rng) if rng.random() < self.options["crossover_rate"] else first
        if rng.random() < self.options["mutation_rate"]:
            child = space.mutate(child, rng)
        return child

    def _tournament(self, rng, context, population):
        entrants = rng.sample(population, min(self.options["tournament_size"], len(population)))
        return context.rank(entrants)[0]


class SimulatedAnnealing(Searcher):
    """From a random architecture, propose a one-gene mutation each step; accept it when it is better, or with
    probability exp(delta / T) when it is worse, delta the change of fitness divided by the fitness range of the
    explored set (so T does not depend on the combiner's scale). T starts at ``initial_temperature`` and is
    multiplied by ``cooling`` each step, down to ``final_temperature``. After ``patience`` steps that explore
    nothing new (every neighbour of a cold walk already scored), the walk restarts hot from a new random
    architecture, so the budget is not left unspent; with ``restart`` off it stops there instead."""

    name = "sa"
    summary = "Simulated annealing: one-gene moves, Metropolis acceptance, geometric cooling, random restarts"
    requires = EvolvableSpace
    defaults = {"initial_temperature": 0.1, "cooling": 0.97, "final_temperature": 0.001, "patience": 200,
                "restart": True}
    # the temperatures divide the fitness change, so neither may be 0; cooling 0 drops at once to the final one
    option_checks = {"initial_temperature": positive, "cooling": in_range(0, 1), "final_temperature": positive,
                     "patience": positive}

    def search(self, context: SearchContext) -> None:
        patience = self.options["patience"]
        started, stalled = draw_new(context, 1, patience)
        while started:
            self._walk(context, started[0])
            if not self.options["restart"]:
                break
            started, stalled = draw_new(context, 1, patience)
        context.stop_reason = f"no new architecture in {patience} steps"

    def _walk(self, context: SearchContext, current) -> None:
        """One annealing walk from ``current`` (already scored) until ``patience`` steps find nothing new."""
        space, rng = context.space, context.rng
        temperature, stalled = self.options["initial_temperature"], 0
        while stalled < self.options["patience"]:
            candidate = context.feasible(lambda: space.mutate(current, rng))
            stalled = 0 if context.evaluate_is_new(candidate) else stalled + 1
            table = context.fitness_table()
            spread = (max(table.values()) - min(table.values())) or 1.0
            delta = (table[space.key(candidate)] - table[space.key(current)]) / spread
            if delta >= 0 or rng.random() < math.exp(delta / temperature):
                current = candidate
            temperature = max(self.options["final_temperature"], temperature * self.options["cooling"])
