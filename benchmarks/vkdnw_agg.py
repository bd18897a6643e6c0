"""VKDNW_single and VKDNW_agg from one `nasx correlate --out FILE.json` run that scored vkdnw, layers,
az_expressivity, az_trainability, flops and jacob_cov, without scoring VKDNW twice.

VKDNW_single is the number of parameter tensors (`layers`) + the VKDNW entropy, exactly what the `vkdnw_single`
proxy returns; the proxy would compute the costly entropy again under its own cache key, so it is derived here.
VKDNW_agg is the paper's aggregation (ondratybl/VKDNW `NB201/tss_utils.py`, `vkdnw_comb_rank`): the sum of the log
ranks of VKDNW_single, expressivity, trainability, FLOPs and jacov, i.e. nasx's `logrank` combiner over those five.
Nothing is fitted to accuracies.

Usage (from the repository root):
    python benchmarks/vkdnw_agg.py RESULT.json [--out MEASURES.json] [--cells no-dead-edges]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from nasx import jsonio
from nasx.correlation import correlate
from nasx.plugins import Plugins

from combinations import load  # benchmarks/ is on sys.path when run as a script

AGGREGATED = ("vkdnw_single", "az_expressivity", "az_trainability", "flops", "jacob_cov")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("--out", help="write the measures as JSON here")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="of the bootstrap resamples")
    parser.add_argument("--cells", help="only the cells of this subset of the space (ranked among themselves), "
                                        "e.g. no-dead-edges, the cells of the VKDNW paper's table")
    args = parser.parse_args()

    names, table, accuracy = load([args.result], args.cells)
    missing = [name for name in ("vkdnw", "layers", *AGGREGATED[1:]) if name not in names]
    if missing:
        raise SystemExit(f"{args.result}: no {', '.join(missing)} scores")
    scores = {name: table[:, names.index(name)] for name in names}
    scores["vkdnw_single"] = scores["layers"] + scores["vkdnw"]

    plugins = Plugins()
    directions = [plugins.get("proxy", name).higher_is_better for name in AGGREGATED]
    combiner = plugins.get("combiner", "logrank")()
    scores["VKDNW_agg"] = combiner.combine(np.column_stack([scores[name] for name in AGGREGATED]), directions)

    results = []
    for name in ("vkdnw", "vkdnw_single", "VKDNW_agg"):  # all three: higher is better
        found = correlate(name, scores[name], accuracy, resamples=args.bootstrap, seed=args.seed)
        results.append(found.as_dict())
        print(f"{name:13s} tau {found.values['kendall']:.3f} [{found.low['kendall']:.3f}, "
              f"{found.high['kendall']:.3f}]  rho {found.values['spearman']:.3f}  non-finite {len(found.non_finite)}")
    if args.out:
        with open(args.result) as handle:
            record = json.load(handle)
        jsonio.write(args.out, {"source": os.path.basename(args.result), "space": record["space"],
                                "dataset": record["dataset"], "cells": len(accuracy), "subset": args.cells or "all",
                                "aggregated": list(AGGREGATED), "combiner": "logrank", "results": results})


if __name__ == "__main__":
    main()
