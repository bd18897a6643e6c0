"""``nasx correlate``: how well each proxy, and each combination of them, ranks architectures by their ground
truth."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from nasx import jsonio
from nasx._build import Options, Running, as_specs, components, expand_proxy_sets, make_evaluator
from nasx._score import scored_in_order
from nasx.errors import NasxError
from nasx.settings import ComponentSpec, Execution, Inputs, check_int

if TYPE_CHECKING:  # pragma: no cover
    from nasx.plugins import Plugins

OUTPUT_SUFFIXES = (".json", ".csv")


def correlate_command(
    plugins: "Plugins",
    space: ComponentSpec,
    dataset: str | None,
    proxies: Sequence[ComponentSpec],
    combiners: Sequence[ComponentSpec],
    sample: int,
    seed: int,
    bootstrap: int,
    cells: str | None,
    inputs: Inputs,
    execution: Execution,
    options: Options,
    out: Sequence[str | os.PathLike],
    plot: str | os.PathLike | None,
    progress: bool,
) -> dict[str, Any]:
    import numpy as np

    from nasx.correlation import correlate as measure, correlation_sample, subset_test, write_correlation

    chosen_proxies = expand_proxy_sets(plugins, proxies)
    combiners = as_specs(combiners) or ([chosen_proxies.combiner] if chosen_proxies.combiner else [])
    built = components(plugins, space, dataset, chosen_proxies.proxies, {"combiner": combiners}, options,
                       inputs.data)
    built_combiners = built.others["combiner"]
    if built_combiners and len(built.proxies) < 2:
        raise NasxError("combining needs at least two --proxy")
    for path in out:  # checked before any scoring, so a typo costs nothing
        if Path(path).suffix not in OUTPUT_SUFFIXES:
            raise NasxError(f"--out {path}: use a .json or .csv file name")
    check_int("--sample", sample, 0, " (0: the whole space)")
    check_int("--seed", seed)
    check_int("--bootstrap", bootstrap, 0, " (0: no intervals)")
    keep = subset_test(built.space, cells)
    oracle, no_truth = inputs.ground_truth(built.space)
    if oracle is None:
        raise NasxError(no_truth)
    chosen = correlation_sample(built.space, sample, seed, oracle, keep)
    if not chosen and cells is not None:
        raise NasxError(f"subset '{cells}' of space '{built.space.name}' has no architecture with ground truth")
    accuracy = np.array([oracle.test_accuracy(genotype) for _, genotype in chosen])
    # the measures assume higher is better: ground truth such as a loss is turned round for them
    oriented = accuracy if oracle.higher_is_better else -accuracy
    scores = np.empty((len(chosen), len(built.proxies)))
    seconds = np.empty_like(scores)
    computed = 0
    with Running(plugins, execution) as running:
        scorer = make_evaluator(built.space, built.proxies, inputs, running.device, running.executor,
                                running.batch_archs)
        try:
            stream = scored_in_order(scorer, [g for _, g in chosen], running.executor.capacity, progress)
            for row, (_, evaluation) in enumerate(stream):
                scores[row] = [evaluation.scores[p.name] for p in built.proxies]
                seconds[row] = [evaluation.seconds[p.name] for p in built.proxies]
                computed += not all(evaluation.cached.values())
        finally:
            scorer.close()
        executor_description = running.executor.describe()

    directions = [p.higher_is_better for p in built.proxies]
    columns: list[tuple[str, Any, str]] = []
    for column, proxy in enumerate(built.proxies):
        sign = 1.0 if proxy.higher_is_better else -1.0
        columns.append((proxy.name, sign * scores[:, column], "higher" if proxy.higher_is_better else "lower"))
    mix = "+".join(p.name for p in built.proxies)
    for combiner in built_combiners:
        columns.append((f"{combiner.name}({mix})", combiner.combine(scores, directions), "higher"))

    results = []
    for name, values, direction in columns:
        found = measure(name, values, oriented, resamples=bootstrap, seed=seed)
        entry = found.as_dict()
        entry["direction"] = direction
        entry["non_finite_archs"] = [chosen[i][0] for i in found.non_finite]
        results.append(entry)
    for column, entry in enumerate(results[: len(built.proxies)]):
        entry["median_seconds"] = float(np.median(seconds[:, column])) if len(chosen) else None

    record = jsonio.strict({
        "space": built.space.name,
        "dataset": built.space.dataset,
        "sample": len(chosen),
        "cells": cells or "all",
        "seed": seed,
        "computed": computed,
        "bootstrap": bootstrap,
        "ground_truth": oracle.source,
        "ground_truth_higher_is_better": oracle.higher_is_better,
        "ground_truth_metric": oracle.metric,
        "input": scorer.batch.identity if scorer.batch is not None else None,
        "init": inputs.init_record(),
        "device": scorer.device,
        "executor": executor_description,
        "batch_archs": scorer.batch_archs,
        "options": built.options(),
        "results": results,
        "architectures": [
            {"arch": label, "test_accuracy": float(acc),
             **{p.name: float(scores[row, col]) for col, p in enumerate(built.proxies)},
             **{name: float(values[row]) for name, values, _ in columns[len(built.proxies):]}}
            for row, (label, acc) in enumerate(zip((s[0] for s in chosen), accuracy))
        ],
    })
    for path in out:
        write_correlation(record, path)
    if plot is not None:
        from nasx.plotting import plot_correlation

        plot_correlation(record, os.fspath(plot))
    return record
