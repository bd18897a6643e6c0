"""``nasx score``, and the scoring stream every command that scores a list of architectures uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

import networkx as nx

from nasx._build import Options, Running, components, expand_proxy_sets, make_evaluator
from nasx.errors import NasxError
from nasx.interfaces import EnumerableSpace
from nasx.records import evaluation_record
from nasx.settings import ComponentSpec, Execution, Inputs

if TYPE_CHECKING:  # pragma: no cover
    from nasx.evaluator import Evaluation, Evaluator
    from nasx.plugins import Plugins


def scored_in_order(scorer: "Evaluator", genotypes: Sequence[nx.DiGraph], capacity: int,
                    progress: bool) -> Iterator[tuple[nx.DiGraph, "Evaluation"]]:
    """(genotype, evaluation) for every genotype, in order, as they are scored: in chunks that keep every worker
    busy (with two fused passes each, at least) while records stream out in order; each chunk is stored in the
    cache as it completes, so an interrupted command continues where it stopped. A progress bar with an ETA on a
    terminal."""
    from nasx.progress import ProgressBar

    chunk = max(64, 16 * capacity, 2 * capacity * scorer.batch_archs)
    with ProgressBar("scoring", len(genotypes), enabled=progress, eta=True) as bar:
        for first in range(0, len(genotypes), chunk):
            part = [genotypes[i] for i in range(first, min(first + chunk, len(genotypes)))]
            yield from zip(part, scorer.evaluate_many(part))
            bar.update(first + len(part), f"{first + len(part)}/{len(genotypes)}")


class Enumeration:
    """Every genotype of an enumerable space, built when asked for (a list of them all would be large)."""

    def __init__(self, space: EnumerableSpace) -> None:
        self.space = space

    def __len__(self) -> int:
        return len(self.space)

    def __getitem__(self, index: int) -> nx.DiGraph:
        return self.space.genotype_at(index)


def iter_score_records(
    plugins: "Plugins",
    archs: Sequence[str],
    all_archs: bool,
    space: ComponentSpec,
    dataset: str | None,
    proxies: Sequence[ComponentSpec],
    inputs: Inputs,
    execution: Execution,
    options: Options,
    progress: bool,
) -> Iterator[dict]:
    built = components(plugins, space, dataset, expand_proxy_sets(plugins, proxies).proxies, {}, options,
                       inputs.data)
    if all_archs:
        if archs:
            raise NasxError("give architectures or --all, not both")
        if not isinstance(built.space, EnumerableSpace):
            raise NasxError(f"space '{built.space.name}' cannot be enumerated: --all needs an enumerable space")
        genotypes: Sequence[nx.DiGraph] = Enumeration(built.space)
    else:
        if not archs:
            raise NasxError("no architecture to score (--arch ARCH, or --all)")
        genotypes = [built.space.decode(arch) for arch in archs]  # every string is checked before any work
    oracle = inputs.oracle(built.space)
    with Running(plugins, execution) as running:
        scorer = make_evaluator(built.space, built.proxies, inputs, running.device, running.executor,
                                running.batch_archs)
        try:
            for genotype, evaluation in scored_in_order(scorer, genotypes, running.executor.capacity, progress):
                cost = built.space.cost(genotype)
                yield {
                    **evaluation_record(evaluation),
                    "flops_m": cost.flops_m,
                    "params_m": cost.params_m,
                    "test_accuracy": oracle.test_accuracy(genotype) if oracle is not None else None,
                }
        finally:
            scorer.close()
