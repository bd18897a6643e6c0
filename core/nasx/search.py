"""Running a search: budgets, the context a searcher works through, and the result it leaves."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import networkx as nx
import numpy as np

from nasx.errors import BudgetExhausted, NasxError
from nasx.evaluator import Evaluation, Evaluator
from nasx.interfaces import Combiner, Constraint, Cost, EnumerableSpace, Searcher

if TYPE_CHECKING:  # pragma: no cover
    from nasx.latency import LatencyMeasurement, LatencyMeter
    from nasx.objectives import Objective

#: how many draws may be rejected by the constraints before we conclude nothing is feasible.
MAX_INFEASIBLE_DRAWS = 10_000
#: of those, how many distinct architectures whose latency had to be measured (each costs a network build and
#: timed runs): a latency limit that no drawn architecture meets is reported after this many.
MAX_INFEASIBLE_MEASURED = 200


@dataclass(frozen=True)
class Budget:
    """Limits of a search. Any of them may be None (no limit); at least one must be set.

    ``max_evals``: distinct architectures scored. ``max_time``: recorded compute seconds of those scores (a replay
    from the cache is charged the time the scores took when computed). ``max_wall``: wall-clock seconds.
    """

    max_evals: int | None = None
    max_time: float | None = None
    max_wall: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_evals", "max_time", "max_wall"):
            value = getattr(self, name)
            option = "--" + name.replace("_", "-")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise NasxError(f"{option} must be a number, got {value!r}")
            if name == "max_evals" and not isinstance(value, int):
                raise NasxError(f"{option} must be a whole number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise NasxError(f"{option} must be positive and finite, got {value}")
        if self.max_evals is None and self.max_time is None and self.max_wall is None:
            raise NasxError("a search needs a budget: --max-evals, --max-time or --max-wall")


class SearchContext:
    """Everything a searcher may use: the space, feasibility, evaluation under budget, fitness, and the
    objectives of a search with several.

    Fitness is the combiner's output over the whole explored set, so it is recomputed as the set grows.
    ``objectives`` (default: the fitness alone) are what a multi-objective searcher trades off; ``latency``
    measures candidates' latencies (in this process, before they are scored) for latency constraints and
    objectives.
    """

    def __init__(
        self,
        space,
        evaluator: Evaluator,
        combiner: Combiner,
        constraints: Sequence[Constraint],
        budget: Budget,
        seed: int,
        on_evaluation: Callable[["SearchContext", Evaluation], None] | None = None,
        objectives: "Sequence[Objective]" = (),
        latency: "LatencyMeter | None" = None,
    ) -> None:
        from nasx.objectives import FITNESS, needs_latency

        self.space = space
        self.evaluator = evaluator
        self.combiner = combiner
        self.constraints = list(constraints)
        self.objectives: "list[Objective]" = list(objectives) or [FITNESS]
        self.latency = latency
        if latency is None and (any(c.needs_latency for c in self.constraints) or needs_latency(self.objectives)):
            raise NasxError("a latency constraint or objective needs a latency meter (SearchContext(latency=...))")
        self._cheap = [c for c in self.constraints if not c.needs_latency]
        self._measured = [c for c in self.constraints if c.needs_latency]
        self._measure_before_scoring = latency is not None and needs_latency(self.objectives)
        self.budget = budget
        self.rng = random.Random(seed)
        self.on_evaluation = on_evaluation
        self.explored: dict[str, Evaluation] = {}
        self.genotypes: dict[str, nx.DiGraph] = {}
        self.compute_seconds = 0.0
        self.started = time.perf_counter()
        self.stop_reason = ""
        self._fitness: dict[str, float] | None = None
        self._objective_table: dict[str, tuple[float, ...]] | None = None
        self._costs: dict[str, Cost] = {}
        self._feasible_count: int | None = None
        self._directions = [p.higher_is_better for p in evaluator.proxies]

    # feasibility -------------------------------------------------------------------------------
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """The genotype's cost; with a latency meter, its measured latency too (measured now if it was not)."""
        cost = self.space.cost(genotype)
        if self.latency is None:
            return cost
        return Cost(cost.flops_m, cost.params_m, self.latency.latency(genotype).median_ms)

    def latency_of(self, genotype: nx.DiGraph) -> "LatencyMeasurement | None":
        """The measured latency of a genotype (with its spread), or None without a latency meter."""
        return None if self.latency is None else self.latency.latency(genotype)

    def is_feasible(self, genotype: nx.DiGraph) -> bool:
        """True when every constraint allows the genotype. Constraints on costs are decided first; only a
        genotype they all allow has its latency measured for a latency constraint."""
        if not self.constraints:
            return True
        cost = self.space.cost(genotype)
        if not all(c.is_feasible(cost) for c in self._cheap):
            return False
        if not self._measured:
            return True
        measured = Cost(cost.flops_m, cost.params_m, self.latency.latency(genotype).median_ms)
        return all(c.is_feasible(measured) for c in self._measured)

    def feasible(self, make: Callable[[], nx.DiGraph]) -> nx.DiGraph:
        """Call ``make`` until it returns a feasible genotype."""
        measured_before = self.latency.measured if self.latency is not None else 0
        for draw in range(1, MAX_INFEASIBLE_DRAWS + 1):
            genotype = make()
            if self.is_feasible(genotype):
                return genotype
            if self.latency is not None and self.latency.measured - measured_before >= MAX_INFEASIBLE_MEASURED:
                break
        limits = ", ".join(c.describe() for c in self.constraints)
        if self._measured:
            limits += f", measured with {self.latency.describe()}"
        raise NasxError(f"no feasible architecture in {draw} draws under {limits}; loosen the limits")

    def sample(self) -> nx.DiGraph:
        """A uniformly drawn feasible genotype."""
        return self.feasible(lambda: self.space.sample(self.rng))

    # evaluation ---------------------------------------------------------------------------------
    def wall_seconds(self) -> float:
        return time.perf_counter() - self.started

    def exhausted(self, extra_seconds: float = 0.0) -> str:
        """The name of the budget that is spent, or '' while evaluations may continue (``extra_seconds``: compute
        time of scores not yet recorded)."""
        b = self.budget
        if b.max_evals is not None and len(self.explored) >= b.max_evals:
            return "max-evals"
        if b.max_time is not None and self.compute_seconds + extra_seconds >= b.max_time:
            return "max-time"
        if b.max_wall is not None and self.wall_seconds() >= b.max_wall:
            return "max-wall"
        if self.explored_everything():
            return "space exhausted"
        return ""

    def evaluate(self, genotype: nx.DiGraph) -> Evaluation:
        """Scores of a genotype; a genotype already explored is never scored twice.

        Raises BudgetExhausted when a new genotype would exceed the budget.
        """
        return self.evaluate_many([genotype])[0]

    def evaluate_many(self, genotypes: Sequence[nx.DiGraph]) -> list[Evaluation]:
        """Scores of several genotypes, in their order, computed concurrently by the evaluator's executor.

        Genotypes already explored, or repeated in the list, are scored once. New ones are recorded in the list's
        order, whatever order they finish in, so a search takes the same decisions with any executor. The budget
        holds: never more than ``max_evals``; with a time budget no genotype is started once it is spent. When
        the budget stops the list short, what it allowed is recorded and BudgetExhausted is raised.
        """
        keys = [self.space.key(g) for g in genotypes]
        fresh: dict[str, nx.DiGraph] = {}
        for key, genotype in zip(keys, genotypes):
            if key not in self.explored and key not in fresh:
                fresh[key] = genotype
        if fresh:
            reason = self.exhausted()
            if reason:
                self.stop_reason = reason
                raise BudgetExhausted(reason)
            allowed = list(fresh.items())
            left = self.evals_left()
            if left is not None:
                allowed = allowed[:left]
            if self._measure_before_scoring:  # a latency objective: measured here, before any proxy scores
                for _, genotype in allowed:
                    self.latency.latency(genotype)
            results = self.evaluator.evaluate_many(
                [g for _, g in allowed], keep_going=lambda spent: not self.exhausted(extra_seconds=spent))
            for (key, genotype), evaluation in zip(allowed, results):
                if evaluation is None:
                    break
                self._record(key, genotype, evaluation)
            if any(key not in self.explored for key in fresh):
                reason = self.exhausted() or "max-evals"
                self.stop_reason = reason
                raise BudgetExhausted(reason)
        return [self.explored[key] for key in keys]

    def evals_left(self) -> int | None:
        """How many more architectures ``max_evals`` lets be scored; None without that budget."""
        if self.budget.max_evals is None:
            return None
        return max(0, self.budget.max_evals - len(self.explored))

    def evaluate_is_new(self, genotype: nx.DiGraph) -> bool:
        """Evaluate a genotype; True when it had not been explored before."""
        before = len(self.explored)
        self.evaluate(genotype)
        return len(self.explored) > before

    def _record(self, key: str, genotype: nx.DiGraph, evaluation: Evaluation) -> None:
        self.explored[key] = evaluation
        self.genotypes[key] = genotype
        self.compute_seconds += evaluation.compute_seconds
        self._fitness = None
        self._objective_table = None
        if self.on_evaluation is not None:
            self.on_evaluation(self, evaluation)

    def explored_everything(self) -> bool:
        """True once every feasible architecture of an enumerable space has been scored. Under a latency
        constraint, the architectures that the other constraints allow are counted (measuring every latency of
        the space to know the exact number would cost more than a search)."""
        if not isinstance(self.space, EnumerableSpace):
            return False
        if self._feasible_count is None and not self._cheap:
            self._feasible_count = len(self.space)  # no constraint: no need to cost every architecture
        if self._feasible_count is None:
            def allowed(genotype: nx.DiGraph) -> bool:
                cost = self.space.cost(genotype)
                return all(c.is_feasible(cost) for c in self._cheap)

            self._feasible_count = sum(1 for i in range(len(self.space)) if allowed(self.space.genotype_at(i)))
        return len(self.explored) >= self._feasible_count

    # fitness ------------------------------------------------------------------------------------
    def fitness_table(self) -> dict[str, float]:
        """Fitness of every explored genotype, by key (higher is better)."""
        if self._fitness is None:
            keys = list(self.explored)
            matrix = np.array([list(self.explored[k].scores.values()) for k in keys], dtype=float)
            values = self.combiner.combine(matrix.reshape(len(keys), len(self._directions)), self._directions)
            self._fitness = dict(zip(keys, (float(v) for v in values)))
        return self._fitness

    def fitness(self, genotype: nx.DiGraph) -> float:
        return self.fitness_table()[self.space.key(genotype)]

    def rank(self, genotypes: Sequence[nx.DiGraph]) -> list[nx.DiGraph]:
        """Explored genotypes from best to worst fitness; ties keep their given order."""
        table = self.fitness_table()
        order = sorted(range(len(genotypes)), key=lambda i: -table[self.space.key(genotypes[i])])
        return [genotypes[i] for i in order]

    def best_key(self) -> str | None:
        """Key of the best explored genotype (the first explored among equals)."""
        table = self.fitness_table()
        return max(table, key=table.__getitem__) if table else None

    # objectives ---------------------------------------------------------------------------------
    def objective_values(self, genotype: nx.DiGraph) -> tuple[float, ...]:
        """The raw values of the objectives for an explored genotype, in ``objectives``' order (fitness as
        ``fitness`` gives it; costs in their units, latency in milliseconds)."""
        return self._objective_values(self.space.key(genotype), genotype)

    def _objective_values(self, key: str, genotype: nx.DiGraph) -> tuple[float, ...]:
        cost = None
        if any(o.kind == "cost" for o in self.objectives):
            if key not in self._costs:  # a cost never changes: computed (or measured) once per genotype
                self._costs[key] = self.cost(genotype)
            cost = self._costs[key]
        return tuple(o.value(cost, self.explored[key].scores, self.fitness_table()[key]) for o in self.objectives)

    def objective_table(self) -> dict[str, tuple[float, ...]]:
        """Every explored genotype's objective values, by key, each turned so that **higher is better** (a
        minimised objective negated) and a NaN the worst value (-inf): what Pareto dominance compares."""
        if self._objective_table is None:  # recomputed once per new evaluation, as the fitness is
            self._objective_table = {
                key: tuple(o.oriented(v) for o, v in zip(self.objectives, self._objective_values(key, genotype)))
                for key, genotype in self.genotypes.items()}
        return self._objective_table

    def pareto_rank(self, genotypes: Sequence[nx.DiGraph]) -> list[nx.DiGraph]:
        """Explored genotypes from best to worst by the objectives: Pareto rank within the given ones, then
        crowding distance (NSGA-II's crowded comparison); ties keep their given order. With the fitness as the
        only objective, this is ``rank``'s order up to ties."""
        from nasx.pareto import pareto_order

        table = self.objective_table()
        return [genotypes[i] for i in pareto_order([table[self.space.key(g)] for g in genotypes])]


@dataclass
class SearchResult:
    arch: str
    key: str
    scores: dict[str, float]
    fitness: float
    cost: Cost
    evaluated: int
    wall_seconds: float
    compute_seconds: float
    stop_reason: str
    history: list[Evaluation]


def run_search(searcher: Searcher, context: SearchContext) -> SearchResult:
    """Run ``searcher`` until it returns or the budget ends; the result is the best explored genotype."""
    if not isinstance(context.space, searcher.requires):
        raise NasxError(
            f"searcher '{searcher.name}' needs a {searcher.requires.__name__}; space '{context.space.name}' is not one"
        )
    try:
        searcher.search(context)
        context.stop_reason = context.stop_reason or "searcher finished"
    except BudgetExhausted as stop:
        context.stop_reason = str(stop)
    best = context.best_key()
    if best is None:
        raise NasxError("the search ended before any architecture was scored")
    genotype = context.genotypes[best]
    evaluation = context.explored[best]
    return SearchResult(
        arch=evaluation.arch,
        key=best,
        scores=dict(evaluation.scores),
        fitness=context.fitness_table()[best],
        cost=context.space.cost(genotype),
        evaluated=len(context.explored),
        wall_seconds=context.wall_seconds(),
        compute_seconds=context.compute_seconds,
        stop_reason=context.stop_reason,
        history=list(context.explored.values()),
    )


def draw_new(
    context: SearchContext, count: int, patience: int, stalled: int = 0
) -> tuple[list[nx.DiGraph], int]:
    """Up to ``count`` distinct random feasible genotypes not explored before, scored together (concurrently) in
    the order drawn; drawing stops early once ``patience`` draws in a row (counting ``stalled`` earlier ones) were
    already explored. Returns them and that run of stale draws. The draws are those of drawing and scoring one at
    a time, so the result does not depend on the executor. No more are drawn than ``max_evals`` lets be scored:
    a draw beyond it would be wasted, and under a latency constraint each costs a measurement."""
    left = context.evals_left()
    cut_by_budget = left is not None and left < count
    if cut_by_budget:
        count = left
    drawn: dict[str, nx.DiGraph] = {}
    while len(drawn) < count and stalled < patience:
        genotype = context.sample()
        key = context.space.key(genotype)
        if key in context.explored or key in drawn:
            stalled += 1
        else:
            drawn[key] = genotype
            stalled = 0
    context.evaluate_many(list(drawn.values()))
    if cut_by_budget and len(drawn) == count:  # as scoring the whole draw would have ended the search
        context.stop_reason = "max-evals"
        raise BudgetExhausted("max-evals")
    return list(drawn.values()), stalled
