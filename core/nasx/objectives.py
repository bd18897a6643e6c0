"""Objectives of a search with several of them, the front it returns, and how close that front comes to the
benchmark's true one. Torch-free: the geometry is :mod:`nasx.pareto`.

An objective is ``fitness`` (the combined proxies, maximised), a proxy the run scores (in its own direction), or a
cost: ``params``, ``flops`` or ``latency`` (minimised). A search with two or more objectives returns the front:
the scored feasible architectures that no other scored one dominates. With ground truth, the front's members are
placed at their true test accuracy and costs, and the hypervolume they dominate is compared with that of the
benchmark's own accuracy-cost front (every feasible architecture of the space), from the same reference point:
the worst accuracy among the true front's members and, for each cost, the largest cost of the space's feasible
architectures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import networkx as nx

from nasx.errors import NasxError
from nasx.interfaces import Cost, EnumerableSpace

if TYPE_CHECKING:  # pragma: no cover
    from nasx.interfaces import Constraint, Oracle, Proxy, Space

#: cost objectives (minimised) -> the Cost field that holds them
COSTS = {"params": "params_m", "flops": "flops_m", "latency": "latency_ms"}
#: a space with more architectures than this gets no true front (it would be built from every architecture)
MAX_TRUE_FRONT_SPACE = 100_000


@dataclass(frozen=True)
class Objective:
    """One objective: its name, whether it is maximised, and what it is (``fitness``, ``proxy`` or ``cost``)."""

    name: str
    maximise: bool
    kind: str

    def value(self, cost: Cost, scores: dict[str, float], fitness: float) -> float:
        if self.kind == "fitness":
            return fitness
        if self.kind == "proxy":
            return scores[self.name]
        value = getattr(cost, COSTS[self.name])
        return math.nan if value is None else float(value)

    def oriented(self, value: float) -> float:
        """The value turned so that higher is better; a NaN is the worst value."""
        if math.isnan(value):
            return -math.inf
        return value if self.maximise else -value


FITNESS = Objective("fitness", True, "fitness")


def resolve_objectives(names: Sequence[str], proxies: Sequence["Proxy"], plugins=None) -> list[Objective]:
    """The objectives named (none: a single-objective search on the fitness). One alone is refused: a search on
    the fitness is the default, and a front needs two or more."""
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        return []
    if len(names) == 1:
        raise NasxError(f"--objective {names[0]} alone: a front needs two or more objectives (e.g. --objective "
                        "fitness --objective params); leave --objective out for a search on the fitness")
    by_proxy = {p.name: p for p in proxies}
    objectives = []
    for name in names:
        if not isinstance(name, str):
            raise NasxError(f"an objective is a name, got {name!r}")
        if names.count(name) > 1:
            raise NasxError(f"the objective '{name}' is named twice")
        if name == "fitness":
            objectives.append(FITNESS)
        elif name in COSTS:
            objectives.append(Objective(name, False, "cost"))
        elif name in by_proxy:
            objectives.append(Objective(name, by_proxy[name].higher_is_better, "proxy"))
        elif plugins is not None and plugins.has("proxy", name):
            raise NasxError(f"objective '{name}' is a proxy this search does not score: add --proxy {name}")
        else:
            from nasx.names import unknown_name

            raise unknown_name("objective", name, ["fitness", *COSTS, *by_proxy], context=" (--objective)")
    return objectives


def needs_latency(objectives: Sequence[Objective]) -> bool:
    return any(o.name == "latency" for o in objectives)


# -------------------------------------------------------------------------------------------------------------
# the benchmark's true front, and the hypervolume ratio of a found one


@dataclass
class TrueFront:
    """The benchmark's accuracy-cost front over the space's feasible architectures: for each member its index,
    arch, accuracy and costs (``params_m``, ``flops_m``), the reference point of the hypervolumes (accuracy, then
    ``costs`` in their units) and the front's hypervolume."""

    costs: list[str]
    members: list[dict[str, Any]]
    reference: list[float]
    hypervolume: float


def ground_truth_problem(space: "Space", oracle: "Oracle | None", objectives: Sequence[Objective],
                         constraints: Sequence["Constraint"]) -> str | None:
    """Why a front of these objectives has no hypervolume ratio (a phrase), or None when it can have one."""
    if oracle is None:
        return "no ground truth"
    if not oracle.higher_is_better:
        return "the benchmark's ground truth is a loss, not an accuracy"
    scores = [o for o in objectives if o.kind != "cost"]
    costs = [o for o in objectives if o.kind == "cost"]
    if len(scores) != 1 or not 1 <= len(costs) <= 2:
        return ("it is defined for one score (fitness or a proxy) against one or two costs (the score's place "
                "taken by the true accuracy)")
    if any(o.name == "latency" for o in costs) or any(c.needs_latency for c in constraints):
        return "the true front would need the latency of every architecture of the space"
    if not isinstance(space, EnumerableSpace):
        return f"space '{space.name}' cannot be enumerated, so its true front is unknown"
    if len(space) > MAX_TRUE_FRONT_SPACE:
        return f"space '{space.name}' has {len(space)} architectures; the true front is built for at most " \
               f"{MAX_TRUE_FRONT_SPACE}"
    return None


def true_front(space: "EnumerableSpace", oracle: "Oracle", cost_names: Sequence[str],
               constraints: Sequence["Constraint"]) -> TrueFront:
    """The non-dominated (accuracy up, costs down) feasible architectures of the whole space: from the oracle's
    table when it has one (``Oracle.records``), else from every genotype of the space."""
    from nasx.pareto import hypervolume, non_dominated

    records = oracle.records()
    if records is None:
        records = ((space.encode(g), oracle.test_accuracy(g), space.cost(g))
                   for g in (space.genotype_at(i) for i in range(len(space))))
    archs, points = [], []
    for arch, accuracy, cost in records:
        if constraints and not all(c.is_feasible(cost) for c in constraints):
            continue
        archs.append(arch)
        points.append((accuracy, *(-getattr(cost, COSTS[n]) for n in cost_names)))
    if not points:
        raise NasxError("no architecture of the space meets the constraints")
    front = non_dominated(points)
    # The floor of accuracy is the true front's worst member (its nadir), not 0: from 0 most of the volume lies
    # under every front and the ratio cannot tell searches apart (a random search's came to 0.99 of the true one).
    floor = min(points[i][0] for i in front)
    if floor == max(points[i][0] for i in front):  # one accuracy on the whole front: no area above it
        floor = 0.0
    reference = [floor, *(min(p[1 + i] for p in points) for i in range(len(cost_names)))]
    members = [{"index": space.index_of(space.decode(archs[i])), "arch": archs[i], "test_accuracy": points[i][0],
                **{COSTS[n]: -points[i][1 + k] for k, n in enumerate(cost_names)}} for i in front]
    members.sort(key=lambda m: [m[COSTS[n]] for n in cost_names])
    return TrueFront(list(cost_names), members, [reference[0], *(-r for r in reference[1:])],
                     hypervolume([points[i] for i in front], reference))


def hypervolume_of(members: Sequence[dict[str, Any]], front: TrueFront) -> float:
    """The hypervolume that ``members`` (records with ``test_accuracy`` and the front's costs, ``params_m`` ...)
    dominate, from the true front's reference point."""
    from nasx.pareto import hypervolume

    reference = [front.reference[0], *(-r for r in front.reference[1:])]
    points = [(m["test_accuracy"], *(-m[COSTS[n]] for n in front.costs)) for m in members]
    return hypervolume(points, reference)


def oriented_points(values: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> list[tuple[float, ...]]:
    """Raw objective values turned so that every coordinate is maximised (NaN the worst)."""
    return [tuple(o.oriented(v) for o, v in zip(objectives, row)) for row in values]


def front_of(genotypes: Sequence[nx.DiGraph], values: Sequence[Sequence[float]],
             objectives: Sequence[Objective]) -> list[int]:
    """Positions of the non-dominated genotypes among those whose objective values are all finite."""
    from nasx.pareto import non_dominated

    finite = [i for i, row in enumerate(values) if all(math.isfinite(v) for v in row)]
    kept = non_dominated(oriented_points([values[i] for i in finite], objectives))
    return [finite[i] for i in kept]
