"""Computes proxy scores for genotypes, records their compute time, and caches them in SQLite.

A cached score is keyed by everything that determines it: space and its version, dataset, canonical genotype, proxy name,
proxy options, proxy version, input batch identity, initialisation scheme and seed.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import networkx as nx

from nasx.errors import NasxError
from nasx.interfaces import Proxy, Space

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch

INIT_SCHEMES = ("kaiming", "pytorch")


def default_cache_path() -> Path:
    """``$NASX_CACHE`` if set, else ``scores.sqlite`` in the user cache directory."""
    if os.environ.get("NASX_CACHE"):
        return Path(os.environ["NASX_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nasx")) / "scores.sqlite"


class ScoreCache:
    """Persistent proxy scores. NaN and infinities are stored exactly (as text)."""

    COLUMNS = ("key", "score", "seconds")

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is None:
            self.db = sqlite3.connect(":memory:")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path)
            except (OSError, sqlite3.Error) as exc:
                raise NasxError(f"cannot open the score cache {str(self.path)!r}: {exc}") from None
        try:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score TEXT NOT NULL, seconds REAL NOT NULL)"
            )
            columns = [row[1] for row in self.db.execute("PRAGMA table_info(scores)")]
        except sqlite3.DatabaseError:
            columns = []
        if columns != list(self.COLUMNS):
            self.db.close()
            raise NasxError(f"score cache {str(self.path)!r} is not a nasx score cache: move it away, or use "
                            "--cache PATH / --no-cache")

    def get(self, key: str) -> tuple[float, float] | None:
        row = self.db.execute("SELECT score, seconds FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def put(self, key: str, score: float, seconds: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", (key, repr(float(score)), seconds))
        self.db.commit()

    def close(self) -> None:
        self.db.close()


@dataclass
class Evaluation:
    """Scores of one genotype: proxy name -> score, with the recorded compute seconds of each."""

    key: str
    arch: str
    scores: dict[str, float]
    seconds: dict[str, float]
    cached: dict[str, bool] = field(default_factory=dict)

    @property
    def compute_seconds(self) -> float:
        return sum(self.seconds.values())


class Evaluator:
    """Scores genotypes of one space with a fixed list of proxies on a fixed input batch."""

    def __init__(
        self,
        space: Space,
        proxies: Sequence[Proxy],
        batch: "Batch | None",
        cache: ScoreCache | None = None,
        init: str = "kaiming",
        init_seed: int = 0,
    ) -> None:
        if not proxies:
            raise NasxError("at least one proxy is needed")
        if init not in INIT_SCHEMES:
            raise NasxError(f"unknown initialisation {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        if batch is None and any(p.needs_data for p in proxies):
            raise NasxError("a proxy needs input data but no batch was given")
        self.space = space
        self.proxies = list(proxies)
        self.batch = batch
        self.cache = cache if cache is not None else ScoreCache(None)
        self.init = init
        self.init_seed = init_seed

    def cache_key(self, proxy: Proxy, arch: str) -> str:
        batch_id = self.batch.take(proxy.batch_size).identity if proxy.needs_data and self.batch else "-"
        init = f"{self.init}:{self.init_seed}" if proxy.needs_network else "-"
        return json.dumps(
            [self.space.name, self.space.version, self.space.dataset, arch, proxy.name, proxy.version,
             sorted(proxy.options.items()), batch_id, init],
            separators=(",", ":"),
        )

    def evaluate(self, genotype: nx.DiGraph) -> Evaluation:
        """All proxies' scores for one genotype, from the cache where possible."""
        arch = self.space.encode(genotype)
        result = Evaluation(self.space.key(genotype), arch, {}, {}, {})
        missing = []
        for proxy in self.proxies:
            hit = self.cache.get(self.cache_key(proxy, arch))
            if hit is None:
                missing.append(proxy)
            else:
                result.scores[proxy.name], result.seconds[proxy.name] = hit
                result.cached[proxy.name] = True
        if missing:
            self._compute(genotype, arch, missing, result)
        # keep the proxies' order, whatever came from the cache
        result.scores = {p.name: result.scores[p.name] for p in self.proxies}
        result.seconds = {p.name: result.seconds[p.name] for p in self.proxies}
        return result

    def _compute(self, genotype: nx.DiGraph, arch: str, proxies: list[Proxy], result: Evaluation) -> None:
        network = None
        build_seconds = 0.0
        network_proxies = [p for p in proxies if p.needs_network]
        if network_proxies:
            start = time.perf_counter()
            network = self.space.build(genotype)
            build_seconds = (time.perf_counter() - start) / len(network_proxies)
        for proxy in proxies:
            start = time.perf_counter()
            if proxy.needs_network:
                score = self._score_network(proxy, network)
                seconds = time.perf_counter() - start + build_seconds
            else:
                score = float(proxy.score_genotype(self.space, genotype))
                seconds = time.perf_counter() - start
            self.cache.put(self.cache_key(proxy, arch), score, seconds)
            result.scores[proxy.name], result.seconds[proxy.name] = score, seconds
            result.cached[proxy.name] = False

    def _score_network(self, proxy: Proxy, network) -> float:
        from nasx.torch_utils import initialise

        batch = self.batch.take(proxy.batch_size) if proxy.needs_data and self.batch is not None else None
        values = []
        for repeat in range(max(1, proxy.repeats)):
            # Every proxy re-initialises the network with the same seeds, so its score does not depend on
            # which other proxies ran before it (that is what makes per-proxy caching sound).
            initialise(network, self.init, seed=self.init_seed * 1000 + repeat)
            values.append(float(proxy.score_network(network, batch, self.space)))
        return _mean(values)


def _mean(values: list[float]) -> float:
    """Mean that stays NaN when any value is NaN, instead of raising."""
    if any(math.isnan(v) for v in values):
        return math.nan
    return sum(values) / len(values)
