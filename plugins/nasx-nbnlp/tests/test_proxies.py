"""Proxies on nb-nlp: epsilon and the network against direct transcriptions of the reference code, the proxies that
are refused, and ``correlate`` against the table (tests/test_every_proxy.py runs the contract of every proxy here)."""

import json
import math
import random

import numpy as np
import pytest
import torch
from scipy import stats

import nasx
from nasx.errors import NasxError
from nasx.evaluator import Evaluator
from nasx.plugins import Plugins
from nasx_nbnlp import recipe as recipes
from nasx_nbnlp.sizes import VOCABULARY, Sizes, layer_widths
from nasx_nbnlp.space import UNDEFINED_PROXIES, NbNlpSpace
from nasx_nbnlp.tokens import synthetic_tokens
from nasx_proxies.epsilon import Epsilon
from nasx_proxies.synflow import Synflow

SPACE = NbNlpSpace()
SHORT = 6  # tokens per sequence in these tests (the benchmark's 70 only makes them slower)

LSTM = json.dumps({
    "i": {"op": "linear", "input": ["x", "h_prev_0"]}, "i_act": {"op": "activation_tanh", "input": ["i"]},
    "j": {"op": "linear", "input": ["x", "h_prev_0"]}, "j_act": {"op": "activation_sigm", "input": ["j"]},
    "f": {"op": "linear", "input": ["x", "h_prev_0"]}, "f_act": {"op": "activation_sigm", "input": ["f"]},
    "o": {"op": "linear", "input": ["x", "h_prev_0"]}, "o_act": {"op": "activation_tanh", "input": ["o"]},
    "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
    "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
    "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
    "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]},
})
GRU = json.dumps(recipes.GRU)


def short_batch(size=8):
    return synthetic_tokens(VOCABULARY["ptb"], size, SHORT)


def test_synflow_scores_reproducibly():
    evaluator = Evaluator(SPACE, [Synflow(repeats=1)], None)
    genotype = SPACE.decode(GRU)
    first = evaluator.evaluate(genotype).scores["synflow"]
    evaluator.cache.db.execute("DELETE FROM scores")
    assert math.isfinite(first) and first > 0
    assert evaluator.evaluate(genotype).scores["synflow"] == first


@pytest.mark.parametrize("name", sorted(UNDEFINED_PROXIES))
def test_undefined_proxies_are_refused_in_one_line(name):
    proxy = Plugins().get("proxy", name)()
    with pytest.raises(NasxError, match=f"proxy '{name}' is not defined for space 'nb-nlp'") as error:
        Evaluator(SPACE, [proxy], short_batch())
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------------------------
# direct transcriptions of the reference code (custom_rnn.py, multilinear.py, model.py, epsinas_utils.py)


def reference_layer(cell, inputs, states, weights_of, biases_of):
    """CustomRNN.forward with CustomRNNCell.forward, node by node in a topological order; ``weights_of(node)``
    gives MultiLinear's weight list and ``biases_of(node)`` its bias."""
    order = recipes.topological_order(cell)
    outputs = []
    for x in inputs:  # torch.unbind(inputs, dim=0)
        values = {"x": x, **{f"h_prev_{i}": h for i, h in enumerate(states)}}
        for name in order:
            op, sources = cell[name]
            args = [values[s] for s in sources]
            if op == "linear":
                result = torch.nn.functional.linear(args[0], weights_of(name)[0], biases_of(name))
                for arg, weight in zip(args[1:], weights_of(name)[1:]):
                    result = result + torch.nn.functional.linear(arg, weight)
            elif op == "elementwise_prod":
                result = args[0] * args[1]
            elif op == "elementwise_sum":
                result = args[0] + args[1]
            elif op == "blend":
                result = args[0] * args[1] + (1 - args[0]) * args[2]
            else:
                result = {"activation_tanh": torch.tanh, "activation_sigm": torch.sigmoid,
                          "activation_leaky_relu": torch.nn.functional.leaky_relu}[op](args[0])
            values[name] = result
        states = [values[f"h_new_{i}"] for i in range(len(states))]
        outputs.append(states[0].clone())
    return torch.stack(outputs)


def reference_epsilon(text, tokens, pair, dtype=torch.float32):
    """epsinas_utils.compute_epsinas for NB-NLP, with constant weights written out instead of filled in (in
    ``dtype``; the embedding is drawn in float32 as the reference draws it)."""
    cell = SPACE.recipe(SPACE.decode(text))
    hidden = recipes.hidden_count(cell)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(21)  # prepare_seed(21), then nn.init.uniform_(network.encoder.weight, 0, 1)
        embedding = torch.nn.init.uniform_(torch.empty(VOCABULARY["ptb"], Sizes().embedding), 0, 1).to(dtype)
    predictions = []
    for value in pair:
        values = embedding[tokens.t()]  # (T, N, 400): the reference's batches are sequence-major
        for input_width, width in layer_widths(Sizes()):
            constants = {}

            def weights_of(name, input_width=input_width, width=width, constants=constants):
                if name not in constants:  # asked at every step: made once per layer
                    constants[name] = [torch.full((width, input_width if s == "x" else width), value, dtype=dtype)
                                       for s in cell[name][1]]
                return constants[name]

            states = [torch.full((tokens.shape[0], width), value, dtype=dtype) for _ in range(hidden)]
            values = reference_layer(cell, values, states, weights_of,
                                     lambda _, w=width: torch.full((w,), value, dtype=dtype))
        prediction = values[:, :, 0].flatten().double().numpy()  # raw_output[-1][:, :, 0].flatten()
        predictions.append((prediction - prediction.min()) / (prediction.max() - prediction.min()))
    predictions = np.array(predictions)
    predictions[predictions == 0] = np.nan
    return np.nanmean(np.abs(predictions[0] - predictions[1])) / np.nanmean(predictions)


@pytest.mark.parametrize("text", [GRU, LSTM])
def test_epsilon_follows_the_reference(text):
    """Both in float64 (epsilon's ``double``): with constant weights of 1e-5 the LSTM's float32 outputs depend on
    the order of its sums (4e-6 relative between two runs here, 5 % with another thread count; see
    docs/proxies.md), so float32 cannot tell a wrong computation from rounding; float64 agrees to 1e-9."""
    batch = short_batch(5)
    genotype = SPACE.decode(text)
    score = Epsilon(batch_size=5, double=True).score_network(SPACE.build(genotype), batch, SPACE)
    reference = reference_epsilon(text, batch.images, (1e-5, 1e-3), dtype=torch.float64)
    assert Epsilon().weights_for(SPACE) == (1e-5, 1e-3)
    assert math.isfinite(reference)
    assert score == pytest.approx(reference, rel=1e-9)


def test_language_model_follows_the_reference():
    # a cell with three hidden states, x in a later slot and 3-input linear nodes
    rng = random.Random(4)
    genotype = next(g for g in (SPACE.sample(rng) for _ in range(200)) if len(SPACE.recipe(g)) > 6 and
                    recipes.hidden_count(SPACE.recipe(g)) == 3)
    cell = SPACE.recipe(genotype)
    network = SPACE.build(genotype).double()  # float64: the two computations agree to rounding, 1e-12 or so
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0, 0.1, generator=torch.Generator().manual_seed(parameter.numel()))
    tokens = short_batch(3).images
    values = network.encoder.weight[tokens.t()]
    for layer, (_, width) in zip(network.layers, layer_widths(Sizes())):
        linears = layer.cell.linears
        states = [torch.zeros(tokens.shape[0], width, dtype=torch.float64) for _ in range(recipes.hidden_count(cell))]
        values = reference_layer(cell, values, states, lambda n, ls=linears: [p.weight for p in ls[n].parts],
                                 lambda n, ls=linears: ls[n].parts[0].bias)
    expected = torch.nn.functional.linear(values, network.encoder.weight, network.decoder.bias)  # tied decoder
    with torch.no_grad():
        assert torch.allclose(network.eval()(tokens), expected.permute(1, 2, 0), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# correlate on the table


def test_correlate_ranks_against_the_loss_turned_round(data_dir):
    record = nasx.correlate(space="nb-nlp", proxies=["params"], sample=0, bootstrap=0, cache=False,
                            data_dir=data_dir)
    oracle = SPACE.oracle(data_dir)
    assert record["sample"] == 272 and record["ground_truth_higher_is_better"] is False
    losses = np.array([oracle.test_accuracy(SPACE.decode(a["arch"])) for a in record["architectures"]])
    assert np.allclose(losses, [a["test_accuracy"] for a in record["architectures"]])
    params = np.array([SPACE.cost(SPACE.decode(a["arch"])).params_m for a in record["architectures"]])
    result = record["results"][0]
    assert result["spearman"] == pytest.approx(stats.spearmanr(params, -losses)[0])
    assert result["kendall"] == pytest.approx(stats.kendalltau(params, -losses)[0])
    smaller = nasx.correlate(space="nb-nlp", proxies=["params"], sample=20, seed=1, bootstrap=0, cache=False,
                             data_dir=data_dir)
    assert smaller["sample"] == 20


def test_run_reports_the_loss_as_a_loss(data_dir, capsys):
    from nasx_cli.report import print_result

    result = nasx.run(space="nb-nlp", proxies=["params"], search="random", max_evals=3, seed=0, cache=False,
                      data_dir=data_dir)
    assert result.ground_truth_metric == "PTB test loss (nats per token)"
    print_result(result.to_dict())
    shown = capsys.readouterr().out
    assert "PTB test loss (nats per token)" in shown and "test accuracy" not in shown
