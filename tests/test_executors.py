"""Executors: the same results serially, in worker processes and on Dask; dead workers, failed scores, budgets,
a shared cache, and whole-space scoring that resumes after kill -9."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nasx
from nasx import BudgetExhausted, Proxy
from nasx.errors import NasxError
from nasx.evaluator import Evaluator, ScoreCache
from nasx.executors import SerialExecutor
from nasx.scoring import run_task
from nasx.search import Budget, SearchContext
from nasx.testing.contracts import SumCombiner
from nasx.testing.toy import BitSpace, OnesProxy

QUICK = {"naswot.batch_size": 16, "repeats": 1}
PROXIES = ["naswot", "logsynflow", "skip"]


def history(result):
    return [(h["arch"], h["scores"]) for h in result.to_dict()["history"]]


@pytest.fixture(scope="module")
def serial_result():
    # one torch thread, as each worker has: thread counts change float32 reductions in the last digits
    return nasx.run(proxies=PROXIES, options=QUICK, max_evals=10, seed=5, cache=False, threads=1)


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_same_seed_same_architectures_and_scores_with_two_workers(serial_result, executor):
    result = nasx.run(proxies=PROXIES, options=QUICK, max_evals=10, seed=5, cache=False, executor=executor,
                      workers=2)
    assert result.arch == serial_result.arch
    assert history(result) == history(serial_result)
    assert "2 workers" in result.executor


def test_dask_local_cluster_is_started_and_stopped():
    from nasx.plugins import Plugins

    executor = Plugins().get("executor", "dask")(workers=2)
    result = nasx.run(proxies=["skip", "params"], max_evals=6, cache=False, executor=executor)
    assert result.evaluated == 6 and executor.client is not None
    assert len(executor.client.scheduler_info()["workers"]) == 2
    executor.close()
    assert executor.client is None and executor.cluster is None


class KillOnce(Proxy):
    """Kills the worker scoring ``victim`` the first time (a marker file remembers), as a crash would."""

    name = "kill-once"
    needs_network = False
    defaults = {"marker": "", "victim": "", "always": False}

    def score_genotype(self, space, genotype):
        arch = space.encode(genotype)
        if arch == self.options["victim"]:
            marker = Path(self.options["marker"])
            if self.options["always"] or not marker.exists():
                marker.write_text("killed")
                os.kill(os.getpid(), signal.SIGKILL)
        return float(len(arch))


def victim_arch(seed=3):
    """An architecture the random search with this seed scores (its third)."""
    return history(nasx.run(proxies=["skip"], search="random", max_evals=3, seed=seed, cache=False))[2][0]


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_a_worker_killed_mid_task_loses_nothing(tmp_path, executor):
    victim = victim_arch()
    killer = KillOnce(marker=str(tmp_path / "marker"), victim=victim)
    result = nasx.run(proxies=["skip", killer], search="random", max_evals=8, seed=3, cache=False,
                      executor=executor, workers=2)
    assert (tmp_path / "marker").exists()  # the victim's worker was really killed
    assert result.evaluated == 8
    scores = dict(history(result))
    assert scores[victim]["kill-once"] == len(victim)  # its task was run again elsewhere
    assert all(s is not None for entry in scores.values() for s in entry.values())


def test_a_task_whose_worker_dies_twice_is_a_failed_score(tmp_path):
    victim = victim_arch()
    killer = KillOnce(marker=str(tmp_path / "marker"), victim=victim, always=True)
    result = nasx.run(proxies=["skip", killer], search="random", max_evals=8, seed=3, cache=False,
                      executor="process", workers=2)
    failed = [h for h in result.history if h["errors"]]
    assert [h["arch"] for h in failed] == [victim]
    assert "died twice" in failed[0]["errors"]["kill-once"] and math.isnan(failed[0]["scores"]["kill-once"])
    assert result.evaluated == 8 and sum(1 for h in result.history if not h["errors"]) == 7


class RaisesOnConvs(Proxy):
    name = "raises-on-convs"
    needs_network = False

    def score_genotype(self, space, genotype):
        if "conv_3x3" in space.encode(genotype):
            raise RuntimeError("boom")
        return 1.0


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_score_that_raises_is_nan_with_its_error_and_not_cached(tmp_path, executor, caplog):
    cache = tmp_path / "scores.sqlite"
    result = nasx.run(proxies=["skip", RaisesOnConvs], search="random", max_evals=10, seed=0, cache=cache,
                      executor=executor, workers=2 if executor == "process" else None)
    failed = [h for h in result.history if h["errors"]]
    assert failed and all("conv_3x3" in h["arch"] for h in failed)
    assert all("RuntimeError: boom" in h["errors"]["raises-on-convs"] for h in failed)
    assert all(math.isnan(h["scores"]["raises-on-convs"]) and h["scores"]["skip"] >= 0 for h in failed)
    assert sum("scored NaN" in r.getMessage() for r in caplog.records) == len(failed)
    with sqlite3.connect(cache) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM scores")]
    # the other scores are stored, the failed ones are not (a later run tries them again)
    assert sum('"skip"' in k for k in keys) == 10
    assert sum('"raises-on-convs"' in k for k in keys) == 10 - len(failed)


def test_evaluate_many_keeps_order_scores_duplicates_once_and_respects_max_evals():
    space = BitSpace(dataset="toy")
    evaluator = Evaluator(space, [OnesProxy()], None)
    context = SearchContext(space, evaluator, SumCombiner(), [], Budget(max_evals=4), seed=0)
    genotypes = [space.decode(text) for text in ("11000000", "11100000", "11000000", "00000001", "10101010",
                                                 "11111111", "00000011")]
    with pytest.raises(BudgetExhausted):
        context.evaluate_many(genotypes)
    assert [e.arch for e in context.explored.values()] == ["11000000", "11100000", "00000001", "10101010"]
    assert context.stop_reason == "max-evals"
    # explored genotypes come back without any budget
    again = context.evaluate_many(genotypes[:3])
    assert [e.arch for e in again] == ["11000000", "11100000", "11000000"]


def test_evaluate_many_starts_nothing_once_the_time_budget_is_spent():
    space = BitSpace(dataset="toy")

    class Slow(OnesProxy):
        def score_genotype(self, space, genotype):
            time.sleep(0.05)
            return super().score_genotype(space, genotype)

    evaluator = Evaluator(space, [Slow()], None)
    context = SearchContext(space, evaluator, SumCombiner(), [], Budget(max_time=0.12), seed=0)
    with pytest.raises(BudgetExhausted):
        context.evaluate_many([space.sample(context.rng) for _ in range(20)])
    assert 2 <= len(context.explored) <= 4 and context.stop_reason == "max-time"


def nasx_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "nasx_cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_processes_share_one_cache_file(tmp_path):
    cache = tmp_path / "scores.sqlite"
    both = [nasx_cli("score", "--all", "--proxy", "params", "--proxy", "skip", "--cache", str(cache), "-q")
            for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    for process, (out, err) in zip(both, outputs):
        assert process.returncode == 0, err
        assert "locked" not in err and out.count("\n") == 15625
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 2 * 15625


def stored(cache: Path) -> int:
    try:
        with sqlite3.connect(cache, timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_whole_space_scoring_resumes_after_kill_9(tmp_path):
    cache = tmp_path / "scores.sqlite"
    args = ["score", "--all", "--proxy", "synflow", "-o", "repeats=1", "--cache", str(cache), "-q", "--threads", "1"]
    first = nasx_cli(*args)
    deadline = time.monotonic() + 300
    while stored(cache) < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = stored(cache)
    assert 20 <= kept < 15625
    second = nasx_cli(*args)
    records = [json.loads(second.stdout.readline()) for _ in range(kept + 1)]
    second.kill()
    second.wait()
    # every score stored before the kill comes from the cache; the first one missing is computed
    assert all(r["cached"] for r in records[:kept])
    assert not records[kept]["cached"]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_running_dask_cluster_started_by_hand(serial_result):
    """The README's recipe: `dask scheduler`, `dask worker`, then nasx with --scheduler (on loopback)."""
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    host, port = address[6:].split(":")
    scheduler = subprocess.Popen([dask, "scheduler", "--host", host, "--port", port, "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        result = nasx.run(proxies=PROXIES, options=QUICK, max_evals=10, seed=5, cache=False, executor="dask",
                          scheduler=address, threads=1)
    finally:
        for process in (workers, scheduler):
            process.terminate()
            process.wait(timeout=60)
    assert address in result.executor
    assert history(result) == history(serial_result)


def test_serial_threads_are_given_back_after_the_call():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        nasx.run(proxies=["skip"], max_evals=2, cache=False, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class LeadingOnes(Proxy):
    name = "toy-leading-ones"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        arch = space.encode(genotype)
        return float(len(arch) - len(arch.lstrip("1")))


class TwoWorkersInOne(SerialExecutor):
    """Serial, but with the capacity of two workers; keeps the tasks it is given."""

    def __init__(self, **options):
        super().__init__(**options)
        self.tasks = []

    @property
    def capacity(self) -> int:
        return 2

    def run(self, tasks):
        for task in tasks:
            self.tasks.append((task.number, task.proxies))
            yield run_task(self.setup, task)


class SlowZeros(Proxy):
    name = "toy-slow-zeros"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        time.sleep(0.01)  # far longer than the other toy proxies
        return float(space.encode(genotype).count("0"))


def test_the_last_architectures_of_a_call_go_to_idle_workers_one_proxy_a_task_longest_first_with_the_same_scores():
    space = BitSpace(dataset="toy")
    genotypes = [space.decode(text) for text in ("11000000", "11100000", "00000001", "10101010", "01111111")]
    proxies = [LeadingOnes(), SlowZeros()]
    names = tuple(p.name for p in proxies)
    two = TwoWorkersInOne()
    evaluator = Evaluator(space, proxies, None, executor=two)
    # nothing timed yet: the three architectures (2 x 2 workers - 1) go one proxy a task, the most FLOPs first
    # (BitSpace: one per bit set)
    first = evaluator.evaluate_many(genotypes[:3])
    assert two.tasks == [(n, (name,)) for n in (1, 0, 2) for name in names]
    # five: two whole, then the last three's slow proxy before any of their quick ones, each the most FLOPs first
    two.tasks.clear()
    evaluator.cache = ScoreCache(None)  # score them again
    split = evaluator.evaluate_many(genotypes)
    assert two.tasks == [(0, names), (1, names), (4, names[1:]), (3, names[1:]), (2, names[1:]),
                         (4, names[:1]), (3, names[:1]), (2, names[:1])]
    whole = Evaluator(space, proxies, None).evaluate_many(genotypes)
    assert [e.scores for e in split] == [e.scores for e in whole]
    assert [e.scores for e in first] == [e.scores for e in whole[:3]]
    assert [list(e.scores) for e in split] == [list(names)] * 5  # in the proxies' order, whatever came back first
    assert split[2].scores == {"toy-leading-ones": 0.0, "toy-slow-zeros": 7.0}


class CountedBuilds(BitSpace):
    """Bits as the input of one linear layer; counts the networks it builds."""

    def __init__(self, **options):
        super().__init__(**options)
        self.builds = 0

    def build(self, genotype):
        import torch

        self.builds += 1
        return torch.nn.Linear(self.length, self.num_classes)


class OutputSum(Proxy):
    name = "toy-output-sum"
    needs_network = True

    def score_network(self, network, batch, space) -> float:
        import torch

        with torch.no_grad():
            return float(network(torch.ones(space.length)).sum())


class WeightNorm(OutputSum):
    name = "toy-weight-norm"

    def score_network(self, network, batch, space) -> float:
        return float(network.weight.detach().norm())


def test_a_worker_builds_a_network_once_for_the_tasks_of_its_architecture_with_the_same_scores():
    space = CountedBuilds(dataset="toy")
    genotypes = [space.decode(text) for text in ("11000000", "11100000", "00000001")]
    two = TwoWorkersInOne()  # one "worker" here gets every task
    split = Evaluator(space, [OutputSum(), WeightNorm()], None, executor=two).evaluate_many(genotypes)
    assert len(two.tasks) == 6, "one task per proxy"
    assert space.builds == 3, "each architecture's network built once"
    alone = CountedBuilds(dataset="toy")
    whole = [Evaluator(alone, [proxy], None).evaluate_many(genotypes) for proxy in (OutputSum(), WeightNorm())]
    assert alone.builds == 6
    assert [e.scores for e in split] == [{**a.scores, **b.scores} for a, b in zip(*whole)]


def test_a_worker_keeps_only_the_last_few_networks_and_never_sends_them_on():
    from nasx.scoring import NETWORKS_KEPT, ScoringSetup

    setup = ScoringSetup(BitSpace(dataset="toy"), [OnesProxy()], None)
    for number in range(NETWORKS_KEPT + 2):
        setup.keep_network(f"arch{number}", object())
    assert list(setup._kept) == [f"arch{n}" for n in range(2, NETWORKS_KEPT + 2)]
    assert setup.kept_network("arch0") is None and setup.kept_network("arch2") is not None
    import pickle

    copy = pickle.loads(pickle.dumps(setup))
    assert copy._kept == {}, "kept networks never travel to other workers"
    copy.keep_network("arch", "network")  # with a lock of its own
    assert copy.kept_network("arch") == "network" and setup.kept_network("arch") is None


class FrozenObjects(Proxy):
    """Scores every architecture with the number of objects its process's cyclic collector leaves alone."""

    name = "toy-frozen-objects"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        import gc

        return float(gc.get_freeze_count())


def test_a_worker_freezes_what_it_inherits():
    result = nasx.run(proxies=[FrozenObjects()], search="random", max_evals=2, seed=0, cache=False,
                      executor="process", workers=2)
    # torch alone makes well over 50,000 objects at its import
    assert all(h["scores"]["toy-frozen-objects"] > 50_000 for h in result.to_dict()["history"])


class ForkserverPreloaded(Proxy):
    """1 where the process scoring it was forked from a forkserver that imported nasx._forkserver, else 0."""

    name = "toy-forkserver-preloaded"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        import sys

        return float("nasx._forkserver" in sys.modules)


#: a script's opening lines that record the generation of every collection the cyclic collector starts in ``seen``
COLLECTIONS_SEEN = ("import gc, sys\nseen = []\n"
                    "gc.callbacks.append(lambda phase, info: phase == 'start' and seen.append(info['generation']))\n")


@pytest.mark.parametrize("enabled", [True, False])
def test_torch_is_imported_with_the_collector_paused_then_left_as_it_was(enabled):
    script = (COLLECTIONS_SEEN + ("" if enabled else "gc.disable()\n") +
              "from nasx.scoring import import_torch\nseen.clear()\nimport_torch()\nduring = list(seen)\n"
              "print(during, 'torch' in sys.modules, gc.isenabled())")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # Without the pause: hundreds of collections, full ones among them. With it: at most the one collection of the
    # young objects that the first allocation after the import starts (while the collector is on).
    assert shown.stdout.strip() in ((f"[] True {enabled}", f"[0] True {enabled}") if enabled else
                                    (f"[] True {enabled}",))


def test_the_forkserver_imports_with_the_collector_paused_then_freezes_what_it_imported():
    script = (COLLECTIONS_SEEN + "import nasx.scoring\nseen.clear()\nimport nasx._forkserver\nduring = len(seen)\n"
              "print(during, 'torch' in sys.modules, 'networkx' in sys.modules, gc.isenabled(), "
              "gc.get_freeze_count() > 50_000)")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["0", "True", "True", "True", "True"]


def test_workers_are_forked_from_a_forkserver_that_preloaded_nasx():
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform has no forkserver: each worker is spawned and imports torch itself")
    result = nasx.run(proxies=[ForkserverPreloaded()], search="random", max_evals=2, seed=0, cache=False,
                      executor="process", workers=2)
    assert [h["scores"]["toy-forkserver-preloaded"] for h in result.to_dict()["history"]] == [1.0, 1.0]


def test_a_command_with_worker_processes_does_not_import_torch_itself():
    """The synthetic batch is drawn where it is used: the command's own process only directs the workers."""
    script = ("import sys, nasx; nasx.run(proxies=['naswot', 'skip'], max_evals=3, cache=False, executor='process', "
              "workers=2, threads=1, options={'naswot.batch_size': 16}); print('torch' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


def test_the_forkserver_starts_early_only_for_worker_processes():
    # multiprocessing keeps the forkserver's pid in a private field: the only way to see it has started
    script = ("import sys; from multiprocessing import forkserver; from nasx._build import start_workers_early; "
              "from nasx.settings import Execution; start_workers_early(Execution(executor=sys.argv[1])); "
              "print(forkserver._forkserver._forkserver_pid is not None)")
    for executor, started in (("serial", "False"), ("process", "True")):
        shown = subprocess.run([sys.executable, "-c", script, executor], capture_output=True, text=True, check=True)
        assert shown.stdout.strip() == started, executor


def test_a_command_starts_its_workers_before_it_imports_numpy_networkx_or_torch():
    """The forkserver's import of torch is the longest step before the first score: the command starts it
    before its own heavy imports, which then overlap it."""
    script = ("import sys; import nasx_cli.main as main; seen = []\n"
              "main.start_workers_early = lambda settings: seen.append(sorted(m for m in ('numpy', 'networkx', "
              "'torch') if m in sys.modules))\n"
              "main.cli(['run', '--proxy', 'skip', '--max-evals', '2', '--no-cache', '--executor', 'serial', "
              "'--quiet'], standalone_mode=False)\n"
              "print(seen)")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip().splitlines()[-1] == "[[]]"


class LockedAtFirst:
    """A connection to which the switch to WAL answers 'database is locked' the first ``times`` times, at once, as
    SQLite does to a second process setting up the same new file."""

    def __init__(self, connection, times):
        self.connection, self.times = connection, times

    def execute(self, sql, *args):
        if sql.startswith("PRAGMA journal_mode") and self.times:
            self.times -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.connection.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.connection, name)


@pytest.mark.parametrize("times", [3, 10**9])
def test_a_cache_file_another_process_is_setting_up_is_waited_for_then_refused(tmp_path, monkeypatch, times):
    import nasx.evaluator as evaluator

    real_connect = sqlite3.connect
    monkeypatch.setattr(evaluator.sqlite3, "connect", lambda *a, **k: LockedAtFirst(real_connect(*a, **k), times))
    monkeypatch.setattr(evaluator.ScoreCache, "LOCKED_SECONDS", 0.5)
    if times == 3:  # set up once the other process is done
        cache = evaluator.ScoreCache(tmp_path / "scores.sqlite")
        cache.put("k", 1.0, 0.1)
        assert cache.get("k") == (1.0, 0.1)
        cache.close()
    else:
        with pytest.raises(NasxError, match="stayed locked by another process"):
            evaluator.ScoreCache(tmp_path / "scores.sqlite")


@pytest.mark.parametrize("guarded", [False, True])
def test_a_script_without_a_main_guard_gets_the_reason_not_nan_scores(tmp_path, guarded):
    """Workers import the script that started them again; without `if __name__ == "__main__":` that import runs
    the search again and every worker dies as it starts. That is one clear error, not a NaN for every cell."""
    call = ("nasx.run(space=BitSpace, dataset='toy', proxies=[OnesProxy], max_evals=4, cache=False, "
            "executor='process', workers=2, threads=1)")
    body = f"if __name__ == '__main__':\n    print({call}.evaluated)\n" if guarded else f"{call}\n"
    script = tmp_path / "search.py"
    script.write_text(f"import nasx\nfrom nasx.testing.toy import BitSpace, OnesProxy\n{body}")
    shown = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    if guarded:
        assert shown.returncode == 0 and shown.stdout.strip() == "4", shown.stderr
    else:
        assert shown.returncode != 0
        last = shown.stderr.strip().splitlines()[-1]
        assert last.startswith("nasx.errors.NasxError: a worker process died as it started"), last
        assert 'if __name__ == "__main__":' in last and "scored NaN" not in shown.stderr
