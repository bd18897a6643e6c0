"""Store the per-cell scores of a whole-space file in a score cache, under the keys a search with the same settings
uses, so that searches over those cells replay instead of scoring (seconds, not hours).

The file is ``nasx correlate --sample 0 --out FILE.json`` (its ``options``, ``input`` and ``init`` say how the scores
were made) or ``nasx score --all`` JSONL (give the settings it ran with: ``--images``, ``-o``). A replayed search is
a simulation of the search's decisions: its ``max-time`` and ``max-wall`` budgets are meaningless (a replay is
charged the recorded seconds, which these files do not hold: 0), so budget replays by ``--max-evals``.

    python benchmarks/cache_from_scores.py benchmarks/results/whole_space/correlations_cifar10_all.json \\
        --dataset cifar10 --images $NASX_DATA/cifar10_test_512_jpeg.npz --cache replay.sqlite
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

# private on purpose: the keys must be a search's own, so the proxies and batch come from the code a search uses
from nasx._build import components, input_batch
from nasx.evaluator import Evaluator, ScoreCache
from nasx.plugins import Plugins


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores", help="correlate JSON or score JSONL")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--images", help="the --images the scores were computed on [default: the synthetic batch]")
    parser.add_argument("-o", dest="options", action="append", default=[],
                        help="component options the scores were computed with (e.g. repeats=1)")
    parser.add_argument("--cache", required=True)
    args = parser.parse_args(argv)

    text = Path(args.scores).read_text()
    if args.scores.endswith(".jsonl"):
        rows = [(r["arch"], r["scores"]) for r in map(json.loads, text.splitlines()) if r]
        options = args.options
    else:
        record = json.loads(text)
        names = [r["name"] for r in record["results"] if "(" not in r["name"]]
        rows = [(a["arch"], {n: a[n] for n in names}) for a in record["architectures"]]
        options = [f"{component}.{key}={value}" for component, values in record["options"].items()
                   for key, value in values.items() if component != "nats-tss"] + args.options
    proxies = sorted({name for _, scores in rows for name in scores})
    plugins = Plugins()
    built = components(plugins, "nats-tss", args.dataset, proxies, {}, options)
    evaluator = Evaluator(built.space, built.proxies, input_batch(built.space, built.proxies, args.images),
                          ScoreCache(args.cache))
    stored = 0
    for arch, scores in rows:
        text_arch = built.space.encode(built.space.genotype_at(arch)) if isinstance(arch, int) else arch
        for proxy in built.proxies:
            value = scores.get(proxy.name)
            evaluator.cache.put(evaluator.cache_key(proxy, text_arch), math.nan if value is None else value, 0.0)
            stored += 1
    evaluator.close()
    print(f"stored {stored} scores of {len(rows)} cells ({', '.join(proxies)}) in {args.cache}")


if __name__ == "__main__":
    main()
