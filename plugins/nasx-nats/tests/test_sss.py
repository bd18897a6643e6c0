"""NATS-Bench size space: codec, operators, official order, networks and costs against the official API."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasx.errors import InvalidGenotype, NasxError
from nasx.interfaces import Task
from nasx.testing.contracts import SpaceContract
from nasx_nats.sss import CHANNELS, NUM_BLOCKS, NatsSizeSpace

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
channels_strategy = st.tuples(*[st.sampled_from(CHANNELS) for _ in range(NUM_BLOCKS)])
seeds = st.integers(min_value=0, max_value=2**32 - 1)
FAKE_INDICES = (0, 11, 284)


@pytest.fixture(scope="module")
def sss():
    return NatsSizeSpace(dataset="cifar10")


@pytest.fixture(scope="module")
def fake_dir(data_dir):
    return data_dir / "nats_fake_torch_dir" / "NATS-sss-v1_0-50262-simple"


@pytest.fixture(scope="module")
def api(fake_dir):
    import nats_bench

    return nats_bench.create(str(fake_dir), "sss", fast_mode=True, verbose=False)


class TestContract(SpaceContract):
    @pytest.fixture
    def space(self, sss):
        return sss


@given(channels_strategy)
def test_codec_round_trips(channels):
    space = NatsSizeSpace(dataset="cifar10")
    genotype = space.from_channels(channels)
    assert space.channels(space.decode(space.encode(genotype))) == channels
    assert space.encode(genotype) == ":".join(map(str, channels))


@given(seeds)
def test_samples_are_channel_configurations_that_round_trip(seed):
    space = NatsSizeSpace(dataset="cifar10")
    genotype = space.sample(random.Random(seed))
    channels = space.channels(genotype)
    assert len(channels) == NUM_BLOCKS and all(c in CHANNELS for c in channels)
    assert space.encode(genotype) == ":".join(map(str, channels))
    again = space.decode(space.encode(genotype))
    assert space.key(again) == space.key(genotype) and space.channels(again) == channels
    assert space.channels(space.genotype_at(space.index_of(genotype))) == channels
    assert space.encode(space.sample(random.Random(seed))) == space.encode(genotype)


@given(channels_strategy, channels_strategy)
def test_keys_identify_channel_configurations(first, second):
    space = NatsSizeSpace(dataset="cifar10")
    keys = [space.key(space.from_channels(channels)) for channels in (first, second)]
    assert (keys[0] == keys[1]) == (first == second)
    assert keys[0] == space.key(space.decode(":".join(map(str, first))))  # the key of the string, too


def test_sampling_is_uniform_over_channels():
    """Each block's channels are uniform over the eight sizes, independently (chi-square over 2000 draws)."""
    from scipy.stats import chisquare

    space = NatsSizeSpace(dataset="cifar10")
    rng = random.Random(0)
    draws = [space.channels(space.sample(rng)) for _ in range(2000)]
    for block in range(NUM_BLOCKS):
        counts = [sum(d[block] == c for d in draws) for c in CHANNELS]
        assert chisquare(counts).pvalue > 1e-3, (block, counts)
    # independence: the pair (block 0, block 4) is uniform over its 64 values
    pairs = [sum((d[0], d[4]) == (a, b) for d in draws) for a in CHANNELS for b in CHANNELS]
    assert chisquare(pairs).pvalue > 1e-3


@given(seeds)
def test_mutation_changes_exactly_one_block(seed):
    space = NatsSizeSpace(dataset="cifar10")
    rng = random.Random(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    assert sum(a != b for a, b in zip(space.channels(parent), space.channels(child))) == 1


@given(seeds)
def test_crossover_takes_each_block_from_a_parent(seed):
    space = NatsSizeSpace(dataset="cifar10")
    rng = random.Random(seed)
    first, second = space.sample(rng), space.sample(rng)
    child = space.channels(space.crossover(first, second, rng))
    assert all(c in pair for c, pair in zip(child, zip(space.channels(first), space.channels(second))))


@given(st.integers(min_value=0, max_value=8**5 - 1))
def test_index_round_trips(index):
    space = NatsSizeSpace(dataset="cifar10")
    assert space.index_of(space.genotype_at(index)) == index


def test_enumeration_is_the_official_order(api, sss):
    assert len(sss) == len(api) == 32768
    for index in (*FAKE_INDICES, *random.Random(0).sample(range(len(sss)), 300), len(sss) - 1):
        assert sss.encode(sss.genotype_at(index)) == api.arch(index)


@pytest.mark.parametrize("bad", ["8:8:8:8", "8:8:8:8:9", "a:b:c:d:e", "8:8:8:8:72", ""])
def test_malformed_strings_are_refused(sss, bad):
    with pytest.raises(InvalidGenotype):
        sss.decode(bad)


@pytest.mark.parametrize("dataset", DATASETS)
def test_costs_equal_the_official_api(api, dataset):
    space = NatsSizeSpace(dataset=dataset)
    for index in FAKE_INDICES:
        info = api.get_cost_info(index, dataset, hp="90")
        cost = space.cost(space.genotype_at(index))
        assert cost.params_m == pytest.approx(info["params"], abs=1e-6)
        assert cost.flops_m == pytest.approx(info["flops"], abs=1e-6)


@pytest.mark.parametrize("dataset", DATASETS)
def test_network_params_equal_the_cost_model(dataset):
    import torch

    space = NatsSizeSpace(dataset=dataset)
    rng = random.Random(1)
    for genotype in [space.sample(rng) for _ in range(5)] + [space.decode("64:8:64:8:64")]:
        network = space.build(genotype)
        assert sum(p.numel() for p in network.parameters()) == round(space.cost(genotype).params_m * 1e6)
        side = space.input_shape[1]
        assert network(torch.randn(2, 3, side, side)).shape == (2, space.num_classes)


def test_same_channels_give_the_topology_network_of_the_fixed_cell():
    # With equal channels, a size-space network is the topology space's network of the fixed cell with one cell
    # per stage: check one such parameter count by hand (8 channels, CIFAR-10: 11714, the official value).
    space = NatsSizeSpace(dataset="cifar10")
    stem, cell, reduction = 27 * 8 + 16, 5 * (9 * 64 + 16), 2 * (9 * 64 + 16) + 64
    assert round(space.cost(space.decode("8:8:8:8:8")).params_m * 1e6) == stem + 3 * cell + 2 * reduction + 16 + 90


@pytest.mark.parametrize("dataset", DATASETS)
def test_official_oracle_reads_90_epoch_results(fake_dir, api, dataset):
    space = NatsSizeSpace(dataset=dataset, benchmark_dir=str(fake_dir))
    oracle = space.oracle(None)
    for index in FAKE_INDICES:
        genotype = space.genotype_at(index)
        expected = api.get_more_info(index, dataset, hp="90", is_random=False)["test-accuracy"]
        assert oracle.test_accuracy(genotype) == pytest.approx(expected)
    if dataset == "cifar10":
        assert oracle.test_accuracy(space.decode("8:8:8:8:8")) == pytest.approx(79.79)


def test_missing_record_is_a_clear_error(fake_dir):
    space = NatsSizeSpace(dataset="cifar10", benchmark_dir=str(fake_dir))
    with pytest.raises(NasxError, match="no NATS-Bench record of 64:64:64:64:64"):
        space.oracle(None).test_accuracy(space.decode("64:64:64:64:64"))


def test_no_official_files_means_no_ground_truth(data_dir, tmp_path):
    space = NatsSizeSpace(dataset="cifar10")
    assert space.oracle(None) is None
    assert space.oracle(tmp_path) is None
    # the three-architecture test copy is used only when named
    assert space.oracle(data_dir) is None


def test_skip_proxy_sees_the_fixed_cells_skip(sss):
    """NATS-Bench's fixed cell has one skip connection, input -> output, over the two intermediate nodes: the skip
    proxy scores 2 for every channel configuration, as it scores that cell in the topology space."""
    from nasx.evaluator import Evaluator
    from nasx.plugins import Plugins

    skip = Plugins().get("proxy", "skip")()
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    tss = Plugins().get("space", "nats-tss")(dataset="cifar10")
    assert skip.score_genotype(tss, tss.decode(cell)) == 2.0
    evaluator = Evaluator(sss, [skip], None)
    rng = random.Random(0)
    for genotype in [sss.sample(rng) for _ in range(5)]:
        evaluation = evaluator.evaluate(genotype)
        assert not evaluation.errors and evaluation.scores == {"skip": 2.0}, evaluation


# own data: the space built for other classes and input sizes ---------------------------------------------------


class TestAdaptedContract(SpaceContract):
    samples = 5

    @pytest.fixture
    def space(self, sss):
        return sss.for_data(Task("photos", 37, (3, 24, 40)))


@pytest.mark.parametrize("classes, shape", [(37, (3, 64, 64)), (10, (3, 24, 24)), (5, (3, 16, 40))])
def test_adapted_cost_counts_the_built_network(sss, classes, shape):
    from nasx.testing.counting import check_adapted_cost

    check_adapted_cost(sss, classes, shape)


@given(channels_strategy)
def test_categorical_encoding_is_one_gene_per_block(channels):
    space = NatsSizeSpace(dataset="cifar10")
    values = space.to_categorical(space.from_channels(channels))
    assert values == {f"block_{i}": c for i, c in enumerate(channels)}
    assert space.channels(space.from_categorical(values)) == tuple(channels)
    assert space.categorical() == [(f"block_{i}", CHANNELS) for i in range(NUM_BLOCKS)]
    with pytest.raises(InvalidGenotype):
        space.from_categorical({**values, "block_0": 12})
