"""``nasx run``: search a space with the proxies' combined fitness and return the best architecture found."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Sequence

from nasx import jsonio
from nasx._build import (DEFAULT_COMBINER, Options, Running, components, expand_proxy_sets, make_evaluator,
                          start_workers_early)
from nasx.errors import NasxError
from nasx.interfaces import EnumerableSpace
from nasx.records import RunResult, evaluation_record
from nasx.settings import ComponentSpec, Execution, Inputs, Latency, Limits, check_int

if TYPE_CHECKING:  # pragma: no cover
    from nasx.plugins import Plugins
    from nasx.search import Budget

#: distinct architectures scored when no budget is given
DEFAULT_MAX_EVALS = 100


def budget_or_default(max_evals=None, max_time=None, max_wall=None) -> "Budget":
    """The budget given, or ``DEFAULT_MAX_EVALS`` architectures when none is."""
    from nasx.search import Budget

    if all(value is None for value in (max_evals, max_time, max_wall)):
        max_evals = DEFAULT_MAX_EVALS
    return Budget(max_evals=max_evals, max_time=max_time, max_wall=max_wall)


def run_search_command(
    plugins: "Plugins",
    space: ComponentSpec,
    dataset: str | None,
    proxies: Sequence[ComponentSpec],
    combiner: ComponentSpec | None,
    search: ComponentSpec,
    seed: int,
    budget: "Budget",
    limits: Limits,
    inputs: Inputs,
    execution: Execution,
    options: Options,
    out: str | os.PathLike | None,
    progress: bool,
    objectives: Sequence[str] = (),
    latency: Latency | None = None,
    plot: str | os.PathLike | None = None,
    export: str | os.PathLike | None = None,
) -> RunResult:
    from nasx.objectives import needs_latency, resolve_objectives
    from nasx.progress import SearchProgress
    from nasx.search import SearchContext, run_search

    check_int("--seed", seed)
    start_workers_early(execution)
    chosen = expand_proxy_sets(plugins, proxies)
    combiner = combiner if combiner is not None else chosen.combiner or DEFAULT_COMBINER
    built = components(plugins, space, dataset, chosen.proxies, {"combiner": [combiner], "searcher": [search]},
                       options, inputs.data)
    (built_combiner,), (searcher,) = built.others["combiner"], built.others["searcher"]
    wanted = resolve_objectives(objectives, built.proxies, plugins)
    if plot is not None and not wanted:
        raise NasxError("--plot draws the front of a search with two or more --objective")
    constraints = limits.constraints(plugins)
    measures_latency = needs_latency(wanted) or any(c.needs_latency for c in constraints)
    # the workers start in the background while the benchmark table is read and torch imported here
    with Running(plugins, execution) as running:
        oracle, no_truth = inputs.ground_truth(built.space)
        scorer = make_evaluator(built.space, built.proxies, inputs, running.device, running.executor,
                                running.batch_archs)
        try:
            meter = None
            if measures_latency:
                from nasx.latency import LatencyMeter

                meter = LatencyMeter(built.space, latency or Latency(), scorer.cache, running.device)
            bar = SearchProgress(budget, enabled=progress)
            context = SearchContext(built.space, scorer, built_combiner, constraints, budget, seed=seed,
                                    on_evaluation=bar.on_evaluation, objectives=wanted, latency=meter)
            with bar:
                found = run_search(searcher, context)
            front = front_records(context, oracle) if wanted else []
        finally:
            scorer.close()
        executor_description = running.executor.describe()
    genotype = context.genotypes[found.key]
    result = RunResult(
        space=built.space.name, dataset=built.space.dataset, search=searcher.name,
        proxies=[p.name for p in built.proxies], combiner=built_combiner.name, seed=seed,
        arch=found.arch, genotype=genotype,
        index=built.space.index_of(genotype) if isinstance(built.space, EnumerableSpace) else None,
        scores=found.scores, fitness=found.fitness, flops_m=found.cost.flops_m, params_m=found.cost.params_m,
        evaluated=found.evaluated, wall_seconds=found.wall_seconds, compute_seconds=found.compute_seconds,
        stop_reason=found.stop_reason,
        budget={"max_evals": budget.max_evals, "max_time": budget.max_time, "max_wall": budget.max_wall},
        constraints=limits.as_dict(), options=built.options(),
        input=scorer.batch.identity if scorer.batch is not None else None,
        init=inputs.init_record(), device=scorer.device, executor=executor_description,
        num_classes=built.space.num_classes, input_shape=list(built.space.input_shape),
        **(inputs.data.record() if inputs.data is not None else {}),
        batch_archs=scorer.batch_archs,
        ground_truth=oracle.source if oracle is not None else None,
        warnings=never_finite(found.history, [p.name for p in built.proxies]),
        history=[evaluation_record(e) for e in found.history],
    )
    if oracle is not None:
        result.test_accuracy = oracle.test_accuracy(genotype)
        result.ground_truth_metric = oracle.metric
        if any(c.needs_latency for c in constraints):
            result.warnings.append("no optimum under a latency limit: it would need the latency of every "
                                   "architecture of the space")
        else:
            optimum = oracle.optimum(constraints)
            if optimum is not None:
                result.optimum_arch, result.optimum_accuracy = optimum
                result.regret = result.optimum_accuracy - result.test_accuracy
    else:
        result.no_ground_truth = no_truth
    if meter is not None:
        measurement = context.latency_of(genotype)
        result.latency_ms = measurement.median_ms
        result.latency = {**measurement.as_dict(), **meter.settings.as_dict(), "device": meter.device,
                          "device_name": meter.identity["device_name"], "reference_ms": meter.reference_ms}
        result.latencies_measured = meter.measured
        result.warnings.extend(meter.warnings)
        if running.executor.name != "serial":
            result.warnings.append(
                f"latencies were measured in this process while the {running.executor.name} executor's workers "
                "were alive (between their batches): they may be noisy; measure with --executor serial for the "
                "cleanest figures")
    if wanted:
        add_front(result, built.space, oracle, context.objectives, front, constraints)
    if export is not None:
        from nasx.exporting import export_deployable

        written, problems = export_deployable(plugins, result.arch, built.space, export)
        result.exports = [str(path) for exported in written for path in exported.files]
        result.warnings.extend(problems)
    if out is not None:
        jsonio.write(out, result.to_dict(), indent=2)
    if plot is not None:
        from nasx.plotting import plot_front

        plot_front(result.to_dict(), str(plot))
    return result


def front_records(context, oracle) -> list[dict]:
    """The front of a search with several objectives: the scored feasible architectures (with finite objective
    values) that no other one dominates, each with its objective values, scores, fitness, costs and, with ground
    truth, test accuracy; sorted by the objectives' values, the last objective first."""
    from nasx.objectives import front_of

    space = context.space
    genotypes = [g for g in context.genotypes.values() if context.is_feasible(g)]
    values = [context.objective_values(g) for g in genotypes]
    fitness = context.fitness_table()
    members = []
    for position in front_of(genotypes, values, context.objectives):
        genotype = genotypes[position]
        key = space.key(genotype)
        cost = context.cost(genotype)
        members.append({
            "arch": space.encode(genotype),
            "index": space.index_of(genotype) if isinstance(space, EnumerableSpace) else None,
            "objectives": dict(zip((o.name for o in context.objectives), values[position])),
            "scores": dict(context.explored[key].scores),
            "fitness": fitness[key],
            "flops_m": cost.flops_m, "params_m": cost.params_m, "latency_ms": cost.latency_ms,
            "test_accuracy": oracle.test_accuracy(genotype) if oracle is not None else None,
        })
    names = [o.name for o in context.objectives]
    members.sort(key=lambda m: [m["objectives"][n] for n in reversed(names)])
    return members


def add_front(result: RunResult, space, oracle, objectives, front: list[dict], constraints) -> None:
    """The front, and with ground truth its hypervolume ratio to the benchmark's true front."""
    from nasx.objectives import ground_truth_problem, hypervolume_of, true_front

    result.objectives = [o.name for o in objectives]
    result.front = front
    problem = ground_truth_problem(space, oracle, objectives, constraints)
    if problem is not None:
        result.no_hypervolume = f"no hypervolume ratio: {problem}"
        return
    cost_names = [o.name for o in objectives if o.kind == "cost"]
    truth = true_front(space, oracle, cost_names, constraints)
    found = hypervolume_of(front, truth)
    result.hypervolume_ratio = found / truth.hypervolume if truth.hypervolume > 0 else None
    result.hypervolume = {"found": found, "true": truth.hypervolume, "axes": ["test_accuracy", *cost_names],
                          "reference": dict(zip(["test_accuracy", *cost_names], truth.reference))}
    result.true_front = truth.members


def never_finite(history, proxies: Sequence[str]) -> list[str]:
    """A warning for each proxy that scored no explored architecture finitely: it took no part in the choice."""
    return [f"proxy '{name}' gave no finite score on any of the {len(history)} architectures scored: the "
            "result does not depend on it" for name in proxies
            if history and not any(math.isfinite(e.scores[name]) for e in history)]
