"""Scoring on a CUDA device: the same initial weights as on the CPU, every proxy's score equal to its CPU score
within float32 rounding, process workers that each use the GPU, and GPU scores cached apart from CPU scores.

The tests that need CUDA run wherever it is present and are skipped where it is absent; the others check what
happens without it. torch is imported inside the tests, so this module imports on any machine.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

import nasx
from nasx import Proxy
from nasx.errors import NasxError


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


CUDA = _cuda_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
without_cuda = pytest.mark.skipif(CUDA, reason="checks the error of a machine without CUDA")

# Small options keep the CPU side of each comparison quick: 16 images, one initialisation per score. ni's default
# noise seed (0) draws exactly the synthetic batch's images (both are torch.randn from seed 0), so its noisy batch
# is 2X and BatchNorm makes the two passes equal up to rounding; seed 1 gives ni something to measure.
QUICK = {"batch_size": 16, "repeats": 1, "ni.noise_seed": 1}
TSS_CELLS = [  # the first three are random.Random(0).sample(range(15625), 3); the tolerances were measured on all
    "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|",
    "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|skip_connect~2|",
    "|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # a cell with no path: NaN and infinite scores
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|avg_pool_3x3~2|",  # no conv in cells
]
OTHER_SPACES = {"nats-sss": ["8:16:24:32:64"], "nb101": ["input;conv3x3-bn-relu:0;maxpool3x3:0,1;output:1,2"]}

# Largest |GPU - CPU| / |CPU| accepted per proxy. Each is about 30 times (rounded up) the largest float32 rounding
# error of the CPU score on these cells, measured on the CPU as |float32 score - float64 score| (the same network
# and batch in double precision): jacob_cov 6.7e-6, snip 1.1e-4, grad_norm 2.4e-4, grasp 1.9e-4, ntk 3.5e-4,
# fisher 8.3e-4 (all worst on nb101), ni 2.4e-8. A GPU sums in another order (and may use other convolution
# algorithms), so its own rounding error is of that size. Scoring with other weights, as a device bug that broke
# the initialisation would, breaks every tolerance here (init seed 1 instead of 0 on TSS_CELLS[1]: jacob_cov moves
# by 6.7e-4, logsynflow 8.6e-4, pathnorm 1.5e-3, the others by 4 % or more), except nregions'. TF32 convolutions
# (cuDNN's default on Ampere and newer GPUs), emulated on the CPU, move grasp by up to 9e-2, ntk 2.3e-2 and
# jacob_cov 7e-4 on these cells: failures of those three mean that TF32 is on. synflow, logsynflow and pathnorm
# compute in float64 (rounding near 1e-15); params, flops and skip build no network and must be equal.
# Same rule for the newer proxies: meco 5.8e-8 and meco_opt 3.5e-7, gradsign 6.9e-5, zen 6.9e-8, az_expressivity
# 2.0e-8, az_progressivity 2.5e-6, az_trainability 9.5e-5, vkdnw 4.8e-4, vkdnw_single 2.7e-6 (nb101). zico's
# terms (|a| + |b|) / |a - b| over two mini-batches are heavy-tailed: a few weights with nearly equal gradients
# dominate a layer, so float32 moves it by up to 4.3e-3 (an H100 moved it by 1.2e-2 on the nats-sss cell).
RELATIVE = {"jacob_cov": 2e-4, "snip": 5e-3, "grad_norm": 1e-2, "grasp": 1e-2, "ntk": 2e-2, "fisher": 5e-2,
            "ni": 1e-4, "synflow": 1e-8, "logsynflow": 1e-8, "pathnorm": 1e-8, "params": 0.0, "flops": 0.0,
            "skip": 0.0, "layers": 0.0, "meco": 2e-6, "meco_opt": 1e-5, "gradsign": 3e-3, "zen": 3e-6,
            "zico": 0.15, "az_expressivity": 1e-6, "az_progressivity": 1e-4, "az_trainability": 3e-3,
            "az_complexity": 0.0, "vkdnw": 2e-2, "vkdnw_single": 1e-4}
# naswot is a log-determinant near 150-220: float32 rounding moves it by up to 1e-5 on these cells, TF32 by up to
# 7e-4, other weights by 0.1 (a ReLU input that rounds across zero changes one count of about 1e5).
ABSOLUTE = {"naswot": 1e-3}
# nregions counts distinct ReLU codes of 1000 patches: a code bit flips only for a pre-activation within rounding
# of zero, and each flip changes the count by at most one; none did in float32 or TF32 on these cells. (Nearly
# every patch is its own region here, 997 of 1000, so this mostly checks that it runs on the GPU.)
# swap counts distinct activation patterns of units the same way (identical counts in float32, float64 and on an
# H100 on these cells); a flip moves a unit from one pattern to another, changing the count by at most one.
COUNT_SLACK = {"nregions": 2, "swap": 16}
# epsilon in float32 is ill-conditioned (constant weights of 1e-7): its CPU float32 score is up to 1.6e-2 off its
# float64 score on these cells, and NaN where float64 is finite. Its float64 variant is compared at 1e-8 instead;
# the float32 one must only score without an error.
UNCOMPARED = {"epsilon"}


def proxy_names() -> list[str]:
    from nasx.plugins import Plugins

    return sorted(Plugins().names("proxy"))


def agree(proxy: str, cpu: float, gpu: float, relative: dict[str, float] = RELATIVE) -> bool:
    """NaN only with NaN, an infinity only with the same infinity, else within the proxy's tolerance."""
    if math.isnan(cpu) or math.isnan(gpu):
        return math.isnan(cpu) and math.isnan(gpu)
    if math.isinf(cpu) or math.isinf(gpu):
        return cpu == gpu
    if proxy in ABSOLUTE:
        return abs(gpu - cpu) <= ABSOLUTE[proxy]
    if proxy in COUNT_SLACK:
        return abs(gpu - cpu) <= COUNT_SLACK[proxy]
    return abs(gpu - cpu) <= relative[proxy] * abs(cpu)


def test_every_proxy_has_a_tolerance():
    """A new proxy must be given its tolerance here, or the CUDA comparison would skip it."""
    known = set(RELATIVE) | set(ABSOLUTE) | set(COUNT_SLACK) | UNCOMPARED
    assert set(proxy_names()) <= known, f"no CUDA tolerance for {sorted(set(proxy_names()) - known)}"


def test_cuda_scores_are_cached_under_their_own_key():
    """CPU scores keep the keys they always had; scores of networks on a CUDA device (any of them: cuda:1 rounds
    like cuda) get another key, and genotype-only proxies share theirs. Needs no GPU: no score is computed."""
    from nasx.data import synthetic_batch
    from nasx.evaluator import Evaluator
    from nasx.plugins import Plugins

    plugins = Plugins()
    space = plugins.get("space", "nats-tss")()
    naswot, skip = plugins.get("proxy", "naswot")(), plugins.get("proxy", "skip")()
    batch = synthetic_batch(space.input_shape, space.num_classes)
    keys = {device: Evaluator(space, [naswot, skip], batch, device=device) for device in ("cpu", "cuda", "cuda:1")}
    arch = TSS_CELLS[0]
    assert keys["cpu"].cache_key(naswot, arch) != keys["cuda"].cache_key(naswot, arch)
    assert keys["cuda"].cache_key(naswot, arch) == keys["cuda:1"].cache_key(naswot, arch)
    assert len({evaluator.cache_key(skip, arch) for evaluator in keys.values()}) == 1
    assert "cuda" not in keys["cpu"].cache_key(naswot, arch)


@without_cuda
def test_asking_for_cuda_without_it_is_a_one_line_error():
    with pytest.raises(NasxError) as raised:
        nasx.score([TSS_CELLS[0]], proxies=["naswot"], device="cuda", cache=False)
    message = str(raised.value)
    assert "CUDA is not available" in message and "\n" not in message
    command = subprocess.run([sys.executable, "-m", "nasx_cli.main", "score", "--arch", TSS_CELLS[0], "--proxy",
                              "naswot", "--device", "cuda", "--no-cache"], capture_output=True, text=True)
    assert command.returncode == 2
    assert command.stderr.strip().splitlines() == [f"nasx: error: {message}"]


# ----------------------------------------------------------------------------------------------------------------
# with CUDA


class WeightsProbe(Proxy):
    """Keeps (device type, a CPU copy of the state dict) of every network it is given; scores 0."""

    name = "weights-probe"
    defaults = {"repeats": 2}
    seen: list = []

    def score_network(self, network, batch, space) -> float:
        weights = {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()}
        WeightsProbe.seen.append((next(network.parameters()).device.type, weights))
        return 0.0


@needs_cuda
@pytest.mark.parametrize("init", ["kaiming", "pytorch"])
@pytest.mark.parametrize("space, arch", [("nats-tss", TSS_CELLS[0]), *((s, a[0]) for s, a in OTHER_SPACES.items())])
def test_a_seed_gives_the_same_initial_weights_on_cuda_as_on_the_cpu(space, arch, init):
    import torch

    seen = {}
    for device in ("cpu", "cuda"):
        WeightsProbe.seen.clear()
        nasx.score([arch], space=space, proxies=[WeightsProbe], init=init, init_seed=3, device=device, cache=False)
        seen[device] = list(WeightsProbe.seen)
    assert [where for where, _ in seen["cpu"]] == ["cpu", "cpu"]
    assert [where for where, _ in seen["cuda"]] == ["cuda", "cuda"]  # the proxy really got the GPU's network
    for (_, cpu), (_, gpu) in zip(seen["cpu"], seen["cuda"]):
        assert cpu.keys() == gpu.keys()
        different = [name for name in cpu if not torch.equal(cpu[name], gpu[name])]
        assert not different, f"weights differ on cuda: {different[:5]}"
    first, second = (weights for _, weights in seen["cuda"])  # the two repeats are two initialisations
    assert any(not torch.equal(first[name], second[name]) for name in first if name.endswith("weight"))


@needs_cuda
@pytest.mark.parametrize("scheme", ["kaiming", "pytorch"])
def test_initialising_a_network_on_cuda_draws_the_cpu_weights(scheme):
    """initialise() on a network already on the GPU (as a plugin might call it) gives the CPU's weights, and the
    pytorch scheme leaves the CUDA generator as it was."""
    import torch

    from nasx.plugins import Plugins
    from nasx.torch_utils import initialise

    space = Plugins().get("space", "nats-tss")()
    on_cpu = space.build(space.decode(TSS_CELLS[1]))
    on_gpu = space.build(space.decode(TSS_CELLS[1])).cuda()
    initialise(on_cpu, scheme, seed=7)
    generator_state = torch.cuda.get_rng_state()
    initialise(on_gpu, scheme, seed=7)
    assert torch.equal(torch.cuda.get_rng_state(), generator_state)
    gpu_weights = on_gpu.state_dict()
    assert all(gpu_weights[name].is_cuda and torch.equal(tensor, gpu_weights[name].cpu())
               for name, tensor in on_cpu.state_dict().items())


def _scores(space: str, archs: list[str], device: str, proxies: list[str], options: dict) -> list[dict]:
    return nasx.score(archs, space=space, proxies=proxies, options=options, device=device, cache=False)


def _compare(space: str, archs: list[str], proxies: list[str], options: dict,
             relative: dict[str, float] = RELATIVE, uncompared: set[str] = UNCOMPARED) -> None:
    cpu = _scores(space, archs, "cpu", proxies, options)
    gpu = _scores(space, archs, "cuda", proxies, options)
    problems = []
    for arch, on_cpu, on_gpu in zip(archs, cpu, gpu):
        for proxy in proxies:
            x, y = on_cpu["scores"][proxy], on_gpu["scores"][proxy]
            # a proxy that raises is scored NaN with its error: NaN on both devices is no agreement then
            failed = [f"{proxy} fails on {device}: {record['errors'][proxy]} ({arch})"
                      for device, record in (("cpu", on_cpu), ("cuda", on_gpu)) if proxy in record["errors"]]
            if failed:
                problems.extend(failed)
            elif proxy not in uncompared and not agree(proxy, x, y, relative):
                problems.append(f"{proxy}: cpu {x!r}, cuda {y!r}, relative {abs(y - x) / abs(x or 1):.1e} ({arch})")
    assert not problems, "\n".join(problems)


@needs_cuda
@pytest.mark.parametrize("space, archs", [("nats-tss", TSS_CELLS), *OTHER_SPACES.items()])
def test_every_proxy_scores_on_cuda_as_on_the_cpu(space, archs):
    _compare(space, archs, proxy_names(), QUICK)


@needs_cuda
def test_epsilon_in_double_precision_scores_on_cuda_as_on_the_cpu():
    """epsilon's float32 scores are too ill-conditioned to compare (see UNCOMPARED); in float64 they are not."""
    _compare("nats-tss", TSS_CELLS, ["epsilon"], {"batch_size": 16, "epsilon.double": True},
             relative={"epsilon": 1e-8}, uncompared=set())


class DeviceProbe(Proxy):
    """The scoring process's id when its network and batch are on a CUDA device, else -1."""

    name = "device-probe"
    needs_data = True

    def score_network(self, network, batch, space) -> float:
        on_gpu = next(network.parameters()).is_cuda and batch.images.is_cuda
        return float(os.getpid()) if on_gpu else -1.0


@needs_cuda
def test_each_process_worker_scores_on_the_gpu():
    archs = TSS_CELLS[:4]
    records = nasx.score(archs, proxies=[DeviceProbe], device="cuda", executor="process", workers=2, cache=False)
    processes = {record["scores"]["device-probe"] for record in records}
    assert -1.0 not in processes and float(os.getpid()) not in processes
    assert len(processes) == 2  # both workers scored (each was handed a task before any finished)


@needs_cuda
def test_process_workers_on_cuda_find_what_a_serial_search_on_cuda_finds():
    run = dict(proxies=["naswot", "logsynflow", "skip"], options={"naswot.batch_size": 16, "repeats": 1},
               max_evals=10, seed=5, cache=False, device="cuda", threads=1)
    serial = nasx.run(**run)
    workers = nasx.run(**run, executor="process", workers=2)
    assert workers.device == serial.device == "cuda" and "2 workers" in workers.executor
    assert workers.arch == serial.arch
    assert [h["arch"] for h in workers.history] == [h["arch"] for h in serial.history]
    for mine, theirs in zip(workers.history, serial.history):  # the same GPU, kernels and inputs
        for proxy, score in theirs["scores"].items():
            assert agree(proxy, score, mine["scores"][proxy]), (proxy, score, mine["scores"][proxy])


@needs_cuda
def test_cuda_scores_do_not_replay_cpu_scores_from_the_cache(tmp_path):
    cache = tmp_path / "scores.sqlite"
    arch, options = TSS_CELLS[0], {"naswot.batch_size": 16, "repeats": 1}
    on_cpu = nasx.score([arch], proxies=["naswot", "skip"], options=options, cache=cache, device="cpu")[0]
    on_gpu = nasx.score([arch], proxies=["naswot", "skip"], options=options, cache=cache, device="cuda")[0]
    again = nasx.score([arch], proxies=["naswot", "skip"], options=options, cache=cache, device="cuda:0")[0]
    assert not on_cpu["cached"] and not on_gpu["cached"]  # naswot was computed on the GPU, not replayed
    assert again["cached"] and again["scores"] == on_gpu["scores"]  # cuda:0 finds cuda's scores


@needs_cuda
def test_a_missing_cuda_device_number_is_a_one_line_error():
    import torch

    missing = torch.cuda.device_count()
    with pytest.raises(NasxError, match=f"only {missing} CUDA device"):
        nasx.score([TSS_CELLS[0]], proxies=["naswot"], device=f"cuda:{missing}", cache=False)

