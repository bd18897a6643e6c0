"""The ``nasx`` command line. Torch and the plugins are imported only by the commands that need them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from nasx.errors import NasxError

from nasx_cli.run_defaults import DEFAULT_MAX_EVALS


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


def scoring_options(command):
    """The options every scoring command shares: data, input images, initialisation, cache, component options."""
    options = [
        click.option("--data-dir", type=click.Path(), help="Benchmark data directory [default: $NASX_DATA]."),
        click.option("--images", type=click.Path(), help="Input images: an .npz (uint8 NHWC x, labels y) or a "
                     "CIFAR folder. Default: a synthetic standard-normal batch."),
        click.option("--init", "init_scheme", default="kaiming", show_default=True,
                     type=click.Choice(["kaiming", "pytorch"]), help="Weight initialisation before each score."),
        click.option("--init-seed", default=0, show_default=True, type=int, help="Seed of the initialisations."),
        click.option("--cache", type=click.Path(),
                     help="Score cache file [default: $NASX_CACHE or the user cache dir]."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the score cache."),
        click.option("-o", "option_pairs", multiple=True, metavar="[COMPONENT.]NAME=VALUE",
                     help="Component option, e.g. -o naswot.batch_size=32 or -o repeats=1 (repeatable)."),
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
    """List every installed component: kind, name, plugin, distribution, version."""
    plugins = get_plugins(ctx)
    rows = [
        {
            "kind": info.kind,
            "name": info.name,
            "plugin": info.plugin,
            "distribution": info.distribution,
            "version": info.version,
            "summary": info.cls.summary,
        }
        for info in plugins.all()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("kind", "name", "distribution", "version", "summary", title="nasx components")
    for row in rows:
        table.add_row(row["kind"], row["name"], row["distribution"], row["version"], row["summary"])
    Console().print(table)


@cli.command("run")
@click.option("--space", required=True, help="Search space, e.g. nats-tss.")
@click.option("--dataset", required=True, help="Dataset the networks are built for, e.g. cifar10.")
@click.option("--proxy", "proxies", multiple=True, required=True, help="Proxy to score with (repeatable).")
@click.option("--combiner", default="freerea", show_default=True, help="How several proxies make one fitness.")
@click.option("--search", "searcher_name", default="freerea", show_default=True, help="Search strategy.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the search.")
@click.option("--max-evals", type=int, help=f"Distinct architectures to score [default: {DEFAULT_MAX_EVALS} "
              "when no budget is given].")
@click.option("--max-time", type=float, help="Recorded compute seconds of the scores.")
@click.option("--max-wall", type=float, help="Wall-clock seconds.")
@click.option("--max-flops", type=float, help="Largest FLOPs, in the benchmark's unit (millions).")
@click.option("--max-params", type=float, help="Largest parameter count, in millions.")
@click.option("--out", type=click.Path(), help="Write the result as JSON to this file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def run_command(ctx: click.Context, **args) -> None:
    """Search a space with zero-cost proxies and report the best architecture found."""
    from nasx_cli.run import execute

    result = execute(get_plugins(ctx), args)
    from nasx_cli.report import print_result

    print_result(result)
    if args["out"]:
        path = Path(args["out"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
        except OSError as exc:
            raise NasxError(f"cannot write {str(path)!r}: {exc.strerror}") from None
        click.echo(f"wrote {path}", err=True)


@cli.command("score")
@click.option("--space", required=True, help="Search space, e.g. nats-tss.")
@click.option("--dataset", required=True, help="Dataset the network is built for.")
@click.option("--arch", "archs", multiple=True, required=True, help="Architecture string (repeatable).")
@click.option("--proxy", "proxies", multiple=True, required=True, help="Proxy to score with (repeatable).")
@scoring_options
@click.pass_context
def score_command(ctx: click.Context, **args) -> None:
    """Score given architectures with proxies; print costs and, with ground truth, test accuracy (JSON lines)."""
    from nasx_cli.run import score_archs

    for record in score_archs(get_plugins(ctx), args):
        click.echo(json.dumps(record))


@cli.command("correlate")
@click.option("--space", required=True, help="Benchmark space with ground truth, e.g. nats-tss.")
@click.option("--dataset", required=True, help="Dataset, e.g. cifar10.")
@click.option("--proxy", "proxies", multiple=True, required=True, help="Proxy to correlate (repeatable).")
@click.option("--combiner", "combiners", multiple=True,
              help="Also correlate this combination of all the proxies (repeatable), e.g. freerea, rank, logrank.")
@click.option("--sample", default=1000, show_default=True, type=int,
              help="Architectures drawn at random; 0 takes every architecture of an enumerable space.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample and of the bootstrap.")
@click.option("--bootstrap", default=1000, show_default=True, type=int,
              help="Bootstrap resamples for the 95 % intervals (0: none).")
@click.option("--out", "outputs", multiple=True, type=click.Path(),
              help="Write results: FILE.json (everything, per-architecture scores too) or FILE.csv (the measures).")
@click.option("--plot", "plot_path", type=click.Path(), help="Scatter plots of score against accuracy (PNG).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def correlate_command(ctx: click.Context, **args) -> None:
    """Rank correlation of proxies (and combinations) with a benchmark's test accuracy."""
    from nasx_cli.correlate import execute, plot, print_report, write_outputs

    record = execute(get_plugins(ctx), args)
    print_report(record)
    for path in write_outputs(record, args["outputs"]):
        click.echo(f"wrote {path}", err=True)
    if args["plot_path"]:
        plot(record, args["plot_path"])
        click.echo(f"wrote {args['plot_path']}", err=True)


@cli.command("experiment")
@click.argument("grid_file", required=False, type=click.Path())
@click.option("--space", help="Search space [grid key: space].")
@click.option("--dataset", "datasets", multiple=True, help="Dataset (repeatable) [grid key: datasets].")
@click.option("--search", "searches", multiple=True, help="Searcher (repeatable); with --proxies.")
@click.option("--proxies", "proxy_sets", multiple=True, metavar="P1,P2,...",
              help="A comma-separated proxy set (repeatable); every --search runs with every set.")
@click.option("--combiner", default="freerea", show_default=True, help="Combiner of the command-line searches.")
@click.option("--seeds", type=int, help="Seeds 0..N-1 [grid key: seeds].")
@click.option("--max-evals", type=int, multiple=True,
              help="Budget: distinct architectures per search (repeat for several budgets).")
@click.option("--max-time", type=float, multiple=True,
              help="Budget: recorded compute seconds per search (repeat for several budgets).")
@click.option("--max-wall", type=float, multiple=True,
              help="Budget: wall-clock seconds per search (repeat for several budgets).")
@click.option("--constraint", "constraint_settings", multiple=True, metavar="max_flops=F,max_params=P",
              help="A constraint setting (repeatable; 'none' for unconstrained) [grid key: constraints].")
@click.option("--out", "out_dir", type=click.Path(), help="Directory for runs.csv, summary.csv, experiment.json.")
@click.option("--plot", "plot_path", type=click.Path(), help="Mean test accuracy against compute time (PNG).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@scoring_options
@click.pass_context
def experiment_command(ctx: click.Context, grid_file, **args) -> None:
    """Run a grid of searches (from GRID_FILE, a TOML file, and/or options) and summarise it."""
    from nasx_cli import experiment

    grid = experiment.merge_command_line(experiment.load_grid(grid_file), args)
    rows = experiment.run_grid(get_plugins(ctx), grid, args)
    summary = experiment.summarise(rows)
    experiment.print_summary(summary)
    if args["out_dir"]:
        for path in experiment.write_outputs(rows, summary, args["out_dir"]):
            click.echo(f"wrote {path}", err=True)
    if args["plot_path"]:
        experiment.plot(summary, args["plot_path"])
        click.echo(f"wrote {args['plot_path']}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user error becomes one line on stderr and exit status 2."""
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
