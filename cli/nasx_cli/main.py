"""The ``nasx`` command line. Torch and the plugins are imported only by the commands that need them."""

from __future__ import annotations

import json
import os
import sys

import click

from nasx.errors import NasxError

from nasx.api import DEFAULT_MAX_EVALS
from nasx.exporting import FORMATS
from nasx._build import start_workers_early
from nasx.settings import DEFAULT_EXECUTOR, Execution
from nasx.training import DEFAULT_RECIPE


def fail(message: str) -> None:
    click.echo(f"nasx: error: {message}", err=True)
    sys.exit(2)


def get_plugins(ctx: click.Context):
    """The plugin manager of this invocation (tests may hand one in through ``obj``)."""
    from nasx.plugins import Plugins

    root = ctx.find_root()
    if root.obj is None:
        root.obj = Plugins()
    plugins = root.obj
    plugins.components()
    for warning in plugins.warnings:
        click.echo(f"nasx: warning: {warning}", err=True)
    plugins.warnings.clear()
    return plugins


DATA_HELP = ("Your own labelled images: a folder with one sub-folder per class, an .npz (uint8 x, integer y) or a "
             "CIFAR python folder. The networks are built for their classes and size (no --dataset); no ground "
             "truth exists for them.")
RESOLUTION_HELP = "Resize the images of --data to NxN [default: their own size]."


def scoring_options(command):
    """The options every scoring command shares: data, input images, initialisation, cache, component options."""
    options = [
        click.option("--data-dir", type=click.Path(), help="Benchmark data directory [default: $NASX_DATA]."),
        click.option("--images", type=click.Path(), help="Input images: an .npz (uint8 NHWC x, labels y) or a "
                     "CIFAR folder. Default: a synthetic standard-normal batch."),
        click.option("--data", type=click.Path(), help=DATA_HELP),
        click.option("--resolution", type=int, help=RESOLUTION_HELP),
        click.option("--data-seed", type=int,
                     help="Seed of the class-balanced batch the proxies see of --data [default: 0]."),
        click.option("--init", default="kaiming", show_default=True,
                     type=click.Choice(["kaiming", "pytorch"]), help="Weight initialisation before each score."),
        click.option("--init-seed", default=0, show_default=True, type=int, help="Seed of the initialisations."),
        click.option("--cache", type=click.Path(),
                     help="Score cache file [default: $NASX_CACHE or the user cache dir]."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the score cache."),
        click.option("-o", "option_pairs", multiple=True, metavar="[COMPONENT.]NAME=VALUE",
                     help="Component option, e.g. -o naswot.batch_size=32 or -o repeats=1 (repeatable)."),
        click.option("--device", help="Where networks are scored: cpu, cuda, cuda:N, mps or auto "
                     "[default: $NASX_DEVICE, else cpu]."),
        click.option("--executor", default=DEFAULT_EXECUTOR, show_default=True,
                     help="How scores are computed: serial (this process), process (local worker processes), "
                     "dask (a Dask cluster), or auto (dask with --scheduler, else process on a machine of "
                     "several cores, else serial)."),
        click.option("--workers", type=int, help="Worker processes of the process executor, or of dask's local "
                     "cluster [default: one per core]."),
        click.option("--threads", type=int, help="Torch threads per worker [default: 1 with process and dask; "
                     "torch's default with serial]."),
        click.option("--scheduler", metavar="tcp://HOST:8786",
                     help="The Dask scheduler to use (--executor dask); without it a local cluster is started."),
        click.option("--batch-archs", default="auto", show_default=True, metavar="K|auto",
                     help="Architectures scored in one fused pass where the space and proxies allow (auto: 1 on "
                     "a CPU, from the free memory on a GPU)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nasx")
def cli() -> None:
    """nasx: training-free neural architecture search with zero-cost proxies."""


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List every installed component: kind, name, plugin, distribution, version, and status: ok, failed (the
    plugin did not load or register) or conflict (several plugins claim the name, which is disabled)."""
    from nasx.interfaces import KINDS

    plugins = get_plugins(ctx)

    def row(source, status: str, summary: str = "", error: str | None = None) -> dict:
        entry = {"kind": source.kind, "name": source.name, "plugin": source.plugin,
                 "distribution": source.distribution, "version": source.version, "summary": summary,
                 "status": status}
        return entry if error is None else {**entry, "error": error}

    rows = [row(info, "ok", info.cls.summary) for info in plugins.all()]
    rows += [row(info, "conflict", info.cls.summary, conflict.message())
             for conflict in plugins.conflicts() for info in conflict.claimants]
    rows += [row(failure, "failed", error=failure.error) for failure in plugins.failures()]
    # components in kind order, a conflict's claimants next to each other; failures last
    rows.sort(key=lambda row: (row["status"] == "failed", KINDS.index(row["kind"]) if row["kind"] in KINDS
                               else len(KINDS), row["name"]))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = ("kind", "name", "distribution", "version", "status")
    if not sys.stdout.isatty():
        # through a pipe or into a file: one line per component, never wrapped, columns aligned
        widths = {key: max([len(key), *(len(row[key]) for row in rows)]) for key in columns}
        click.echo("  ".join(key.ljust(widths[key]) for key in columns) + "  summary")
        for row in rows:
            click.echo("  ".join(row[key].ljust(widths[key]) for key in columns) + "  "
                       + row.get("error", row["summary"]))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*columns, "summary", title="nasx components")
    style = {"ok": None, "conflict": "yellow", "failed": "red"}
    for row in rows:
        table.add_row(*(escape(row[key]) for key in columns), escape(row.get("error", row["summary"])),
                      style=style[row["status"]])
    Console().print(table)


SPACE_HELP = "Search space [default: nats-tss]."
DATASET_HELP = "Dataset the networks are built for [default: the space's default, cifar10 for the built-in spaces]."


def scoring_arguments(args: dict) -> dict:
    """The API's keyword arguments for the shared scoring options (removed from ``args``)."""
    no_cache = args.pop("no_cache")
    cache = args.pop("cache")
    if no_cache and cache:
        raise NasxError("give --cache PATH or --no-cache, not both")
    execution = {name: args.pop(name) for name in ("device", "executor", "workers", "threads", "scheduler",
                                                   "batch_archs")}
    # worker processes start now, while the plugins load and the benchmark table is read
    start_workers_early(Execution(**execution))
    return {
        "data_dir": args.pop("data_dir"),
        "images": args.pop("images"),
        "data": args.pop("data"),
        "resolution": args.pop("resolution"),
        "data_seed": args.pop("data_seed"),
        "init": args.pop("init"),
        "init_seed": args.pop("init_seed"),
        "cache": False if no_cache else cache,
        "options": args.pop("option_pairs"),
        **execution,
    }


@cli.command("run")
@click.option("--space", default="nats-tss", help=SPACE_HELP)
@click.option("--dataset", help=DATASET_HELP)
@click.option("--proxy", "proxies", multiple=True, required=True,
              help="Proxy to score with, or a proxy set such as az_nas (repeatable).")
@click.option("--combiner", help="How several proxies make one fitness [default: the proxy set's, else freerea].")
@click.option("--search", default="freerea", show_default=True, help="Search strategy.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the search.")
@click.option("--max-evals", type=int, help=f"Distinct architectures to score [default: {DEFAULT_MAX_EVALS} "
              "when no budget is given].")
@click.option("--max-time", type=float, help="Recorded compute seconds of the scores.")
@click.option("--max-wall", type=float, help="Wall-clock seconds.")
@click.option("--max-flops", type=float, help="Largest FLOPs, in the benchmark's unit (millions).")
@click.option("--max-params", type=float, help="Largest parameter count, in millions.")
@click.option("--max-latency", type=float, metavar="MS",
              help="Largest measured latency, in milliseconds (see --latency-*).")
@click.option("--latency-runtime", default="torch", show_default=True,
              help="How latency is measured: torch (PyTorch eager) or onnxruntime (needs nasx[export]).")
@click.option("--latency-device", help="Where latency is measured [default: the scoring device].")
@click.option("--latency-batch", default=1, show_default=True, type=int, help="Inputs per timed run.")
@click.option("--latency-threads", default=1, show_default=True, type=int, help="Threads of the timed runs.")
@click.option("--latency-warmup", default=5, show_default=True, type=int, help="Untimed runs before timing.")
@click.option("--latency-repeats", default=20, show_default=True, type=int,
              help="Timed runs; the latency is their median.")
@click.option("--objective", "objectives", multiple=True, metavar="NAME",
              help="An objective of a search with several (repeat, two or more): fitness, params, flops, latency "
                   "or a proxy scored; the result then holds their front.")
@click.option("--plot", type=click.Path(), help="Draw the front (PNG); needs two or more --objective.")
@click.option("--out", type=click.Path(), help="Write the result as JSON to this file.")
@click.option("--export", type=click.Path(), metavar="DIR", help="Write the network found to DIR as network.onnx "
              "(with nasx[export] installed), network.py (+ network_weights.pt) and network.torchscript.pt.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def run_command(ctx: click.Context, quiet: bool, **args) -> None:
    """Search a space with zero-cost proxies and report the best architecture found (with two or more
    --objective, the front of the scored architectures too)."""
    from nasx.api import run

    result = run(**scoring_arguments(args), **args, progress=not quiet, plugins=get_plugins(ctx))
    from nasx_cli.report import print_result

    print_result(result.to_dict())
    for path in (*result.exports, args["out"], args["plot"]):
        if path:
            click.echo(f"wrote {path}", err=True)


@cli.command("score")
@click.option("--space", default="nats-tss", help=SPACE_HELP)
@click.option("--dataset", help=DATASET_HELP)
@click.option("--arch", "archs", multiple=True, help="Architecture string (repeatable).")
@click.option("--all", "all_archs", is_flag=True,
              help="Every architecture of an enumerable space, in index order (resumes from the cache).")
@click.option("--proxy", "proxies", multiple=True, required=True,
              help="Proxy to score with, or a proxy set such as az_nas (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def score_command(ctx: click.Context, quiet: bool, **args) -> None:
    """Score given architectures (or --all) with proxies; print costs and, with ground truth, test accuracy (JSON
    lines, in order; non-finite scores are null and named in "non_finite")."""
    from nasx import jsonio
    from nasx.api import iter_scores

    for record in iter_scores(**scoring_arguments(args), **args, progress=not quiet, plugins=get_plugins(ctx)):
        click.echo(jsonio.dumps(record))


@cli.command("correlate")
@click.option("--space", default="nats-tss", help="Benchmark space with ground truth [default: nats-tss].")
@click.option("--dataset", help=DATASET_HELP)
@click.option("--proxy", "proxies", multiple=True, required=True, help="Proxy to correlate (repeatable).")
@click.option("--combiner", "combiners", multiple=True,
              help="Also correlate this combination of all the proxies (repeatable), e.g. freerea, rank, logrank.")
@click.option("--sample", default=1000, show_default=True, type=int,
              help="Architectures drawn at random; 0 takes every architecture of an enumerable space.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample and of the bootstrap.")
@click.option("--bootstrap", default=1000, show_default=True, type=int,
              help="Bootstrap resamples for the 95 % intervals (0: none).")
@click.option("--cells", metavar="SUBSET",
              help="Draw only from a named subset of the space, e.g. no-dead-edges for nats-tss (the 9445 cells "
                   "without an operation off every input-output path) [default: every architecture].")
@click.option("--out", multiple=True, type=click.Path(),
              help="Write results: FILE.json (everything, per-architecture scores too) or FILE.csv (the measures).")
@click.option("--plot", type=click.Path(), help="Scatter plots of score against accuracy (PNG).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def correlate_command(ctx: click.Context, quiet: bool, **args) -> None:
    """Rank correlation of proxies (and combinations) with a benchmark's test accuracy."""
    from nasx.api import correlate

    record = correlate(**scoring_arguments(args), **args, progress=not quiet, plugins=get_plugins(ctx))
    from nasx_cli.report import print_correlation

    print_correlation(record)
    for path in (*args["out"], *([args["plot"]] if args["plot"] else [])):
        click.echo(f"wrote {path}", err=True)


@cli.command("experiment")
@click.argument("grid", required=False, type=click.Path())
@click.option("--space", help="Search space [grid key: space; default: nats-tss].")
@click.option("--dataset", "datasets", multiple=True,
              help="Dataset (repeatable) [grid key: datasets; default: the space's default].")
@click.option("--search", "searches", multiple=True, help="Searcher (repeatable); with --proxies.")
@click.option("--proxies", multiple=True, metavar="P1,P2,...",
              help="A comma-separated proxy set (repeatable); every --search runs with every set.")
@click.option("--combiner", help="Combiner of the command-line searches [default: the proxy set's, else freerea].")
@click.option("--seeds", type=int, help="Seeds 0..N-1 [grid key: seeds].")
@click.option("--max-evals", type=int, multiple=True,
              help="Budget: distinct architectures per search (repeat for several budgets).")
@click.option("--max-time", type=float, multiple=True,
              help="Budget: recorded compute seconds per search (repeat for several budgets).")
@click.option("--max-wall", type=float, multiple=True,
              help="Budget: wall-clock seconds per search (repeat for several budgets).")
@click.option("--constraint", "constraints", multiple=True, metavar="max_flops=F,max_params=P",
              help="A constraint setting (repeatable; 'none' for unconstrained) [grid key: constraints].")
@click.option("--out", type=click.Path(), help="Directory for runs.jsonl, runs.csv (written as each run "
              "finishes), summary.csv and experiment.json.")
@click.option("--resume", is_flag=True, help="Continue the experiment in --out: skip the runs it has finished.")
@click.option("--plot", type=click.Path(), help="Mean test accuracy against compute time (PNG).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def experiment_command(ctx: click.Context, quiet: bool, **args) -> None:
    """Run a grid of searches (from GRID, a TOML file, and/or options) and summarise it."""
    from nasx.api import experiment
    from nasx_cli.report import print_summary

    scoring = scoring_arguments(args)
    # the grid's own init settings apply unless given here
    source = ctx.get_parameter_source
    for name in ("init", "init_seed"):
        if source(name) is click.core.ParameterSource.DEFAULT:
            scoring[name] = None
    if args["resume"] and not args["out"]:
        raise NasxError("--resume needs --out, the folder of the experiment to continue")

    def warn(row: dict) -> None:
        click.echo(f"nasx: warning: run failed ({row['dataset']} {row['label']} seed {row['seed']}): "
                   f"{row['error']}", err=True)

    result = experiment(**scoring, **args, progress=not quiet, on_failure=warn, plugins=get_plugins(ctx))
    print_summary(result.summary)
    for path in result.written:
        click.echo(f"wrote {path}", err=True)


@cli.command("export")
@click.option("--space", default="nats-tss", help=SPACE_HELP)
@click.option("--dataset", help=DATASET_HELP)
@click.option("--arch", required=True, help="Architecture string.")
@click.option("--out", required=True, type=click.Path(), help="File to write (nasx format: load it with "
              "nasx.load_export).")
@click.option("--format", "format", default="nasx", show_default=True, type=click.Choice(FORMATS),
              help="nasx: weights and what rebuilds the network (needs nasx); onnx: evaluation-mode network, "
              "dynamic batch (needs nasx[export]); python: one file needing torch only; torchscript: scripted, else "
              "traced in evaluation mode.")
@click.option("--weights", is_flag=True, help="With --format python: save the initial weights beside the file "
              "(FILE_weights.pt), loaded by build(weights=True).")
@click.option("--init", default="pytorch", show_default=True, type=click.Choice(["pytorch", "kaiming"]),
              help="Initial weights: each layer's own initialisation, or kaiming as for the proxies.")
@click.option("--init-seed", default=0, show_default=True, type=int, help="Seed of the initial weights.")
@click.option("-o", "options", multiple=True, metavar="[SPACE.]NAME=VALUE",
              help="Space option, e.g. -o darts.channels=16 (repeatable).")
@click.option("--data", type=click.Path(), help="Build the network for your own labelled images (their classes "
              "and size): a folder with one sub-folder per class, an .npz or a CIFAR python folder.")
@click.option("--resolution", type=int, help=RESOLUTION_HELP)
@click.pass_context
def export_command(ctx: click.Context, **args) -> None:
    """Write the untrained network of an architecture (seeded initial weights) with the call that rebuilds it, to
    train it elsewhere."""
    from nasx.api import export

    result = export(**args, plugins=get_plugins(ctx))
    click.echo(f"{result.space} / {result.dataset}: {result.params} parameters")
    path = str(result.path)
    if result.format == "nasx":
        click.echo(f"rebuild: {result.constructor}")
    else:
        click.echo(f"{result.format}: {result.note}")
    loaders = {"nasx": f"nasx.load_export({path!r})", "onnx": f"onnxruntime.InferenceSession({path!r})",
               "python": f"build({'weights=True' if args['weights'] else ''}) from {path}",
               "torchscript": f"torch.jit.load({path!r})"}
    click.echo(f"load:    {loaders[result.format]}")
    for written in result.files:
        click.echo(f"wrote {written}", err=True)


@cli.command("train")
@click.option("--data", type=click.Path(), help="Your own labelled images: a folder with one sub-folder per class, "
              "an .npz (uint8 x, integer y) or a CIFAR python folder [default: the data of --from's run].")
@click.option("--arch", help="Architecture string to train.")
@click.option("--from", "from_results", type=click.Path(), metavar="RESULTS.json",
              help="A result of nasx run --out: train its best architecture, with its space and space options (and "
              "its --data and --resolution unless given).")
@click.option("--space", help="Search space of --arch [default: nats-tss].")
@click.option("--epochs", default=DEFAULT_RECIPE.epochs, show_default=True, type=int, help="Epochs.")
@click.option("--batch-size", default=DEFAULT_RECIPE.batch_size, show_default=True, type=int,
              help="Images per step.")
@click.option("--lr", default=DEFAULT_RECIPE.lr, show_default=True, type=float,
              help="Initial learning rate of SGD (cosine schedule over the epochs).")
@click.option("--weight-decay", default=DEFAULT_RECIPE.weight_decay, show_default=True, type=float,
              help="Weight decay of SGD.")
@click.option("--label-smoothing", default=DEFAULT_RECIPE.label_smoothing, show_default=True, type=float,
              help="Label smoothing of the cross-entropy.")
@click.option("--val-fraction", default=DEFAULT_RECIPE.val_fraction, show_default=True, type=float,
              help="Share of each class held out (seeded) to measure accuracy after every epoch.")
@click.option("--seed", default=DEFAULT_RECIPE.seed, show_default=True, type=int,
              help="Seed of the split, the initial weights, the order of the images and the augmentation.")
@click.option("--resolution", type=int, help=RESOLUTION_HELP)
@click.option("--device", help="cpu, cuda, cuda:N, mps or auto [default: $NASX_DEVICE, else cpu].")
@click.option("--threads", type=int, help="Torch threads [default: torch's; --resume keeps the run's].")
@click.option("--out", required=True, type=click.Path(), help="Folder of the checkpoint (every epoch) and train.json.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("-o", "options", multiple=True, metavar="[SPACE.]NAME=VALUE",
              help="Space option, e.g. -o darts.channels=16 (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no line per epoch.")
@click.pass_context
def train_command(ctx: click.Context, quiet: bool, **args) -> None:
    """Train one architecture on your own images for a few epochs, to confirm that it learns and to compare
    candidates by their held-out accuracy. A short fixed recipe (SGD with momentum, cosine learning rate, random
    crops and flips), not a training framework: train the final network with your own code (nasx export)."""
    from nasx.api import train
    from nasx_cli.report import print_training

    epochs = args["epochs"]

    def report(record: dict) -> None:
        if not quiet:
            held_out = "n/a" if record["val_accuracy"] is None else f"{record['val_accuracy']:.1f} %"
            click.echo(f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}, train accuracy "
                       f"{record['train_accuracy']:.1f} %, validation accuracy {held_out} "
                       f"({record['seconds']:.1f} s)", err=True)

    result = train(**args, progress=not quiet, on_epoch=report, plugins=get_plugins(ctx))
    print_training(result.to_dict())
    click.echo(f"wrote {result.out / 'train.json'}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user error becomes one line on stderr and exit status 2."""
    import logging

    # warnings of the library (a failed score, say) as one line each, like the CLI's own
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("nasx: warning: %(message)s"))
    logger = logging.getLogger("nasx")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        cli.main(args=argv, prog_name="nasx", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message())
    except click.Abort:
        click.echo("nasx: aborted", err=True)
        sys.exit(130)
    except NasxError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("nasx: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("NASX_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set NASX_DEBUG=1 for the traceback)")


if __name__ == "__main__":  # pragma: no cover
    main()
