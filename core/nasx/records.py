"""The records commands return and write: one record per scored architecture, and the result of a search."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from nasx import jsonio

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from nasx.evaluator import Evaluation


def evaluation_record(evaluation: "Evaluation") -> dict[str, Any]:
    """What every command says of one scored architecture: its scores (non-finite ones named), compute seconds,
    whether all came from the cache, and the error of each score that failed."""
    return {
        "arch": evaluation.arch,
        "scores": evaluation.scores,
        "non_finite": jsonio.non_finite(evaluation.scores),
        "seconds": evaluation.seconds,
        "cached": all(evaluation.cached.values()),
        "errors": evaluation.errors,
    }


@dataclass
class RunResult:
    """What a search found. ``to_dict()`` is exactly what ``nasx run --out`` writes (strict JSON: non-finite
    scores are null and named in ``non_finite_scores``)."""

    space: str
    dataset: str
    search: str
    proxies: list[str]
    combiner: str
    seed: int
    arch: str
    genotype: nx.DiGraph
    index: int | None
    scores: dict[str, float]
    fitness: float
    flops_m: float
    params_m: float
    evaluated: int
    wall_seconds: float
    compute_seconds: float
    stop_reason: str
    budget: dict[str, Any]
    constraints: dict[str, Any]
    options: dict[str, dict[str, Any]]
    input: str | None
    init: dict[str, Any]
    device: str = "cpu"
    executor: str = "serial"
    #: the networks' classes and (channels, height, width) input: the dataset's, or the user's own data's
    num_classes: int | None = None
    input_shape: list[int] | None = None
    #: the user's own images (``--data``), the resolution they were read at and the seed of the proxies' batch
    data: str | None = None
    resolution: int | None = None
    data_seed: int | None = None
    #: architectures scored per fused pass (1: one at a time)
    batch_archs: int = 1
    test_accuracy: float | None = None
    optimum_arch: str | None = None
    optimum_accuracy: float | None = None
    regret: float | None = None
    ground_truth: str | None = None
    ground_truth_metric: str | None = None
    #: why there is no ground truth, when there is none
    no_ground_truth: str | None = None
    #: the found network's measured latency (median, ms) and its spread and settings, when latency was measured
    latency_ms: float | None = None
    latency: dict[str, Any] | None = None
    #: latencies measured by this run (not found in the cache), when latency was measured
    latencies_measured: int | None = None
    #: the objectives of a search with several, and its front: the scored feasible architectures that no other
    #: scored one dominates (each with its objective values, scores, costs and, with ground truth, accuracy)
    objectives: list[str] = field(default_factory=list)
    front: list[dict[str, Any]] = field(default_factory=list)
    #: with ground truth: hypervolume of the front's members (true accuracy x costs) over that of the true front
    hypervolume_ratio: float | None = None
    hypervolume: dict[str, Any] | None = None
    #: why a front has no hypervolume ratio, when it has none
    no_hypervolume: str | None = None
    #: the benchmark's true accuracy-cost front under the same constraints, when the ratio was computed
    true_front: list[dict[str, Any]] = field(default_factory=list)
    #: one line per thing a user should know about the result (e.g. a proxy that was never finite)
    warnings: list[str] = field(default_factory=list)
    #: the files ``export=DIR`` (``nasx run --export DIR``) wrote: the found network as ONNX, Python, TorchScript
    exports: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def non_finite_scores(self) -> list[str]:
        """Proxies whose score of the chosen architecture is NaN or infinite."""
        return jsonio.non_finite(self.scores)

    def to_dict(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "genotype"}
        position = list(record).index("fitness")
        items = list(record.items())
        items.insert(position, ("non_finite_scores", self.non_finite_scores))
        return jsonio.strict(dict(items))
