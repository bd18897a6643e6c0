"""``nasx run``: wire the named components together, search, and collect a JSON-ready result."""

from __future__ import annotations

from typing import Any

from nasx.data import load_images, resolve_data_dir, synthetic_batch
from nasx.errors import NasxError
from nasx.evaluator import Evaluator, ScoreCache, default_cache_path
from nasx.interfaces import EnumerableSpace
from nasx.options import check_all_used, option_table, options_for, parse_assignments
from nasx.search import Budget, SearchContext, run_search
from nasx_cli.progress import ProgressBar
from nasx_cli.run_defaults import DEFAULT_MAX_EVALS, SYNTHETIC_BATCH_SIZE


def build_components(plugins, args: dict[str, Any], others: dict[str, list[str]]):
    """The space and proxies of a command, plus the named components of other kinds (e.g. combiners), each
    with its ``-o`` options; every ``-o`` must concern one of them."""
    assignments = parse_assignments(args["option_pairs"])
    if len(set(args["proxies"])) != len(args["proxies"]):
        raise NasxError("a proxy is named twice")
    space_cls = plugins.get("space", args["space"])
    proxy_classes = [plugins.get("proxy", name) for name in args["proxies"]]
    other_classes = {kind: [plugins.get(kind, name) for name in names] for kind, names in others.items()}
    selected = [space_cls, *proxy_classes, *(cls for classes in other_classes.values() for cls in classes)]
    check_all_used(assignments, option_table(selected))

    def build(cls, **extra):
        return cls(**extra, **options_for(cls.name, cls.defaults, assignments))

    space = build(space_cls, dataset=args["dataset"])
    proxies = [build(cls) for cls in proxy_classes]
    return space, proxies, {kind: [build(cls) for cls in classes] for kind, classes in other_classes.items()}


def build_evaluator(space, proxies, args: dict[str, Any]) -> Evaluator:
    batch = None
    if any(p.needs_data for p in proxies):
        if args["images"]:
            batch = load_images(args["images"], args["dataset"])
        else:
            batch = synthetic_batch(space.input_shape, space.num_classes, size=SYNTHETIC_BATCH_SIZE)
    cache = ScoreCache(None if args["no_cache"] else (args["cache"] or default_cache_path()))
    return Evaluator(space, proxies, batch, cache, init=args["init_scheme"], init_seed=args["init_seed"])


def score_archs(plugins, args: dict[str, Any]):
    """One record per given architecture: scores, costs, and test accuracy when ground truth is available."""
    space, proxies, _ = build_components(plugins, args, {})
    genotypes = [space.decode(arch) for arch in args["archs"]]  # every string is checked before any work
    oracle = space.oracle(resolve_data_dir(args["data_dir"]))
    evaluator = build_evaluator(space, proxies, args)
    for genotype in genotypes:
        evaluation = evaluator.evaluate(genotype)
        cost = space.cost(genotype)
        yield {
            "arch": evaluation.arch,
            "scores": evaluation.scores,
            "seconds": evaluation.seconds,
            "flops_m": cost.flops_m,
            "params_m": cost.params_m,
            "test_accuracy": oracle.test_accuracy(genotype) if oracle is not None else None,
        }
    evaluator.cache.close()


def execute(plugins, args: dict[str, Any]) -> dict[str, Any]:
    space, proxies, others = build_components(
        plugins, args, {"combiner": [args["combiner"]], "searcher": [args["searcher_name"]]})
    (combiner,), (searcher,) = others["combiner"], others["searcher"]

    budget_given = any(args[k] is not None for k in ("max_evals", "max_time", "max_wall"))
    budget = Budget(
        max_evals=args["max_evals"] if budget_given else DEFAULT_MAX_EVALS,
        max_time=args["max_time"],
        max_wall=args["max_wall"],
    )
    constraints = []
    for flag, name in (("max_flops", "max-flops"), ("max_params", "max-params")):
        if args[flag] is not None:
            if args[flag] <= 0:
                raise NasxError(f"--{name} must be positive, got {args[flag]}")
            constraints.append(plugins.get("constraint", name)(limit=args[flag]))

    data_dir = resolve_data_dir(args["data_dir"])
    oracle = space.oracle(data_dir)
    evaluator = build_evaluator(space, proxies, args)
    batch, cache = evaluator.batch, evaluator.cache
    progress = _Progress(budget, enabled=not args["quiet"])
    context = SearchContext(
        space, evaluator, combiner, constraints, budget, seed=args["seed"], on_evaluation=progress.on_evaluation
    )
    with progress:
        result = run_search(searcher, context)
    cache.close()

    record: dict[str, Any] = {
        "space": space.name,
        "dataset": space.dataset,
        "search": searcher.name,
        "proxies": [p.name for p in proxies],
        "combiner": combiner.name,
        "seed": args["seed"],
        "arch": result.arch,
        "index": space.index_of(context.genotypes[result.key]) if isinstance(space, EnumerableSpace) else None,
        "scores": result.scores,
        "fitness": result.fitness,
        "flops_m": result.cost.flops_m,
        "params_m": result.cost.params_m,
        "evaluated": result.evaluated,
        "wall_seconds": result.wall_seconds,
        "compute_seconds": result.compute_seconds,
        "stop_reason": result.stop_reason,
        "budget": {"max_evals": budget.max_evals, "max_time": budget.max_time, "max_wall": budget.max_wall},
        "constraints": {"max_flops": args["max_flops"], "max_params": args["max_params"]},
        "options": {c.name: c.options for c in [space, *proxies, combiner, searcher] if c.options},
        "input": batch.identity if batch is not None else None,
        "init": {"scheme": args["init_scheme"], "seed": args["init_seed"]},
        "test_accuracy": None,
        "optimum_arch": None,
        "optimum_accuracy": None,
        "regret": None,
        "ground_truth": oracle.source if oracle is not None else None,
        "history": [
            {"arch": e.arch, "scores": e.scores, "seconds": e.seconds, "cached": all(e.cached.values())}
            for e in result.history
        ],
    }
    if oracle is not None:
        record["test_accuracy"] = oracle.test_accuracy(context.genotypes[result.key])
        optimum = oracle.optimum(constraints)
        if optimum is not None:
            record["optimum_arch"], record["optimum_accuracy"] = optimum
            record["regret"] = optimum[1] - record["test_accuracy"]
    return record


class _Progress(ProgressBar):
    """Progress of a search: distinct architectures scored, or compute seconds spent, against the budget."""

    def __init__(self, budget: Budget, enabled: bool) -> None:
        if budget.max_evals is not None:
            total = float(budget.max_evals)
        elif budget.max_time is not None:
            total = float(budget.max_time)
        else:
            total = None
        super().__init__("searching", total, enabled)
        self.budget = budget

    def on_evaluation(self, context: SearchContext, evaluation) -> None:
        done = len(context.explored) if self.budget.max_evals is not None else context.compute_seconds
        self.update(done, f"{len(context.explored)} scored, {context.compute_seconds:.1f} s compute")
