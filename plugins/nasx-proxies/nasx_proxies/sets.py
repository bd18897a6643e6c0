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
