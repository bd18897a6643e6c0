"""``nasx run``: search a space with the proxies' combined fitness and return the best architecture found."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Sequence

from nasx import jsonio
from nasx._build import DEFAULT_COMBINER, Options, Running, components, expand_proxy_sets, make_evaluator
from nasx.interfaces import EnumerableSpace
from nasx.records import RunResult, evaluation_record
from nasx.settings import ComponentSpec, Execution, Inputs, Limits, check_int

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
) -> RunResult:
    from nasx.progress import SearchProgress
    from nasx.search import SearchContext, run_search

    check_int("--seed", seed)
    chosen = expand_proxy_sets(plugins, proxies)
    combiner = combiner if combiner is not None else chosen.combiner or DEFAULT_COMBINER
    built = components(plugins, space, dataset, chosen.proxies, {"combiner": [combiner], "searcher": [search]},
                       options, inputs.data)
    (built_combiner,), (searcher,) = built.others["combiner"], built.others["searcher"]
    constraints = limits.constraints(plugins)
    oracle, no_truth = inputs.ground_truth(built.space)
    with Running(plugins, execution) as running:
        scorer = make_evaluator(built.space, built.proxies, inputs, running.device, running.executor)
        bar = SearchProgress(budget, enabled=progress)
        context = SearchContext(built.space, scorer, built_combiner, constraints, budget, seed=seed,
                                on_evaluation=bar.on_evaluation)
        try:
            with bar:
                found = run_search(searcher, context)
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
        ground_truth=oracle.source if oracle is not None else None,
        warnings=never_finite(found.history, [p.name for p in built.proxies]),
        history=[evaluation_record(e) for e in found.history],
    )
    if oracle is not None:
        result.test_accuracy = oracle.test_accuracy(genotype)
        result.ground_truth_metric = oracle.metric
        optimum = oracle.optimum(constraints)
        if optimum is not None:
            result.optimum_arch, result.optimum_accuracy = optimum
            result.regret = result.optimum_accuracy - result.test_accuracy
    else:
        result.no_ground_truth = no_truth
    if out is not None:
        jsonio.write(out, result.to_dict(), indent=2)
    return result


def never_finite(history, proxies: Sequence[str]) -> list[str]:
    """A warning for each proxy that scored no explored architecture finitely: it took no part in the choice."""
    return [f"proxy '{name}' gave no finite score on any of the {len(history)} architectures scored: the "
            "result does not depend on it" for name in proxies
            if history and not any(math.isfinite(e.scores[name]) for e in history)]
