"""Named proxy sets: the proxies and the combiner of a method, by the name its paper uses (``--proxy az_nas``)."""

from __future__ import annotations

from nasx.interfaces import ProxySet


class AZNAS(ProxySet):
    name = "az_nas"
    summary = "AZ-NAS: expressivity, progressivity, trainability and complexity, summed as log-ranks"
    proxies = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
    combiner = "logrank"


class FreeREASet(ProxySet):
    name = "freerea"
    summary = "FreeREA: NASWOT, LogSynflow and #skipped layers, summed after max-normalisation"
    proxies = ("naswot", "logsynflow", "skip")
    combiner = "freerea"


class GARank(ProxySet):
    name = "ga_rk"
    summary = "the rank-based GA/SA paper: noise immunity, NASWOT and LogSynflow, summed as ranks"
    proxies = ("ni", "naswot", "logsynflow")
    combiner = "rank"


class FreeREABudgetSet(ProxySet):
    # Under a FLOPs/params budget FreeREA's max-normalised sum returns the same small cell whatever the budget:
    # naswot's scores sit in a sliver near its maximum while skip spans 0..1, so the top is the best skip cell by
    # logsynflow. Min-max scaling gives each proxy the same span, and flops (more is better inside the feasible set)
    # lets the fitness use the budget it is given. Chosen on benchmarks/budget_yardstick.py (docs/results.md).
    name = "freerea_budget"
    summary = ("FreeREA's proxies and FLOPs, each scaled to [0, 1] between the explored extremes: for searches "
               "under a budget")
    proxies = ("naswot", "logsynflow", "skip", "flops")
    combiner = "minmax"
