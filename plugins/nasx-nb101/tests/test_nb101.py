"""NAS-Bench-101 space: hashes, parameters and accuracies against the benchmark's table, operators, networks."""

import csv
import gzip
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasx.errors import InvalidGenotype, NasxError
from nasx.testing.contracts import SpaceContract
from nasx_nb101.cell import MAX_EDGES, MAX_VERTICES, OPS, module_hash, params_and_flops, problem
from nasx_nb101.space import Nb101Space

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module")
def nb101():
    return Nb101Space(dataset="cifar10")


@pytest.fixture(scope="module")
def table_sample(data_dir):
    """Every 211th row of the table (about 2000 cells)."""
    with gzip.open(data_dir / "nb101.csv.gz", "rt") as handle:
        return [row for i, row in enumerate(csv.DictReader(handle)) if i % 211 == 0]


def row_cell(row):
    n = int(row["num_vertices"])
    return np.array([int(c) for c in row["adjacency"]], dtype=np.int8).reshape(n, n), row["ops"].split(",")


@pytest.fixture(scope="module")
def oracle(nb101, data_dir):
    return nb101.oracle(data_dir)


class TestContract(SpaceContract):
    @pytest.fixture
    def space(self, nb101):
        return nb101


def test_table_rows_hash_to_their_hash(table_sample):
    assert len(table_sample) > 1900
    for row in table_sample:
        assert module_hash(*row_cell(row)) == row["hash"], row["index"]


def test_hash_equals_nasbench_pytorch(table_sample):
    # nasbench-pytorch ships the benchmark's graph_util: an independent implementation of the same hash.
    from nasbench_pytorch.model import graph_util

    for row in table_sample[:300]:
        matrix, ops = row_cell(row)
        labeling = [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]
        assert graph_util.hash_module(matrix, labeling) == module_hash(matrix, ops)


def test_cost_model_gives_the_benchmarks_params(table_sample, nb101):
    for row in table_sample:
        genotype = nb101.from_cell(*row_cell(row))
        assert round(nb101.cost(genotype).params_m * 1e6) == int(row["params"]), row["index"]


def test_hash_and_params_agree_with_nas_bench_suite_zero(data_dir, nb101):
    # NASLib's own cell encoding (its vertex order, op codes) and parameter counts: an independent source.
    naslib_ops = ["input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu"]
    with gzip.open(data_dir / "naslib_zc_nb101_subset.csv.gz", "rt") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 500
    for row in rows:
        values = [int(v) for v in row["naslib_arch"].strip("()").split(",")]
        genotype = nb101.from_cell(np.array(values[:49]).reshape(7, 7), [naslib_ops[v] for v in values[49:]])
        assert nb101.key(genotype) == row["hash"]
        assert nb101.cost(genotype).params_m == pytest.approx(float(row["params"]), abs=1e-6)


def test_network_has_the_benchmarks_params(table_sample, nb101):
    for row in table_sample[::100]:
        network = nb101.build(nb101.from_cell(*row_cell(row)))
        assert sum(p.numel() for p in network.parameters()) == int(row["params"]), row["index"]


def test_placeholders_are_what_nasbench_pytorch_adds(table_sample):
    # The reason for the difference: one scalar parameter per unused slot of each module.
    from nasbench_pytorch.model import Network
    from nasbench_pytorch.model.model import Placeholder

    matrix, ops = row_cell(table_sample[0])
    network = Network((matrix.astype(np.int64), ops))
    placeholders = sum(1 for m in network.modules() if isinstance(m, Placeholder))
    assert placeholders > 0
    assert sum(p.numel() for p in network.parameters()) == int(table_sample[0]["params"]) + placeholders


def test_network_runs_and_flops_count_the_convolutions(nb101):
    import torch

    genotype = nb101.decode("input;conv3x3-bn-relu:0;output:1")
    network = nb101.build(genotype)
    assert network(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # stem 3x3 conv at 32x32; stacks at 32/16/8 px with 128/256/512 channels, each module a 1x1 projection then
    # a 3x3 conv; the dense layer.
    expected = 27 * 128 * 32 * 32
    channels_in, side = 128, 32
    for stack, channels in enumerate((128, 256, 512)):
        side = 32 >> stack
        for _ in range(3):
            expected += (channels_in * channels + 9 * channels * channels) * side * side
            channels_in = channels
    expected += 512 * 10 + 10
    assert nb101.cost(genotype).flops_m == pytest.approx(expected / 1e6)
    _, flops = params_and_flops(*nb101.cell(genotype))
    assert flops == expected


def test_oracle_reads_the_table(nb101, oracle, table_sample):
    assert len(oracle.table) == 423624
    for row in table_sample[::50]:
        genotype = nb101.from_cell(*row_cell(row))
        assert oracle.test_accuracy(genotype) == pytest.approx(float(row["test_acc"]) * 100)
        assert round(nb101.cost(genotype).params_m * 1e6) == int(row["params"])
    arch, accuracy = oracle.optimum([])
    assert accuracy == pytest.approx(94.3176, abs=1e-3)
    assert nb101.key(nb101.decode(arch)) == "02e5a0247bbdcf2860b7e96f74961594"


def test_constrained_optimum_is_feasible_and_no_better(nb101, oracle):
    from nasx.constraints import MaxParams

    limit = MaxParams(limit=1.0)
    arch, accuracy = oracle.optimum([limit])
    assert nb101.cost(nb101.decode(arch)).params_m <= 1.0
    assert accuracy <= oracle.optimum([])[1]


def test_table_lookup_stays_compact(data_dir):
    # The whole table in numpy arrays: a few tens of MB, far below 300 MB.
    from nasx_nb101.oracle import Nb101Table

    table = Nb101Table(data_dir / "nb101.csv.gz")
    size = sum(a.nbytes for a in (table.hashes, table.accuracy, table.params, table.adjacency, table.ops))
    assert size < 50e6


def test_sampled_cells_are_in_the_table(nb101, oracle):
    rng = random.Random(0)
    for _ in range(200):
        oracle.table.position(nb101.key(nb101.sample(rng)))  # raises when the hash is not one of the 423624


def test_isomorphic_cells_share_a_key(nb101):
    a = nb101.decode("input;conv3x3-bn-relu:0;maxpool3x3:0;output:1,2")
    b = nb101.decode("input;maxpool3x3:0;conv3x3-bn-relu:0;output:1,2")
    assert nb101.encode(a) != nb101.encode(b) and nb101.key(a) == nb101.key(b)


@pytest.mark.parametrize("text, message", [
    ("input;conv3x3-bn-relu:0;output:0,1;x:1", "not a NAS-Bench-101 cell"),
    ("input;conv5x5:0;output:1", "unknown operation 'conv5x5'"),
    ("input;conv3x3-bn-relu:1;output:1", "takes inputs from 0..0 only"),
    ("input;" + ";".join(f"maxpool3x3:{v - 1}" for v in range(1, 8)) + ";output:7", "more than 7 vertices"),
    ("input;conv3x3-bn-relu:0;conv3x3-bn-relu:0,1;conv3x3-bn-relu:0,1,2;conv3x3-bn-relu:0,1,2,3;output:0,1,2,3,4",
     "15 edges"),
])
def test_bad_cells_are_refused(nb101, text, message):
    with pytest.raises(InvalidGenotype, match=message):
        nb101.decode(text)


def test_a_cell_whose_input_misses_the_output_is_refused(nb101):
    matrix = np.zeros((3, 3), dtype=np.int8)
    matrix[1, 2] = 1  # vertex 1 feeds the output, but nothing leaves the input
    with pytest.raises(InvalidGenotype, match="not connected"):
        nb101.from_cell(matrix, ["input", "conv3x3-bn-relu", "output"])


def test_dangling_vertices_are_pruned(nb101):
    # Vertex 2 feeds nothing that reaches the output: it is dropped, as the benchmark does.
    genotype = nb101.decode("input;conv3x3-bn-relu:0;conv1x1-bn-relu:0;output:1")
    assert nb101.encode(genotype) == "input;conv3x3-bn-relu:0;output:1"


def test_skip_edges_jump_over_vertices(nb101):
    genotype = nb101.decode("input;conv3x3-bn-relu:0;maxpool3x3:1;output:0,2")
    assert nb101.skip_edges(genotype) == [(0, 3)]


def _assert_valid(space, genotype):
    matrix, ops = space.cell(genotype)
    assert problem(matrix, ops) is None
    assert len(ops) <= MAX_VERTICES and matrix.sum() <= MAX_EDGES
    assert space.decode(space.encode(genotype)).edges == genotype.edges


def _assert_samples_round_trip(space, seed):
    genotype = space.sample(random.Random(seed))
    _assert_valid(space, genotype)
    matrix, ops = space.cell(genotype)
    assert not np.any(np.tril(matrix)) and ops[0] == "input" and ops[-1] == "output"
    again = space.decode(space.encode(genotype))
    assert space.encode(again) == space.encode(genotype) and space.key(again) == space.key(genotype)
    assert space.key(genotype) == module_hash(matrix, ops)
    assert space.encode(space.sample(random.Random(seed))) == space.encode(genotype)  # the seed reproduces it


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_spec_samples_are_valid_cells_that_round_trip(seed):
    _assert_samples_round_trip(Nb101Space(dataset="cifar10"), seed)


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_table_samples_are_valid_cells_that_round_trip(data_dir, seed):
    _assert_samples_round_trip(Nb101Space(dataset="cifar10", sampling="cells"), seed)  # NASX_DATA is data_dir


def _single_changes(matrix, ops):
    """Module hashes of every cell one change away from (matrix, ops), each pruned as the space prunes: an interior
    vertex's operation replaced, one edge added or removed, or one vertex inserted with one edge in (from an
    earlier vertex) and one edge out (to a later one). Written from the definition, not from ``mutate``."""
    from nasx_nb101.cell import prune

    n = len(ops)
    candidates = []
    for v in range(1, n - 1):
        for op in OPS:
            if op != ops[v]:
                candidates.append((matrix, [*ops[:v], op, *ops[v + 1:]]))
    for u in range(n):
        for v in range(u + 1, n):
            flipped = matrix.copy()
            flipped[u, v] ^= 1
            candidates.append((flipped, list(ops)))
    if n < MAX_VERTICES:
        for w in range(1, n):  # the new vertex takes position w
            for op in OPS:
                for u in range(w):
                    for v in range(w + 1, n + 1):
                        grown = np.insert(np.insert(matrix, w, 0, axis=0), w, 0, axis=1)
                        grown[u, w] = grown[w, v] = 1
                        candidates.append((grown, [*ops[:w], op, *ops[w:]]))
    hashes = set()
    for candidate_matrix, candidate_ops in candidates:
        pruned = prune(candidate_matrix, candidate_ops)
        if pruned is not None and problem(*pruned) is None:
            hashes.add(module_hash(*pruned))
    return hashes


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_mutation_changes_exactly_one_gene(seed):
    """The child is one change away from its parent: an operation, an edge, or one vertex on a new path."""
    space = Nb101Space(dataset="cifar10")
    rng = random.Random(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    assert space.key(child) in _single_changes(*space.cell(parent)) - {space.key(parent)}


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_mutation_gives_a_valid_different_cell(seed):
    space = Nb101Space(dataset="cifar10")
    rng = random.Random(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    _assert_valid(space, child)
    assert space.key(child) != space.key(parent)


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_crossover_gives_a_valid_cell(seed):
    space = Nb101Space(dataset="cifar10")
    rng = random.Random(seed)
    first, second = space.sample(rng), space.sample(rng)
    _assert_valid(space, space.crossover(first, second, rng))
    assert space.key(space.crossover(first, first, rng)) == space.key(first)


@settings(max_examples=40, deadline=None)
@given(seeds, st.permutations(range(1, 6)))
def test_permuting_interior_vertices_keeps_the_hash(seed, permutation):
    space = Nb101Space(dataset="cifar10")
    matrix, ops = space.cell(space.sample(random.Random(seed)))
    n = len(ops)
    interior = [p for p in permutation if p < n - 1]
    order = [0, *interior, n - 1]  # new vertex i is old vertex order[i]
    permuted = matrix[np.ix_(order, order)]
    # Relabelling keeps the graph; it is a valid cell again only when edges still go forward.
    if not np.any(np.tril(permuted)):
        assert module_hash(permuted, [ops[v] for v in order]) == module_hash(matrix, ops)
    else:  # the hash itself does not need forward edges: it is a function of the graph only
        assert module_hash(permuted, [ops[v] for v in order]) == module_hash(matrix, ops)


def test_spec_sampling_covers_cells_of_many_sizes(nb101):
    rng = random.Random(0)
    sizes = {nb101.cell(nb101.sample(rng))[0].shape[0] for _ in range(500)}
    assert {2, 3, 4, 5, 6} <= sizes and max(sizes) <= MAX_VERTICES


def test_cell_sampling_is_uniform_over_the_table(data_dir, monkeypatch, oracle):
    """Samples are rows of the table, and their numbers of vertices and of edges follow the table's own counts
    (chi-square, 600 samples): spec sampling, which favours small cells, fails this by far."""
    from scipy.stats import chisquare

    monkeypatch.setenv("NASX_DATA", str(data_dir))
    space = Nb101Space(dataset="cifar10", sampling="cells")
    rng = random.Random(0)
    cells = [space.cell(space.sample(rng)) for _ in range(600)]
    table = oracle.table
    for matrix, ops in cells[:50]:
        table.position(module_hash(matrix, ops))  # a row of the table (raises otherwise)
    table_vertices = np.char.str_len(table.ops.astype(str))
    table_edges = np.array([bin(int(bits)).count("1") for bits in table.adjacency])

    def agrees(sampled, population, smallest):
        """Chi-square of the sampled counts against the population's shares, rare values pooled below ``smallest``."""
        values = np.maximum(np.asarray(sampled), smallest)
        pooled = np.maximum(population, smallest)
        categories = np.unique(pooled)
        observed = np.array([(values == c).sum() for c in categories])
        expected = np.array([(pooled == c).mean() for c in categories]) * len(values)
        return chisquare(observed, expected).pvalue

    assert agrees([len(ops) for _, ops in cells], table_vertices, 5) > 1e-3
    assert agrees([int(matrix.sum()) for matrix, _ in cells], table_edges, 5) > 1e-3
    specs = Nb101Space(dataset="cifar10")
    spec_cells = [specs.cell(specs.sample(rng)) for _ in range(600)]
    assert agrees([len(ops) for _, ops in spec_cells], table_vertices, 5) < 1e-6  # the check can tell them apart


def test_unknown_sampling_is_refused():
    with pytest.raises(NasxError, match="sampling must be"):
        Nb101Space(dataset="cifar10", sampling="hashes")


def test_every_proxy_scores_an_nb101_cell():
    import math

    from nasx.data import synthetic_batch
    from nasx.evaluator import Evaluator
    from nasx.plugins import Plugins

    plugins = Plugins()
    space = Nb101Space(dataset="cifar10")
    names = plugins.names("proxy")
    assert {"naswot", "logsynflow", "skip", "epsilon", "ni", "snip", "grasp", "fisher", "grad_norm", "jacob_cov",
            "ntk", "synflow", "params", "flops"} <= set(names)
    # Small batches: this checks that every proxy runs on these networks, not what it measures.
    small = {"batch_size": 4, "samples": 50, "repeats": 1}
    proxies = [cls(**{k: v for k, v in small.items() if k in cls.defaults})
               for cls in (plugins.get("proxy", name) for name in names)]
    evaluator = Evaluator(space, proxies, synthetic_batch(space.input_shape, space.num_classes), init_seed=0)
    scores = evaluator.evaluate(space.decode("input;conv1x1-bn-relu:0;maxpool3x3:0;output:1,2")).scores
    assert set(scores) == set(names)
    # epsilon may be NaN by definition (docs/proxies.md); every other score is a number.
    assert all(math.isfinite(value) or math.isinf(value) and name == "ntk" for name, value in scores.items()
               if name != "epsilon"), scores
    assert scores["skip"] == 1.0  # the edge 0 -> 2 jumps over vertex 1
