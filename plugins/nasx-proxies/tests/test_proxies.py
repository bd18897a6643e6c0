import csv
import math
import gzip
import random

import pytest
from scipy.stats import spearmanr

from nasx.data import load_images, synthetic_batch
from nasx.evaluator import Evaluator
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.naswot import NASWOT
from nasx_proxies.skip import Skip
from nasx_proxies.synflow import LogSynflow, Synflow


@pytest.mark.parametrize(
    "arch, expected",
    [
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 0.0),
        ("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", 2.0),  # input -> output: the maximum
        ("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|", 0.0),
        ("|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|none~2|", 1.0),  # (0 + 1 + 2) / 3
    ],
)
def test_skip_counts_skipped_layers_per_skip(space, arch, expected):
    assert Skip().score_genotype(space, space.decode(arch)) == expected


def test_naswot_equals_the_direct_definition(space):
    """log|det K| with K_ij = N_A - Hamming(c_i, c_j), computed naively from the concatenated codes."""
    import torch

    from nasx.torch_utils import initialise

    batch = synthetic_batch(space.input_shape, space.num_classes).take(16)
    network = space.build(space.sample(random.Random(1)))
    initialise(network, "kaiming", seed=0)
    codes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: codes.append((o > 0).flatten(1).double()))
        for m in network.modules()
        if isinstance(m, torch.nn.ReLU)
    ]
    with torch.no_grad():
        network.train()(batch.images)
    for hook in hooks:
        hook.remove()
    code = torch.cat(codes, dim=1)
    hamming = code @ (1 - code).T + (1 - code) @ code.T
    expected = torch.linalg.slogdet(code.shape[1] - hamming).logabsdet.item()
    initialise(network, "kaiming", seed=0)
    assert NASWOT(repeats=1).score_network(network, batch, space) == pytest.approx(expected, rel=1e-6)


def test_naswot_leaves_the_shared_network_in_its_layout(space):
    """naswot runs channels-last; the evaluator hands the same network to the next proxy, which must get it back
    in the default layout (or its float32 results would depend on which proxies ran before it)."""
    import torch

    batch = synthetic_batch(space.input_shape, space.num_classes).take(8)
    network = space.build(space.sample(random.Random(2)))
    NASWOT(repeats=1).score_network(network, batch, space)
    weights = [p for p in network.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous() for p in weights)


def test_synflow_of_a_linear_layer():
    """For y = W x with x = 1 and R = sum(y): dR/dW = 1, so synflow = sum|W| and logsynflow = log 2 * sum|W|."""
    import math

    import torch

    from nasx_proxies.synflow import synflow_score

    layer = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False))
    total = layer[1].weight.abs().sum().item()
    assert synflow_score(layer, (4,), use_log=False) == pytest.approx(total)
    assert synflow_score(layer, (4,), use_log=True) == pytest.approx(total * math.log(2))


def freerea_reference(data_dir, dataset):
    with gzip.open(data_dir / "nats_tss_freerea_proxies.csv.gz", "rt") as handle:
        return {int(row["index"]): row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("dataset", ["cifar10", "ImageNet16-120"])
def test_scores_rank_like_freerea(data_dir, dataset):
    """Spearman >= 0.95 against FreeREA's cached values on 200 fixed architectures.

    One initialisation per score (FreeREA averages three), so this is the stricter check. cifar10 uses the
    real CIFAR-10 images; ImageNet16-120 (no images available) the synthetic batch.
    """
    space = NatsTopologySpace(dataset=dataset)
    reference = freerea_reference(data_dir, dataset)
    if dataset == "cifar10":
        batch = load_images(data_dir / "cifar10_test_512_jpeg.npz", dataset)
    else:
        batch = synthetic_batch(space.input_shape, space.num_classes)
    proxies = [NASWOT(repeats=1), LogSynflow(repeats=1), Synflow(repeats=1)]
    evaluator = Evaluator(space, proxies, batch)
    indices = random.Random(2024).sample(range(len(space)), 200)
    ours = [evaluator.evaluate(space.genotype_at(i)).scores for i in indices]
    for proxy in proxies:
        theirs = [float(reference[i][f"{dataset}_{proxy.name}"]) for i in indices]
        rho = spearmanr([s[proxy.name] for s in ours], theirs)[0]
        assert rho >= 0.95, f"{proxy.name}: Spearman {rho:.3f}"


NASLIB_COLUMNS = {"snip": "snip", "grasp": "grasp", "fisher": "fisher", "grad_norm": "grad_norm",
                  "jacob_cov": "jacov", "synflow": "synflow", "naswot": "nwot"}


def test_scores_rank_like_nas_bench_suite_zero(data_dir):
    """Spearman >= 0.9 against NAS-Bench-Suite-Zero's values for the seven proxies both implement.

    cifar10 rows (real CIFAR-10 images are available only for cifar10), a fixed subset of 150 of the 724 to
    keep the suite short; docs/results.md reports all rows of the three datasets. PyTorch's default
    initialisation, as NASLib's networks use it, one initialisation per score.

    GraSP is the exception: it is not reproducible across initialisations (nasx's own GraSP with init seeds 0
    and 1 has Spearman 0.74 on 80 of these cells, with two different batches 0.78), so agreement with another
    implementation's single draw is bounded near that (benchmarks/exploratory/grasp_stability.py); it is held to
    >= 0.6 here.
    """
    from nasx_proxies.gradients import Fisher, Grasp, GradNorm, Snip
    from nasx_proxies.jacobian import JacobCov

    with gzip.open(data_dir / "naslib_zc_nb201_subset.csv.gz", "rt") as handle:
        rows = [row for row in csv.DictReader(handle) if row["dataset"] == "cifar10"]
    rows = random.Random(7).sample(rows, 150)
    space = NatsTopologySpace(dataset="cifar10")
    batch = load_images(data_dir / "cifar10_test_512_jpeg.npz", "cifar10")
    proxies = [Snip(), Grasp(), Fisher(), GradNorm(), JacobCov(), Synflow(repeats=1), NASWOT(repeats=1)]
    evaluator = Evaluator(space, proxies, batch, init="pytorch")
    ours = [evaluator.evaluate(space.decode(row["arch"])).scores for row in rows]
    for proxy in proxies:
        pairs = [(s[proxy.name], float(r[NASLIB_COLUMNS[proxy.name]] or "nan")) for s, r in zip(ours, rows)]
        pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        assert len(pairs) >= 140, f"{proxy.name}: {150 - len(pairs)} non-finite scores"
        rho = spearmanr(*zip(*pairs))[0]
        assert rho >= (0.6 if proxy.name == "grasp" else 0.9), f"{proxy.name}: Spearman {rho:.3f} against NASLib"
