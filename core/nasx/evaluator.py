"""Computes proxy scores for genotypes, records their compute time, and caches them in SQLite.

A cached score is keyed by everything that determines it: space and its version, dataset, canonical genotype, proxy name,
proxy options, proxy version, input batch identity, initialisation scheme and seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import networkx as nx

from nasx.errors import NasxError
from nasx.interfaces import Proxy, Space

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.interfaces import Executor
    from nasx.scoring import ScoreTask, TaskResult

INIT_SCHEMES = ("kaiming", "pytorch")


def default_cache_path() -> Path:
    """``$NASX_CACHE`` if set, else ``scores.sqlite`` in the user cache directory."""
    if os.environ.get("NASX_CACHE"):
        return Path(os.environ["NASX_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nasx")) / "scores.sqlite"


class ScoreCache:
    """Persistent proxy scores. NaN and infinities are stored exactly (as text).

    Only the driver process writes it. A file cache runs in SQLite's WAL mode, so several nasx processes can share
    it, and commits in batches (at most every ``COMMIT_SECONDS``, and on ``commit``/``close``): a killed process
    loses at most those last seconds of scores.
    """

    COLUMNS = ("key", "score", "seconds")
    COMMIT_SECONDS = 2.0
    LOCKED_SECONDS = 120.0

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is None:
            self.db = sqlite3.connect(":memory:")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # another process may hold the write lock for a moment: wait for it instead of failing
                self.db = sqlite3.connect(self.path, timeout=self.LOCKED_SECONDS)
            except (OSError, sqlite3.Error) as exc:
                raise NasxError(f"cannot open the score cache {str(self.path)!r}: {exc}") from None
        columns = self._set_up()
        if columns != list(self.COLUMNS):
            self.db.close()
            raise NasxError(f"score cache {str(self.path)!r} is not a nasx score cache: move it away, or use "
                            "--cache PATH / --no-cache")
        # measured latencies (nasx.latency): a table of their own, keyed by everything that changes them
        self.db.execute("CREATE TABLE IF NOT EXISTS latencies (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
        self.db.commit()
        self.last_commit = time.monotonic()

    def _set_up(self) -> list[str]:
        """WAL and the scores table, then its columns ([] for a file that is no SQLite database). Two
        processes setting up one new file at once can be told 'locked' at once, without SQLite's wait (switching
        to WAL takes the file for itself): that is tried again for up to ``LOCKED_SECONDS``."""
        deadline = time.monotonic() + self.LOCKED_SECONDS
        while True:
            try:
                if self.path is not None:
                    self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score TEXT NOT NULL, "
                                "seconds REAL NOT NULL)")
                self.db.commit()
                return [row[1] for row in self.db.execute("PRAGMA table_info(scores)")]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    return []
                if time.monotonic() >= deadline:
                    self.db.close()
                    raise NasxError(f"score cache {str(self.path)!r} stayed locked by another process: {exc}") \
                        from None
                time.sleep(0.05)
            except sqlite3.DatabaseError:
                return []

    def get(self, key: str) -> tuple[float, float] | None:
        row = self.db.execute("SELECT score, seconds FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def put(self, key: str, score: float, seconds: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", (key, repr(float(score)), seconds))
        if time.monotonic() - self.last_commit >= self.COMMIT_SECONDS:
            self.commit()

    def get_latency(self, key: str) -> dict | None:
        row = self.db.execute("SELECT record FROM latencies WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_latency(self, key: str, record: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO latencies VALUES (?, ?)", (key, json.dumps(record)))
        self.commit()  # measurements are few and slow: keep each one

    def commit(self) -> None:
        self.db.commit()
        self.last_commit = time.monotonic()

    def close(self) -> None:
        try:
            self.db.commit()
        finally:
            self.db.close()


@dataclass
class Evaluation:
    """Scores of one genotype: proxy name -> score, with the recorded compute seconds of each, whether each came
    from the cache, and the error of each score that failed (NaN)."""

    key: str
    arch: str
    scores: dict[str, float]
    seconds: dict[str, float]
    cached: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def compute_seconds(self) -> float:
        return sum(self.seconds.values())


class Evaluator:
    """Scores genotypes of one space with a fixed list of proxies on a fixed input batch.

    Scores come from the cache where possible; the rest are computed by the executor (in this process by default,
    or by worker processes or a Dask cluster), on ``device``. Results are the same whatever the executor.
    """

    def __init__(
        self,
        space: Space,
        proxies: Sequence[Proxy],
        batch: "Batch | None",
        cache: ScoreCache | None = None,
        init: str = "kaiming",
        init_seed: int = 0,
        device: str = "cpu",
        executor: "Executor | None" = None,
        batch_archs: int = 1,
    ) -> None:
        from nasx.fusion import fusion_applies
        from nasx.scoring import ScoringSetup

        if not proxies:
            raise NasxError("at least one proxy is needed")
        if init not in INIT_SCHEMES:
            raise NasxError(f"unknown initialisation {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        if batch is None and any(p.needs_data for p in proxies):
            raise NasxError("a proxy needs input data but no batch was given")
        for proxy in proxies:
            problem = space.proxy_problem(proxy)
            if problem:
                raise NasxError(f"proxy '{proxy.name}' is not defined for space '{space.name}': {problem}")
        self.space = space
        self.proxies = list(proxies)
        self._proxy_by_name = {p.name: p for p in self.proxies}
        self.batch = batch
        self.cache = cache if cache is not None else ScoreCache(None)
        self.init = init
        self.init_seed = init_seed
        self.device = device
        if executor is None:
            from nasx.executors import SerialExecutor

            executor = SerialExecutor()
        self.executor = executor
        #: architectures scored in one fused pass (1 where the space or no proxy fuses; see nasx.fusion)
        self.batch_archs = batch_archs if fusion_applies(space, self.proxies) else 1
        self.setup = ScoringSetup(space, self.proxies, batch, init, init_seed, device)
        self._started = False
        #: proxy name -> [total seconds, scores computed] by this evaluator: how long its tasks are expected to take
        self._computed: dict[str, list[float]] = {}
        #: called with (arch, proxy name, error) for every score that failed
        self.on_error: Callable[[str, str, str], None] = _warn

    def cache_key(self, proxy: Proxy, arch: str) -> str:
        from nasx.scoring import device_type

        batch_id = self.batch.identity_of(proxy.batch_size) if proxy.needs_data and self.batch else "-"
        init = f"{self.init}:{self.init_seed}" if proxy.needs_network else "-"
        parts = [self.space.name, self.space.version, self.space.dataset, arch, proxy.name, proxy.version,
                 sorted(proxy.options.items()), batch_id, init]
        if proxy.needs_network and device_type(self.device) != "cpu":
            parts.append(device_type(self.device))  # CPU scores keep the keys they always had
        return json.dumps(parts, separators=(",", ":"))

    def evaluate(self, genotype: nx.DiGraph) -> Evaluation:
        """All proxies' scores for one genotype, from the cache where possible."""
        evaluation = self.evaluate_many([genotype])[0]
        assert evaluation is not None
        return evaluation

    def evaluate_many(
        self, genotypes: Sequence[nx.DiGraph], keep_going: Callable[[float], bool] | None = None
    ) -> list[Evaluation | None]:
        """Scores of several genotypes, in their order, computed concurrently by the executor.

        ``keep_going(seconds)`` is asked before each genotype with the compute seconds recorded so far by this
        call; once it says False no further genotype is started, and those not started are None. With
        ``batch_archs`` K > 1, genotypes that lack the same proxies, a fusable one among them, go to the executor
        K at a time, to be scored in one fused pass (the last tasks may hold fewer). The last genotypes of a call
        (up to twice the executor's workers less one) go to it one task per proxy, the longest first (by the
        seconds each proxy took so far, then by the genotype's FLOPs): the workers whole genotypes would leave idle
        in the last rounds score the other proxies (FreeREA's three children a step, naswot the longest of their
        proxies, take about 1.6 of a child's time on two workers, not 2); a worker that gets several of one
        genotype's tasks builds its network once (``ScoringSetup.keep_network``). These last genotypes are started
        together, when the first of them would be. A proxy's score does not depend on the proxies scored before it
        (each initialises the network afresh), so the scores are the same.
        """
        from dataclasses import replace

        from nasx.scoring import ScoreTask

        if not self._started:
            self.executor.start(self.setup)
            self._started = True
        results: list[Evaluation | None] = [None] * len(genotypes)
        partial: dict[int, Evaluation] = {}
        spent = [0.0]

        capacity = self.executor.capacity
        split_from = len(genotypes) - (2 * capacity - 1) if capacity > 1 else len(genotypes)

        def tasks():
            waiting: dict[tuple[str, ...], list[ScoreTask]] = {}  # missing proxies -> tasks to fuse
            last: list[ScoreTask] = []  # one proxy each, sent longest first once every genotype is started
            size: dict[int, float] = {}  # the FLOPs of their genotypes
            for number, genotype in enumerate(genotypes):
                if keep_going is not None and not keep_going(spent[0]):
                    break
                evaluation, missing = self._from_cache(genotype)
                if not missing:
                    results[number] = evaluation
                    spent[0] += evaluation.compute_seconds
                    continue
                partial[number] = evaluation
                task = ScoreTask(number, evaluation.arch, tuple(p.name for p in missing))
                if self.batch_archs == 1 or not any(p.fusable and p.needs_network for p in missing):
                    if number >= split_from:
                        last.extend(replace(task, proxies=(name,)) for name in task.proxies)
                        size[number] = self._flops(genotype)
                    else:
                        yield task
                    continue
                group = waiting.setdefault(task.proxies, [])
                group.append(task)
                if len(group) == self.batch_archs:
                    yield _together(waiting.pop(task.proxies))
            for group in waiting.values():  # started at their turn: the budget allowed them
                yield _together(group)
            yield from sorted(last, key=lambda task: (self._expected_seconds(task.proxies[0]), size[task.number]),
                              reverse=True)

        stream = self.executor.run(tasks())
        try:
            for task_result in stream:
                if task_result.fatal:
                    raise NasxError(task_result.fatal)
                for result in task_result.all():
                    evaluation = self._record(partial[result.number], result, spent)
                    if len(evaluation.scores) == len(self.proxies):  # every proxy's task is back
                        results[result.number] = self._in_order(partial.pop(result.number))
        finally:
            stream.close()
            self.cache.commit()
        return results

    def _record(self, evaluation: Evaluation, result: "TaskResult", spent: list[float]) -> Evaluation:
        """The evaluation with a task's scores added, which are cached (but for failed ones)."""
        for name, score in result.scores.items():
            proxy = self._proxy_by_name[name]
            evaluation.scores[name], evaluation.seconds[name] = score, result.seconds[name]
            evaluation.cached[name] = False
            spent[0] += result.seconds[name]
            computed = self._computed.setdefault(name, [0.0, 0])
            computed[0] += result.seconds[name]
            computed[1] += 1
            if name in result.errors:  # a failed score is not cached: a later run tries again
                evaluation.errors[name] = result.errors[name]
                self.on_error(evaluation.arch, name, result.errors[name])
            else:
                self.cache.put(self.cache_key(proxy, evaluation.arch), score, result.seconds[name])
        return evaluation

    def _flops(self, genotype: nx.DiGraph) -> float:
        """The genotype's FLOPs, which order the tasks of one proxy longest first (a proxy's time grows with them:
        for naswot on nats-tss, a correlation of 0.8); 0 where the space cannot say."""
        try:
            flops = float(self.space.cost(genotype).flops_m)
        except Exception:  # a third-party space's cost: ordering is no reason to fail
            return 0.0
        return flops if math.isfinite(flops) else 0.0

    def _expected_seconds(self, proxy: str) -> float:
        """The mean seconds of the proxy's scores computed so far; unknown ones count as the longest."""
        seconds, count = self._computed.get(proxy, (0.0, 0))
        return seconds / count if count else math.inf

    def _from_cache(self, genotype: nx.DiGraph) -> tuple[Evaluation, list[Proxy]]:
        arch = self.space.encode(genotype)
        evaluation = Evaluation(self.space.key(genotype), arch, {}, {}, {})
        missing = []
        for proxy in self.proxies:
            hit = self.cache.get(self.cache_key(proxy, arch))
            if hit is None:
                missing.append(proxy)
            else:
                evaluation.scores[proxy.name], evaluation.seconds[proxy.name] = hit
                evaluation.cached[proxy.name] = True
        if not missing:
            self._in_order(evaluation)
        return evaluation, missing

    def _in_order(self, evaluation: Evaluation) -> Evaluation:
        """Keep the proxies' order, whatever came from the cache."""
        evaluation.scores = {p.name: evaluation.scores[p.name] for p in self.proxies}
        evaluation.seconds = {p.name: evaluation.seconds[p.name] for p in self.proxies}
        return evaluation

    def close(self) -> None:
        """Close the cache; the executor belongs to whoever made it."""
        self.cache.close()


def _together(tasks: list["ScoreTask"]) -> "ScoreTask":
    """One task of several architectures: the first carries the others."""
    from dataclasses import replace

    return replace(tasks[0], more=tuple(tasks[1:]))


def _warn(arch: str, proxy: str, error: str) -> None:
    logging.getLogger("nasx").warning("%s failed on %s: %s (scored NaN)", proxy, arch, error)
