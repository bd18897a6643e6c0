import csv
import gzip
import hashlib
import json
import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nasx.errors import InvalidGenotype, NasxError
from nasx.testing.contracts import SpaceContract
from nasx_nbnlp import recipe as recipes
from nasx_nbnlp.network import LanguageModel
from nasx_nbnlp.sizes import VOCABULARY
from nasx_nbnlp.space import NbNlpSpace
from nasx_nbnlp.tokens import SEQUENCE_LENGTH, synthetic_tokens, text_tokens

seeds = st.integers(min_value=0, max_value=2**32 - 1)
SPACE = NbNlpSpace()

# NAS-Bench-NLP's three hand-written baselines (recepies_example.json, ids 1000000-1000002)
RNN = '{"f":{"op":"linear","input":["x","h_prev_0"]},"h_new_0":{"op":"activation_tanh","input":["f"]}}'
GRU = json.dumps(recipes.GRU)


@pytest.fixture(scope="module")
def table(data_dir):
    with gzip.open(data_dir / "nbnlp_recipes_wt2_ptb.csv.gz", "rt") as handle:
        return list(csv.DictReader(handle))


class TestContract(SpaceContract):
    samples = 15

    @pytest.fixture
    def space(self):
        return SPACE

    def test_networks_give_one_logit_per_class(self, space):
        # a language model gives one logit vector per token: (N, vocabulary, T), the shape cross_entropy takes
        for genotype, network in self.built_networks(space):
            with torch.no_grad():
                logits = network.eval()(torch.zeros(2, *space.input_shape))
            assert tuple(logits.shape) == (2, space.num_classes, SEQUENCE_LENGTH), space.encode(genotype)


# ---------------------------------------------------------------------------------------------------------------
# recipes and their strings


def sampled(seed):
    return SPACE.sample(random.Random(seed))


@given(seeds)
def test_decode_encode_round_trips(seed):
    genotype = sampled(seed)
    text = SPACE.encode(genotype)
    again = SPACE.decode(text)
    assert SPACE.encode(again) == text and SPACE.recipe(again) == SPACE.recipe(genotype)
    assert sorted(again.edges(data="slot")) == sorted(genotype.edges(data="slot"))
    assert SPACE.key(again) == SPACE.key(genotype)
    assert json.loads(text) == {n: {"op": op, "input": list(i)} for n, (op, i) in SPACE.recipe(genotype).items()}


@given(seeds)
def test_samples_are_the_generators_valid_cells(seed):
    cell = SPACE.recipe(sampled(seed))
    assert recipes.problem(cell) is None and recipes.generator_problem(cell) is None
    assert 1 <= recipes.hidden_count(cell) <= 3
    # the generator's structure: every activation follows a linear node; only linear nodes read x
    for op, inputs in cell.values():
        if op in recipes.ACTIVATIONS:
            assert cell[inputs[0]][0] == recipes.LINEAR
        if "x" in inputs:
            assert op == recipes.LINEAR


def test_sampling_draws_each_number_of_hidden_states():
    rng = random.Random(0)
    counts = [recipes.hidden_count(SPACE.recipe(SPACE.sample(rng))) for _ in range(300)]
    assert set(counts) == {1, 2, 3}
    assert all(70 <= counts.count(k) <= 130 for k in (1, 2, 3)), counts  # uniform over 1, 2, 3


@settings(max_examples=60)
@given(seeds, seeds)
def test_mutation_gives_another_valid_cell(seed, move_seed):
    parent = sampled(seed)
    child = SPACE.mutate(parent, random.Random(move_seed))
    cell = SPACE.recipe(child)
    assert SPACE.encode(child) != SPACE.encode(parent)
    assert recipes.problem(cell) is None and recipes.generator_problem(cell) is None
    assert SPACE.encode(SPACE.mutate(parent, random.Random(move_seed))) == SPACE.encode(child)  # reproducible


def _one_input_changed(before, after) -> bool:
    """The inputs differ by one source replaced in one slot, or by one source added or removed."""
    if len(before) == len(after):
        return sum(a != b for a, b in zip(before, after)) == 1
    shorter, longer = sorted((before, after), key=len)
    return len(longer) == len(shorter) + 1 and any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer)))


def _reaches_an_output(cell, name) -> bool:
    readers = [n for n, (_, inputs) in cell.items() if name in inputs]
    return recipes.is_output(name) or any(_reaches_an_output(cell, reader) for reader in readers)


@settings(max_examples=80)
@given(seeds, seeds)
def test_mutation_changes_exactly_one_gene(seed, move_seed):
    """One change of the recipe (then the nodes left without a path to an output are dropped): one node edited
    (its op for another of its kind, or one of its inputs), a linear node and its activation inserted on one input
    of one node, or one node removed and its readers reading one of its inputs instead."""
    parent = SPACE.recipe(sampled(seed))
    child = SPACE.recipe(SPACE.mutate(sampled(seed), random.Random(move_seed)))
    added = [name for name in child if name not in parent]
    removed = [name for name in parent if name not in child]
    changed = [name for name in child if name in parent and child[name] != parent[name]]
    if not added and len(changed) == 1:  # one node edited
        (name,) = changed
        (old_op, old_inputs), (op, inputs) = parent[name], child[name]
        if op != old_op:
            assert inputs == old_inputs and any(op in kind and old_op in kind
                                                for kind in (recipes.ACTIVATIONS, recipes.ELEMENTWISE))
        else:
            assert _one_input_changed(old_inputs, inputs)
    elif added:  # a linear node and its activation inserted on one input of one node
        ops = sorted(child[name][0] for name in added)
        assert len(added) == 2 and ops[1] == recipes.LINEAR and ops[0] in recipes.ACTIVATIONS, added
        activation = next(name for name in added if child[name][0] in recipes.ACTIVATIONS)
        linear = next(name for name in added if child[name][0] == recipes.LINEAR)
        assert child[activation][1] == (linear,) and len(changed) == 1, changed
        old_inputs, inputs = parent[changed[0]][1], child[changed[0]][1]
        assert [i for i, (a, b) in enumerate(zip(old_inputs, inputs)) if a != b] == [inputs.index(activation)]
        assert old_inputs[inputs.index(activation)] in child[linear][1]  # the new pair reads what the node read
    else:  # one node removed, its readers reading one of its inputs instead
        assert removed and changed, (removed, changed)
        substitutes = {(a, b) for name in changed for a, b in zip(parent[name][1], child[name][1]) if a != b}
        assert len(substitutes) == 1, substitutes
        ((gone, replacement),) = substitutes
        assert gone in removed and replacement in parent[gone][1]
    assert all(_reaches_an_output(child, name) for name in child)  # pruned


@settings(max_examples=60)
@given(seeds, seeds, seeds)
def test_crossover_takes_each_node_from_a_parent(first_seed, second_seed, seed):
    first, second = sampled(first_seed), sampled(second_seed)
    parents = [SPACE.recipe(first), SPACE.recipe(second)]
    child = SPACE.recipe(SPACE.crossover(first, second, random.Random(seed)))
    assert recipes.problem(child) is None and recipes.generator_problem(child) is None
    for name, node in child.items():
        assert any(parent.get(name) == node for parent in parents), name


def test_mutation_of_a_baseline_keeps_it_valid():
    # the GRU fails the generator's sanity check (its output reads h_prev_0): children need only be valid cells
    rng = random.Random(1)
    genotype = SPACE.decode(GRU)
    for _ in range(30):
        genotype = SPACE.mutate(genotype, rng)
        assert recipes.problem(SPACE.recipe(genotype)) is None


MALFORMED = [
    "this is not an architecture",
    "[]",
    "{}",
    '{"h_new_0": {"op": "linear"}}',
    '{"h_new_0": {"op": "linear", "input": ["x"], "extra": 1}}',
    '{"h_new_0": {"op": "conv3x3", "input": ["x"]}}',
    '{"h_new_0": {"op": "activation_tanh", "input": ["x"]}}',  # x into an activation
    '{"f": {"op": "linear", "input": ["x", "h_prev_0"]}}',  # no output
    '{"h_new_1": {"op": "linear", "input": ["x", "h_prev_0"]}}',  # outputs must start at h_new_0
    '{"h_new_0": {"op": "linear", "input": ["x", "h_prev_1"]}}',  # only one hidden state
    '{"h_new_0": {"op": "linear", "input": ["x", "x"]}}',
    '{"h_new_0": {"op": "linear", "input": ["x", "g"]}}',
    '{"h_new_0": {"op": "elementwise_sum", "input": ["a"]}, "a": {"op": "linear", "input": ["x"]}}',
    '{"h_new_0": {"op": "linear", "input": ["x", "a"]}, "a": {"op": "activation_sigm", "input": ["b"]},'
    ' "b": {"op": "linear", "input": ["a"]}}',  # a cycle
    '{"h_new_0": {"op": "linear", "input": ["x"]}, "d": {"op": "linear", "input": ["x"]}}',  # d is dangling
    '{"h_new_0": {"op": "linear", "input": ["h_prev_0"]}}',  # never reads x
    '{"h_new_0": {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "linear", "input": ["x"]}}',
    '{"x": {"op": "linear", "input": ["h_prev_0"]}, "h_new_0": {"op": "linear", "input": ["x"]}}',
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_recipes_give_one_line_errors(text):
    with pytest.raises(InvalidGenotype) as error:
        SPACE.decode(text)
    assert "\n" not in str(error.value)


@given(st.text(max_size=40))
def test_arbitrary_text_is_rejected_or_valid(text):
    try:
        genotype = SPACE.decode(text)
    except InvalidGenotype as error:
        assert "\n" not in str(error)
    else:
        assert recipes.problem(SPACE.recipe(genotype)) is None


def test_baselines_decode():
    assert SPACE.encode(SPACE.decode(RNN)).startswith('{"f":{"input":["x","h_prev_0"],"op":"linear"}')
    gru = SPACE.recipe(SPACE.decode(GRU))
    assert recipes.generator_problem(gru) == "h_new_0 reads a previous hidden state directly"


# ---------------------------------------------------------------------------------------------------------------
# the table: strings, parameter counts, ground truth


def test_canonical_strings_hash_as_the_table_does(table):
    # the table's recipe_sha1 is sha1 of the recipe as JSON with sorted keys: our canonical string gives it
    for row in table:
        text = SPACE.encode(SPACE.decode(row["recipe_json"]))
        assert hashlib.sha1(text.encode()).hexdigest()[:16] == row["recipe_sha1"], row["recepie_id"]


def test_parameter_counts_equal_the_benchmarks(table):
    wikitext = NbNlpSpace(dataset="wikitext-2")
    checked = {"ptb": 0, "wikitext-2": 0}
    for row in table:
        genotype = SPACE.decode(row["recipe_json"])
        for space, column in ((SPACE, "ptb_params"), (wikitext, "wt2_params")):
            if row[column] != "nan":
                assert round(space.cost(genotype).params_m * 1e6) == int(float(row[column])), row["recepie_id"]
                checked[space.dataset] += 1
    assert checked == {"ptb": 313, "wikitext-2": 345}


def test_built_networks_have_the_benchmarks_parameter_counts(table):
    # every distinct recipe with a PTB count, built for real (on the meta device: no memory, same parameters)
    counts = {}
    for row in table:
        if row["ptb_params"] != "nan":
            counts[SPACE.encode(SPACE.decode(row["recipe_json"]))] = int(float(row["ptb_params"]))
    with torch.device("meta"):
        for text, expected in counts.items():
            network = LanguageModel(SPACE.recipe(SPACE.decode(text)), VOCABULARY["ptb"])
            assert sum(p.numel() for p in network.parameters()) == expected, text
    assert len(counts) == 263


def test_oracle_gives_ptb_losses(table, data_dir):
    oracle = SPACE.oracle(data_dir)
    assert oracle.higher_is_better is False
    known = oracle.genotypes()
    assert len(known) == 272 and len({SPACE.encode(g) for g in known}) == 272
    # a recipe trained as one replicate group of three: the group's mean
    row = next(r for r in table if r["recepie_id"] == "1000248")
    genotype = SPACE.decode(row["recipe_json"])
    assert oracle.test_accuracy(genotype) == pytest.approx(float(row["ptb_test_loss_mean"]))
    assert oracle.perplexity(genotype) == pytest.approx(math.exp(float(row["ptb_test_loss_mean"])))
    # a recipe drawn twice into different replicate groups: the runs pooled
    rows = [r for r in table if r["recepie_id"] in ("1000242", "1004947")]
    pooled = sum(float(r["ptb_test_loss_mean"]) * int(r["ptb_n_ok"]) for r in rows) / sum(
        int(r["ptb_n_ok"]) for r in rows)
    assert oracle.test_accuracy(SPACE.decode(rows[0]["recipe_json"])) == pytest.approx(pooled)
    assert math.isnan(oracle.test_accuracy(SPACE.decode(RNN)))  # a baseline without PTB runs
    assert SPACE.cost(genotype).params_m * 1e6 == pytest.approx(float(row["ptb_params"]))


def test_oracle_alternatives(table, data_dir):
    same_id = NbNlpSpace(ground_truth="same-id").oracle(data_dir)
    assert len(same_id.genotypes()) == 263
    row = next(r for r in table if r["recepie_id"] == "1000248")
    rows = [r for r in table if r["recipe_sha1"] == row["recipe_sha1"]]
    expected = sum(float(r["ptb_test_loss"]) for r in rows) / len(rows)
    assert same_id.test_accuracy(SPACE.decode(row["recipe_json"])) == pytest.approx(expected)
    wikitext = NbNlpSpace(dataset="wikitext-2").oracle(data_dir)
    assert wikitext.test_accuracy(SPACE.decode(RNN)) == pytest.approx(
        float(next(r for r in table if r["recepie_id"] == "1000000")["wt2_test_loss"]))
    assert len(wikitext.genotypes()) == len({r["recipe_sha1"] for r in table if r["wt2_status"] == "OK"})


def test_no_oracle_without_data(tmp_path):
    assert SPACE.oracle(None) is None and SPACE.oracle(tmp_path) is None


# ---------------------------------------------------------------------------------------------------------------
# networks and token batches


def test_network_is_deterministic_unless_its_dropouts_are_on():
    genotype = SPACE.decode(GRU)
    tokens = synthetic_tokens(VOCABULARY["ptb"], 3, 6).images
    torch.manual_seed(0)
    network = SPACE.build(genotype).train()
    assert torch.equal(network(tokens), network(tokens))
    trained = SPACE.build_for_training(genotype)
    trained.load_state_dict(network.state_dict())
    with torch.no_grad():
        assert not torch.equal(trained.train()(tokens), trained(tokens))  # dropouts draw new masks
        assert torch.equal(trained.eval()(tokens), network(tokens))  # and vanish in eval mode


def test_synthetic_tokens_are_seeded_next_token_pairs():
    batch = SPACE.input_batch(None, 4)
    again = SPACE.input_batch(None, 4)
    assert torch.equal(batch.images, again.images) and batch.identity == again.identity
    assert batch.images.shape == batch.labels.shape == (4, SEQUENCE_LENGTH)
    assert torch.equal(batch.images[:, 1:], batch.labels[:, :-1])
    assert 0 <= int(batch.images.min()) and int(batch.images.max()) < VOCABULARY["ptb"]


def test_text_tokens_follow_the_references_batchify(tmp_path):
    words = [f"w{i % 37}" for i in range(2000)]
    lines = [" ".join(words[i:i + 10]) for i in range(0, len(words), 10)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    batch = text_tokens(tmp_path, vocabulary=30, size=4, length=5)
    # the stream: each line's words then <eos>; ids by first appearance, words past the vocabulary -> last id
    ids, stream = {}, []
    for line in lines:
        for word in line.split() + ["<eos>"]:
            if word not in ids and len(ids) < 30:
                ids[word] = len(ids)
            stream.append(ids.get(word, 29))
    column = len(stream) // 4
    for j in range(4):
        assert batch.images[j].tolist() == stream[j * column:j * column + 5]
        assert batch.labels[j].tolist() == stream[j * column + 1:j * column + 6]
    with pytest.raises(NasxError, match="tokens"):
        text_tokens(tmp_path / "train.txt", vocabulary=30, size=400, length=70)
    with pytest.raises(NasxError, match="does not exist"):
        text_tokens(tmp_path / "missing.txt", vocabulary=30, size=4)
