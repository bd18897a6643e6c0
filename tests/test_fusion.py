"""Fused scoring through the evaluator, the API and the command line: tasks of K architectures, scores and searches
that do not depend on K, one architecture at a time wherever fusion does not apply or fails, the cache per
architecture, compute seconds split evenly, and ``auto``."""

import logging
import math
import random
import subprocess
import sys

import pytest

import nasx
from nasx.errors import NasxError
from nasx.evaluator import Evaluator
from nasx.executors import SerialExecutor
from nasx.fusion import CPU_AUTO, MAX_AUTO, MEMORY_SHARE, model_bytes, resolve_batch_archs
from nasx.settings import Execution
from nasx.testing.toy import BitSpace, OnesProxy

def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


needs_cuda = pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
SPACE = {"space": "nats-tss", "dataset": "ImageNet16-120"}  # 16 x 16 images: the same networks, four times cheaper
QUICK = {"repeats": 1, "naswot.batch_size": 8}
PROXIES = ["naswot", "logsynflow", "skip"]
RELATIVE = {"naswot": 1e-5, "logsynflow": 1e-9, "synflow": 1e-9}


def archs(count: int, seed: int = 0) -> list[str]:
    from nasx_nats.tss import NatsTopologySpace

    space, rng = NatsTopologySpace(), random.Random(seed)
    return [space.encode(space.sample(rng)) for _ in range(count)]


def close(found: dict, wanted: dict) -> bool:
    def one(name, a, b):
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            return a == b or (a != a and b != b)
        return abs(a - b) <= RELATIVE.get(name, 0.0) * abs(b)

    return found.keys() == wanted.keys() and all(one(name, found[name], wanted[name]) for name in found)


@pytest.mark.parametrize("value", [0, -2, 2.5, True, "two", "", None])
def test_batch_archs_must_be_a_positive_integer_or_auto(value):
    with pytest.raises(NasxError, match="--batch-archs must be a positive integer or 'auto'"):
        Execution(batch_archs=value)


def test_batch_archs_from_the_command_line_is_a_number_or_auto():
    assert Execution(batch_archs="4").batch_archs == 4 and Execution().batch_archs == "auto"
    failed = subprocess.run([sys.executable, "-m", "nasx_cli.main", "score", "--arch", archs(1)[0], "--proxy",
                             "skip", "--batch-archs", "0"], capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr.strip() == "nasx: error: --batch-archs must be a positive integer or 'auto', got 0"


def test_auto_scores_one_architecture_at_a_time_on_the_cpu():
    from nasx.data import synthetic_batch
    from nasx_nats.tss import NatsTopologySpace
    from nasx_proxies.naswot import NASWOT

    space = NatsTopologySpace()
    batch = synthetic_batch(space.input_shape, space.num_classes)
    assert resolve_batch_archs("auto", space, [NASWOT()], batch, "cpu") == CPU_AUTO == 1
    assert resolve_batch_archs(6, space, [NASWOT()], batch, "cpu") == 6
    # no space that fuses, or no proxy that does: one at a time whatever was asked
    assert Evaluator(BitSpace(), [OnesProxy()], None, batch_archs=8).batch_archs == 1
    assert resolve_batch_archs("auto", space, [OnesProxy()], batch, "cuda") == 1


def test_auto_on_a_gpu_fills_a_share_of_its_free_memory(monkeypatch):
    """From torch.cuda.mem_get_info (stubbed here) and the estimate of one architecture's memory, which grows with
    the images the proxies read."""
    import torch

    from nasx.data import synthetic_batch
    from nasx_nats.tss import NatsTopologySpace
    from nasx_proxies.naswot import NASWOT
    from nasx_proxies.synflow import LogSynflow

    space = NatsTopologySpace()
    batch = synthetic_batch(space.input_shape, space.num_classes)
    proxies = [NASWOT(batch_size=64), LogSynflow()]
    estimate = model_bytes(space, proxies, batch)
    assert estimate > 0
    assert estimate == 4 * model_bytes(space, [NASWOT(batch_size=16), LogSynflow()], batch)
    free = 40 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    assert resolve_batch_archs("auto", space, proxies, batch, "cuda") == min(MAX_AUTO, int(MEMORY_SHARE * free
                                                                                             / estimate))
    # three worker processes scoring on the same GPU share it
    assert resolve_batch_archs("auto", space, proxies, batch, "cuda", sharing=3) == min(
        MAX_AUTO, int(MEMORY_SHARE * free / estimate / 3))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (estimate, 2 * free))
    assert resolve_batch_archs("auto", space, proxies, batch, "cuda") == 1


class Recording(SerialExecutor):
    """The serial executor, keeping how many architectures each task carried."""

    name = "recording"

    def __init__(self, **options):
        super().__init__(**options)
        self.sizes = []

    def run(self, tasks):
        for task in tasks:
            self.sizes.append(len(task.all()))
            yield from super().run([task])


def test_results_do_not_depend_on_the_architectures_per_pass():
    """A fusable proxy per pass, the others one architecture at a time in the same task (jacob_cov needs a network
    but does not fuse; skip needs none): every score as with K = 1, K = 5 not dividing the 7 architectures."""
    chosen = archs(7)
    proxies = ["naswot", "logsynflow", "jacob_cov", "skip"]
    options = {**QUICK, "jacob_cov.batch_size": 8}
    plain = nasx.score(chosen, **SPACE, proxies=proxies, options=options, cache=False, threads=1, batch_archs=1)
    with Recording(threads=1) as executor:  # an executor given as an instance is closed by its owner
        fused = nasx.score(chosen, **SPACE, proxies=proxies, options=options, cache=False, executor=executor,
                           batch_archs=5)
    assert executor.sizes == [5, 2]
    for a, b in zip(fused, plain):
        assert a["arch"] == b["arch"] and close(a["scores"], b["scores"]), (a["scores"], b["scores"])
    # a pass's seconds are split evenly among its architectures
    for name in ("naswot", "logsynflow"):
        assert len({record["seconds"][name] for record in fused[:5]}) == 1
        assert fused[5]["seconds"][name] == fused[6]["seconds"][name]


def test_only_architectures_that_lack_the_same_fusable_proxies_share_a_pass(tmp_path):
    cache = tmp_path / "scores.sqlite"
    chosen = archs(6, seed=1)
    nasx.score(chosen[:2], **SPACE, proxies=["naswot"], options=QUICK, cache=cache, threads=1, batch_archs=1)
    with Recording(threads=1) as executor:
        records = nasx.score(chosen, **SPACE, proxies=["naswot", "skip"], options=QUICK, cache=cache,
                             executor=executor, batch_archs=4)
    assert sorted(executor.sizes) == [1, 1, 4]  # two lack skip only (no fusable proxy): one at a time
    # every architecture is cached on its own: nothing is computed again, with any K
    again = nasx.score(chosen, **SPACE, proxies=["naswot", "skip"], options=QUICK, cache=cache, threads=1,
                       batch_archs=1)
    assert all(record["cached"] for record in again)
    assert [r["scores"] for r in again] == [r["scores"] for r in records]


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_search_finds_the_same_with_and_without_batch_archs(executor):
    run = dict(**SPACE, proxies=PROXIES, search="freerea", max_evals=14, seed=3, cache=False,
               options={**QUICK, "freerea.population_size": 6, "freerea.sample_size": 3})
    plain = nasx.run(**run, threads=1, batch_archs=1)
    fused = nasx.run(**run, executor=executor, **({"workers": 2} if executor == "process" else {"threads": 1}),
                     batch_archs=4)
    assert (fused.batch_archs, plain.batch_archs) == (4, 1)
    assert fused.arch == plain.arch
    assert [h["arch"] for h in fused.history] == [h["arch"] for h in plain.history]
    assert all(close(a["scores"], b["scores"]) for a, b in zip(fused.history, plain.history))


class BrokenFusion(nasx.Proxy):
    """naswot, whose fused pass raises."""

    name = "broken-fusion"
    needs_data = True
    fusable = True
    defaults = {"batch_size": 8, "repeats": 1}

    def score_network(self, network, batch, space):
        from nasx_proxies.naswot import NASWOT

        return NASWOT(repeats=1).score_network(network, batch, space)

    def score_fused(self, network, batch, space):
        raise RuntimeError("no fused pass today")


class AloneFirst(BrokenFusion):
    """naswot, whose fused pass leaves its first architecture to be scored alone."""

    name = "alone-first"
    calls = []

    def score_network(self, network, batch, space):
        AloneFirst.calls.append("alone")
        return super().score_network(network, batch, space)

    def score_fused(self, network, batch, space):
        from nasx_proxies.naswot import NASWOT

        AloneFirst.calls.append("fused")
        return [None, *NASWOT(repeats=1).score_fused(network, batch, space)[1:]]


def test_what_the_fused_pass_cannot_score_is_scored_one_at_a_time(caplog):
    chosen = archs(3, seed=2)
    plain = nasx.score(chosen, **SPACE, proxies=["naswot"], options=QUICK, cache=False, threads=1)
    with caplog.at_level(logging.WARNING, logger="nasx"):
        broken = nasx.score(chosen, **SPACE, proxies=[BrokenFusion, AloneFirst], cache=False, threads=1,
                            batch_archs=3)
    assert "broken-fusion on a fused network failed (RuntimeError: no fused pass today" in caplog.text
    assert AloneFirst.calls == ["fused", "alone"]
    for a, b in zip(broken, plain):
        assert a["scores"]["broken-fusion"] == b["scores"]["naswot"]
        assert close({"naswot": a["scores"]["alone-first"]}, b["scores"])
        assert not a["errors"]


def test_the_contracts_catch_a_fused_network_or_score_in_the_wrong_order():
    """SpaceContract and ProxyContract compare fused networks and scores with each genotype's own; a space whose
    fused network gives its models' weights to one another, and a proxy that returns its fused scores in
    the wrong order, fail them."""
    from nasx.data import synthetic_batch
    from nasx.testing.contracts import ProxyContract, SpaceContract
    from nasx_nats.tss import NatsTopologySpace
    from nasx_proxies.naswot import NASWOT

    class SwappedWeights(NatsTopologySpace):
        def build_fused(self, genotypes):
            network = super().build_fused(genotypes)
            blocks = network.blocks
            network.blocks = lambda module: None if blocks(module) is None else blocks(module)[::-1]
            return network

    class ReversedScores(NASWOT):
        def score_fused(self, network, batch, space):
            return super().score_fused(network, batch, space)[::-1]

    space = NatsTopologySpace(dataset="ImageNet16-120")
    batch = synthetic_batch(space.input_shape, space.num_classes, size=8)
    SpaceContract().test_a_fused_network_computes_each_genotypes_network(space)
    ProxyContract().test_fused_scores_are_those_of_each_network(NASWOT(batch_size=8), space, batch)
    with pytest.raises(AssertionError):
        SpaceContract().test_a_fused_network_computes_each_genotypes_network(
            SwappedWeights(dataset="ImageNet16-120"))
    with pytest.raises(AssertionError):
        ProxyContract().test_fused_scores_are_those_of_each_network(ReversedScores(batch_size=8), space, batch)


@needs_cuda
@pytest.mark.parametrize("space", ["nats-tss", "nats-sss"])
def test_fused_scores_on_a_gpu_are_those_of_one_at_a_time(space):
    """On the GPU the grouped convolutions may round otherwise than one network's: naswot within tests/test_cuda's
    tolerance (1e-3 absolute: a code may flip where an activation rounds across zero), the float64 proxies to
    1e-8."""
    from nasx.plugins import Plugins

    genotypes = Plugins().get("space", space)(dataset="ImageNet16-120")
    rng = random.Random(5)
    chosen = [genotypes.encode(genotypes.sample(rng)) for _ in range(9)]
    if space == "nats-tss":
        chosen[0] = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    run = dict(space=space, dataset="ImageNet16-120", proxies=["naswot", "logsynflow", "synflow", "skip"],
               options=QUICK, cache=False, device="cuda")
    plain = nasx.score(chosen, **run, batch_archs=1)
    fused = nasx.score(chosen, **run, batch_archs=4)
    for a, b in zip(fused, plain):
        for name in ("logsynflow", "synflow", "skip"):
            assert close({name: a["scores"][name]}, {name: b["scores"][name]}), (name, a["arch"])
        first, second = a["scores"]["naswot"], b["scores"]["naswot"]
        assert first == second or abs(first - second) <= 1e-3, (a["arch"], first, second)


@needs_cuda
def test_auto_fuses_on_a_gpu():
    result = nasx.run(**SPACE, proxies=PROXIES, search="random", max_evals=6, options=QUICK, cache=False,
                      device="cuda")
    assert result.batch_archs > 1
