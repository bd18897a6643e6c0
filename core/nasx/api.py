"""The Python API: one function per ``nasx`` command, whose keyword arguments are the command's option names.

    import nasx

    result = nasx.run(proxies=["naswot", "logsynflow", "skip"], search="freerea", max_evals=20, seed=0)
    print(result.arch, result.test_accuracy)

Components are given by name (installed plugins), or as classes or instances that are not installed
(``proxies=["naswot", MyProxy]``), so a new proxy can be tried without packaging it. A proxy set's name
(``az_nas``) stands for its proxies, with its combiner unless one is given. Options of named components and of
classes come from ``options`` (``{"naswot.batch_size": 32, "repeats": 1}``); an instance is used as it is.

This module is the facade: each function checks its flat keywords into a few validated groups
(:mod:`nasx.settings`, :class:`nasx.search.Budget`) and hands them to the room that does the work (``_run``,
``_score``, ``_correlate``, ``experiments``, ``exporting``). The CLI's commands only parse their options, call
these functions and print the result.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from nasx._build import Options, plugins_or_default
from nasx._run import DEFAULT_MAX_EVALS, budget_or_default
from nasx.experiments import DEFAULT_SPACE, ExperimentResult
from nasx.exporting import ExportResult
from nasx.records import RunResult
from nasx.settings import DEFAULT_EXECUTOR, CacheSpec, ComponentSpec, Data, Execution, Inputs, Latency, Limits
from nasx.training import DEFAULT_RECIPE, TrainResult

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.plugins import Plugins

__all__ = ["run", "iter_scores", "score", "correlate", "experiment", "build", "export", "load_export", "train",
           "RunResult", "ExperimentResult", "ExportResult", "TrainResult", "DEFAULT_MAX_EVALS"]

DEFAULT_SEARCH = "freerea"


def run(
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    proxies: Sequence[ComponentSpec] | ComponentSpec = (),
    combiner: ComponentSpec | None = None,
    search: ComponentSpec = DEFAULT_SEARCH,
    seed: int = 0,
    max_evals: int | None = None,
    max_time: float | None = None,
    max_wall: float | None = None,
    max_flops: float | None = None,
    max_params: float | None = None,
    data_dir: str | os.PathLike | None = None,
    images: str | os.PathLike | Batch | None = None,
    data: str | os.PathLike | Data | None = None,
    resolution: int | None = None,
    data_seed: int | None = None,
    init: str = "kaiming",
    init_seed: int = 0,
    cache: CacheSpec = None,
    options: Options = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    device: str | None = None,
    executor: ComponentSpec = DEFAULT_EXECUTOR,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    batch_archs: int | str = "auto",
    export: str | os.PathLike | None = None,
    plugins: "Plugins | None" = None,
    objectives: Sequence[str] = (),
    plot: str | os.PathLike | None = None,
    max_latency: float | None = None,
    latency_runtime: str = "torch",
    latency_device: str | None = None,
    latency_batch: int = 1,
    latency_threads: int = 1,
    latency_warmup: int = 5,
    latency_repeats: int = 20,
) -> RunResult:
    """Search ``space`` with the proxies' combined fitness and return the best architecture found.

    Budgets: ``max_evals`` distinct architectures (100 when no budget is given), ``max_time`` recorded compute
    seconds, ``max_wall`` wall-clock seconds. ``max_flops``/``max_params`` in millions; infeasible candidates are
    never scored. ``combiner``: the proxy set's, else ``freerea``. ``out`` also writes the result as JSON.
    ``progress`` shows a bar on a terminal's stderr. ``device``: cpu (default, or ``$NASX_DEVICE``), cuda,
    cuda:N, mps or auto. ``executor``: serial (default), process (``workers`` local processes) or dask
    (``scheduler`` address, else a local cluster of ``workers``); ``threads``: torch threads per worker. The same
    seed gives the same result with any executor. ``batch_archs``: architectures scored in one fused pass where
    the space and proxies allow (``auto``: 1 on a CPU, from the free memory on a GPU); scores do not depend on it
    (up to float rounding). ``data``: your own labelled images (a folder with one sub-folder per class, an .npz,
    or a CIFAR folder; no ``dataset`` then), read at ``resolution`` x ``resolution`` when given; the proxies see a
    class-balanced batch drawn from them with ``data_seed``.

    ``objectives`` (two or more of ``fitness``, ``params``, ``flops``, ``latency`` and the proxies scored) make the
    result carry the front of the scored architectures (``result.front``) and, with ground truth, its
    ``hypervolume_ratio``; ``plot`` draws it (PNG). ``max_latency`` (milliseconds) limits the measured latency;
    latency is measured (:mod:`nasx.latency`) by ``latency_runtime`` (``torch`` or ``onnxruntime``) on
    ``latency_device`` (default: ``device``) for a batch of ``latency_batch`` with ``latency_threads`` threads,
    the median of ``latency_repeats`` timed runs after ``latency_warmup`` untimed ones.
    ``export``: a folder to write the found network to, as ``network.onnx`` (when ``nasx[export]`` is installed),
    ``network.py`` with ``network_weights.pt`` and ``network.torchscript.pt`` (``export`` with its defaults;
    ``result.exports`` lists them).
    """
    from nasx._run import run_search_command

    return run_search_command(
        plugins_or_default(plugins), space, dataset, proxies, combiner, search, seed,
        budget_or_default(max_evals, max_time, max_wall), Limits(max_flops, max_params, max_latency),
        Inputs(data_dir, images, init, init_seed, cache, Data.given(data, resolution, data_seed)),
        Execution(device, executor, workers, threads, scheduler, batch_archs),
        options, out, progress, objectives=objectives, plot=plot,
        latency=Latency(latency_runtime, latency_device, latency_batch, latency_threads, latency_warmup,
                        latency_repeats),
        export=export)


def iter_scores(
    archs: Sequence[str] | str = (),
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    proxies: Sequence[ComponentSpec] | ComponentSpec = (),
    all_archs: bool = False,
    data_dir: str | os.PathLike | None = None,
    images: str | os.PathLike | Batch | None = None,
    data: str | os.PathLike | Data | None = None,
    resolution: int | None = None,
    data_seed: int | None = None,
    init: str = "kaiming",
    init_seed: int = 0,
    cache: CacheSpec = None,
    options: Options = None,
    progress: bool = False,
    device: str | None = None,
    executor: ComponentSpec = DEFAULT_EXECUTOR,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    batch_archs: int | str = "auto",
    plugins: "Plugins | None" = None,
) -> Iterator[dict[str, Any]]:
    """``score``, one record at a time, in order, as the architectures are scored. ``all_archs`` takes every
    architecture of an enumerable space in official index order; scores are stored in the cache as they come, so
    an interrupted run continues where it stopped."""
    from nasx._score import iter_score_records

    return iter_score_records(
        plugins_or_default(plugins), [archs] if isinstance(archs, str) else list(archs), all_archs, space, dataset,
        proxies, Inputs(data_dir, images, init, init_seed, cache, Data.given(data, resolution, data_seed)),
        Execution(device, executor, workers, threads, scheduler, batch_archs), options, progress)


def score(archs: Sequence[str] | str = (), **options: Any) -> list[dict[str, Any]]:
    """Scores, costs and (with ground truth) test accuracy of given architecture strings, one record each.
    Takes the keyword arguments of ``iter_scores``."""
    return list(iter_scores(archs, **options))


def correlate(
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    proxies: Sequence[ComponentSpec] | ComponentSpec = (),
    combiners: Sequence[ComponentSpec] | ComponentSpec = (),
    sample: int = 1000,
    seed: int = 0,
    bootstrap: int = 1000,
    cells: str | None = None,
    data_dir: str | os.PathLike | None = None,
    images: str | os.PathLike | Batch | None = None,
    data: str | os.PathLike | Data | None = None,
    resolution: int | None = None,
    data_seed: int | None = None,
    init: str = "kaiming",
    init_seed: int = 0,
    cache: CacheSpec = None,
    options: Options = None,
    out: Sequence[str | os.PathLike] | str | os.PathLike = (),
    plot: str | os.PathLike | None = None,
    progress: bool = False,
    device: str | None = None,
    executor: ComponentSpec = DEFAULT_EXECUTOR,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    batch_archs: int | str = "auto",
    plugins: "Plugins | None" = None,
) -> dict[str, Any]:
    """Rank correlation of each proxy, and of each combiner over all the proxies, with the benchmark's test
    accuracy on a random sample (``sample=0``: the whole space). ``cells`` names a subset of the space
    (``Space.subsets``) to draw from instead of the whole space. Returns the record ``out=FILE.json`` writes
    (strict JSON: a non-finite value is None); ``out=FILE.csv`` writes the table of measures."""
    from nasx._correlate import correlate_command

    return correlate_command(
        plugins_or_default(plugins), space, dataset, proxies, combiners, sample, seed, bootstrap, cells,
        Inputs(data_dir, images, init, init_seed, cache, Data.given(data, resolution, data_seed)),
        Execution(device, executor, workers, threads, scheduler, batch_archs),
        options, [out] if isinstance(out, (str, os.PathLike)) else list(out), plot, progress)


def experiment(
    grid: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    space: str | None = None,
    datasets: Sequence[str] | str = (),
    searches: Sequence[str] | str = (),
    proxies: Any = (),
    combiner: str | None = None,
    seeds: int | Sequence[int] | None = None,
    max_evals: Any = (),
    max_time: Any = (),
    max_wall: Any = (),
    constraints: Any = (),
    data_dir: str | os.PathLike | None = None,
    images: str | os.PathLike | Mapping[str, str] | None = None,
    data: str | os.PathLike | Data | None = None,
    resolution: int | None = None,
    data_seed: int | None = None,
    init: str | None = None,
    init_seed: int | None = None,
    cache: CacheSpec = None,
    options: Options = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    plot: str | os.PathLike | None = None,
    progress: bool = False,
    on_failure=None,
    device: str | None = None,
    executor: ComponentSpec = DEFAULT_EXECUTOR,
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    batch_archs: int | str = "auto",
    plugins: "Plugins | None" = None,
) -> ExperimentResult:
    """Run every combination of searches x proxy sets x datasets x constraints x budgets x seeds with one shared
    score cache (see :mod:`nasx.grid` for the grid's form).

    ``grid`` is a TOML file or a dict; keyword arguments replace its values: ``searches`` with ``proxies`` (proxy
    sets, e.g. ``["naswot,logsynflow,skip"]``) make the grid's searches; ``max_evals``/``max_time``/``max_wall``
    one budget, or several when one of them is a list; ``constraints`` settings such as
    ``"max_flops=100,max_params=0.8"``, ``{}`` or ``"none"``. With ``out``, each finished run is appended to
    ``out/runs.jsonl`` and ``out/runs.csv`` as it finishes, and ``summary.csv`` and ``experiment.json`` are written
    at the end; ``resume=True`` skips the runs recorded there as finished. A run that raises is recorded as failed
    with its error (``on_failure(row)`` is called) and the grid goes on. ``data`` (with ``resolution``,
    ``data_seed``): every run searches for your own images instead of datasets.
    """
    from nasx.experiments import experiment_command, merge_grid

    spec = merge_grid(grid, space=space, datasets=datasets, searches=searches, proxies=proxies, combiner=combiner,
                      seeds=seeds, max_evals=max_evals, max_time=max_time, max_wall=max_wall,
                      constraints=constraints, images=images, options=options)
    return experiment_command(plugins_or_default(plugins), spec, data_dir, Data.given(data, resolution, data_seed),
                              init, init_seed, cache,
                              Execution(device, executor, workers, threads, scheduler, batch_archs), out, resume, plot,
                              progress, on_failure)


def build(
    arch: str,
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    options: Options = None,
    init: str = "pytorch",
    init_seed: int = 0,
    data: str | os.PathLike | Data | None = None,
    resolution: int | None = None,
    plugins: "Plugins | None" = None,
):
    """The untrained torch network of an architecture string: the network a practitioner trains (the space's
    ``build_for_training``, e.g. DARTS's 20-cell network for ``darts``), with initial weights drawn reproducibly
    (``init="pytorch"``: each layer's own initialisation; ``"kaiming"``: as for the proxies) from ``init_seed``.
    ``options`` are the space's (``{"channels": 16}``); ``data`` builds it for your own images (their classes and
    size, read at ``resolution`` when given). This is what ``export`` writes and its ``constructor`` calls."""
    from nasx.exporting import build_network

    return build_network(plugins_or_default(plugins), arch, space, dataset, options, init, init_seed,
                         Data.given(data, resolution))


def export(
    arch: str,
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    out: str | os.PathLike = "model.pt",
    options: Options = None,
    init: str = "pytorch",
    init_seed: int = 0,
    data: str | os.PathLike | Data | None = None,
    resolution: int | None = None,
    format: str = "nasx",
    weights: bool = False,
    plugins: "Plugins | None" = None,
) -> ExportResult:
    """Write the untrained network of ``arch`` (as ``build`` gives it) to ``out``, so that it can be trained or run
    elsewhere (the layouts: :mod:`nasx.exporting`). ``format``: ``nasx`` (default: the weights with what rebuilds
    the network; ``load_export(out)`` gives it back), or a file that needs no nasx: ``onnx`` (the network in
    evaluation mode, dynamic batch; needs ``pip install 'nasx[export]'``), ``python`` (a file that needs torch
    only; ``weights=True`` saves the initial weights beside it) or ``torchscript`` (scripted where TorchScript
    compiles the network, else traced in evaluation mode: ``result.note`` says which). Every file is loaded back
    and checked against the network before this returns. ``data``: the network for your own images (their classes
    and size, read at ``resolution`` when given)."""
    from nasx.exporting import write_export

    return write_export(plugins_or_default(plugins), arch, space, dataset, out, options, init, init_seed,
                        Data.given(data, resolution), format, weights)


def load_export(path: str | os.PathLike, plugins: "Plugins | None" = None):
    """The network of a file written by ``export``, with its weights (rebuilt by the installed space plugin)."""
    from nasx.exporting import read_export

    return read_export(plugins_or_default(plugins), path)


def train(
    data: str | os.PathLike | Data | None = None,
    arch: str | None = None,
    from_results: str | os.PathLike | None = None,
    space: ComponentSpec | None = None,
    options: Options = None,
    out: str | os.PathLike | None = None,
    epochs: int = DEFAULT_RECIPE.epochs,
    batch_size: int = DEFAULT_RECIPE.batch_size,
    lr: float = DEFAULT_RECIPE.lr,
    weight_decay: float = DEFAULT_RECIPE.weight_decay,
    label_smoothing: float = DEFAULT_RECIPE.label_smoothing,
    val_fraction: float = DEFAULT_RECIPE.val_fraction,
    seed: int = DEFAULT_RECIPE.seed,
    resolution: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    resume: bool = False,
    progress: bool = False,
    on_epoch=None,
    plugins: "Plugins | None" = None,
) -> TrainResult:
    """Train one architecture on your own images for a few epochs, to confirm that it learns on them and to compare
    candidates: a short recipe, not a training framework (see :mod:`nasx.training`). ``arch`` (with ``space``,
    default nats-tss, and the space's ``options``), or ``from_results``: a ``nasx run`` result whose space, space
    options and best architecture are taken (and its data and resolution, unless given). ``out``: the folder of the
    per-epoch checkpoint and ``train.json``; ``resume=True`` continues the run there. ``on_epoch(record)`` is called
    after each epoch's checkpoint is written. Returns a ``TrainResult``; the same seed gives the same run on the
    CPU (with the same ``threads``)."""
    from nasx.training import Recipe, train_command

    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    label_smoothing=label_smoothing, val_fraction=val_fraction, seed=seed)
    return train_command(plugins_or_default(plugins), data, resolution, arch, from_results, space, options, recipe,
                         device, threads, out, resume, progress, on_epoch)
