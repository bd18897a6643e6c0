"""NAS-Bench-NLP's language model around a recipe cell (imports torch).

Re-expressed from NAS-Bench-NLP's ``model.py`` (AWDRNNModel), ``custom_rnn.py`` (CustomRNNCell, CustomRNN) and
``multilinear.py`` (fmsnew/nas-bench-nlp-release at b67171b6), with the sizes of ``main_one_model_train.py``:
an embedding of 400, three recurrent layers with 600 hidden units (400 in the last, whose output feeds the tied
decoder), the decoder's weight tied to the embedding, and AWD-LSTM's dropouts (output 0.4, between layers 0.25,
input 0.4, embedding rows 0.1, weight drop 0.5 on every hidden-to-hidden weight of the linear nodes).

A linear node ``W_1 s_1 + ... + W_n s_n + b`` (the benchmark's MultiLinear) is one ``nn.Linear`` per input, the
first with the bias, so parameter counts are the benchmark's and proxies that score ``nn.Linear`` layers see every
weight. The dropouts are recorded but applied only when ``dropout_active`` is set and the model is training:
nasx builds networks with them off, so every proxy is deterministic (the references compute NB-NLP proxies in eval
mode). Shapes: tokens (N, T) batch first; logits (N, V, T), the class dimension second as ``cross_entropy`` wants
for targets (N, T).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from nasx_nbnlp.recipe import ACTIVATIONS, BLEND, INPUT, LINEAR, hidden_count, new, topological_order
from nasx_nbnlp.sizes import Dropouts, Sizes, layer_widths


_ACTIVATION = {"activation_tanh": torch.tanh, "activation_sigm": torch.sigmoid,
               "activation_leaky_relu": functional.leaky_relu}


class LinearNode(nn.Module):
    """W_1 s_1 + ... + W_n s_n + b: one Linear per input, the bias on the first."""

    def __init__(self, input_widths: list[int], width: int) -> None:
        super().__init__()
        self.parts = nn.ModuleList(nn.Linear(w, width, bias=(i == 0)) for i, w in enumerate(input_widths))


class Cell(nn.Module):
    """One step of a recipe: (x_t, hidden states) -> new hidden states."""

    def __init__(self, recipe: dict, input_width: int, width: int) -> None:
        super().__init__()
        self.recipe = {name: (op, tuple(inputs)) for name, (op, inputs) in recipe.items()}
        self.order = topological_order(self.recipe)
        self.hidden = hidden_count(self.recipe)
        self.width = width
        self.linears = nn.ModuleDict({
            name: LinearNode([input_width if s == INPUT else width for s in inputs], width)
            for name, (op, inputs) in self.recipe.items() if op == LINEAR
        })

    def input_terms(self, inputs: torch.Tensor, weights: dict) -> dict:
        """W s (+ b when x is the first input) of every linear node that reads x, for all time steps at once:
        the same sums as step by step, in one matrix product per node."""
        terms = {}
        for name, (op, sources) in self.recipe.items():
            if op == LINEAR and INPUT in sources:
                slot = sources.index(INPUT)
                terms[name] = _apply(self.linears[name].parts[slot], inputs, weights.get((name, slot)))
        return terms

    def step(self, x_terms: dict, t: int, states: tuple, weights: dict) -> tuple:
        values = {f"h_prev_{i}": state for i, state in enumerate(states)}
        for name in self.order:
            op, sources = self.recipe[name]
            if op == LINEAR:
                parts = self.linears[name].parts
                total = None
                for slot, source in enumerate(sources):  # in input order, as MultiLinear sums them
                    if source == INPUT:
                        term = x_terms[name][t]
                    else:
                        term = _apply(parts[slot], values[source], weights.get((name, slot)))
                    total = term if total is None else total + term
                values[name] = total
            elif op in ACTIVATIONS:
                values[name] = _ACTIVATION[op](values[sources[0]])
            elif op == BLEND:
                gate, first, second = (values[s] for s in sources)
                values[name] = gate * first + (1 - gate) * second
            elif op == "elementwise_prod":
                values[name] = values[sources[0]] * values[sources[1]]
            else:  # elementwise_sum
                values[name] = values[sources[0]] + values[sources[1]]
        return tuple(values[new(i)] for i in range(self.hidden))

    def hidden_weights(self):
        """((node, slot), weight) of every hidden-to-hidden weight: what weight drop drops."""
        for name, (op, sources) in self.recipe.items():
            if op == LINEAR:
                for slot, source in enumerate(sources):
                    if source != INPUT:
                        yield (name, slot), self.linears[name].parts[slot].weight


class RecurrentLayer(nn.Module):
    """The cell unrolled over a sequence (the benchmark's CustomRNN); outputs h_new_0 at every step."""

    def __init__(self, recipe: dict, input_width: int, width: int) -> None:
        super().__init__()
        self.cell = Cell(recipe, input_width, width)
        self.width = width

    def forward(self, inputs: torch.Tensor, states: tuple, weight_drop: float = 0.0) -> tuple:
        """inputs (T, N, input width), states k tensors (N, width) -> outputs (T, N, width), final states."""
        weights = {}
        if weight_drop:
            weights = {key: functional.dropout(w, weight_drop, training=True)
                       for key, w in self.cell.hidden_weights()}
        x_terms = self.cell.input_terms(inputs, weights)
        outputs = []
        for t in range(inputs.shape[0]):
            states = self.cell.step(x_terms, t, states, weights)
            outputs.append(states[0])
        return torch.stack(outputs), states


class LanguageModel(nn.Module):
    """Embedding -> recurrent layers -> decoder tied to the embedding (NAS-Bench-NLP's AWDRNNModel)."""

    def __init__(self, recipe: dict, vocabulary: int, sizes: Sizes = Sizes(), dropouts: Dropouts = Dropouts(),
                 dropout_active: bool = False) -> None:
        super().__init__()
        self.sizes, self.dropouts, self.dropout_active = sizes, dropouts, dropout_active
        self.vocabulary = vocabulary
        self.hidden_states = hidden_count(recipe)
        self.encoder = nn.Embedding(vocabulary, sizes.embedding)
        self.layers = nn.ModuleList(RecurrentLayer(recipe, i, h) for i, h in layer_widths(sizes))
        self.decoder = nn.Linear(sizes.embedding, vocabulary)
        self.decoder.weight = self.encoder.weight  # tied
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The benchmark's initialisation: embedding U(-0.1, 0.1), decoder bias 0, every cell parameter
        U(-1/sqrt(H), 1/sqrt(H)) with H the layer's hidden width."""
        self.encoder.weight.uniform_(-0.1, 0.1)
        self.decoder.bias.zero_()
        for layer in self.layers:
            bound = 1.0 / math.sqrt(layer.width)
            for parameter in layer.parameters():
                parameter.uniform_(-bound, bound)

    def tokens(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, T) token ids from (N, T) or (N, 1, 1, T) ids of any dtype (the all-ones and all-zeros inputs
        that shape-driven callers pass)."""
        if inputs.dim() != 2:
            inputs = inputs.reshape(inputs.shape[0], -1)
        return inputs if not inputs.is_floating_point() else inputs.round().long()

    def recurrent_outputs(self, inputs: torch.Tensor, initial: float = 0.0) -> list:
        """Each layer's raw output (T, N, width) for token ids ``inputs``, every hidden state starting at
        ``initial`` (0 as in the benchmark; epsilon starts them at its constant)."""
        tokens = self.tokens(inputs).t()  # (T, N), as the benchmark's batches are laid out
        active = self.training and self.dropout_active
        drop = self.dropouts
        if active and drop.embedding:  # whole rows (words) of the embedding dropped: embedded_dropout
            weight = self.encoder.weight
            rows = weight.new_empty((weight.shape[0], 1)).bernoulli_(1 - drop.embedding) / (1 - drop.embedding)
            values = functional.embedding(tokens, weight * rows)
        else:
            values = self.encoder(tokens)
        values = _locked_dropout(values, drop.input if active else 0.0)
        outputs = []
        for number, layer in enumerate(self.layers):
            states = tuple(values.new_full((values.shape[1], layer.width), initial)
                           for _ in range(self.hidden_states))
            values, _ = layer(values, states, drop.weights if active else 0.0)
            outputs.append(values)
            if number != len(self.layers) - 1:
                values = _locked_dropout(values, drop.between_layers if active else 0.0)
        return outputs

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        last = self.recurrent_outputs(inputs)[-1]
        last = _locked_dropout(last, self.dropouts.output if self.training and self.dropout_active else 0.0)
        return self.decoder(last).permute(1, 2, 0)  # (T, N, V) -> (N, V, T)


def _apply(linear: nn.Linear, values: torch.Tensor, dropped_weight) -> torch.Tensor:
    """The layer itself (so forward hooks see it), or its computation with a dropped-out weight."""
    if dropped_weight is None:
        return linear(values)
    return functional.linear(values, dropped_weight, linear.bias)


def _locked_dropout(values: torch.Tensor, rate: float) -> torch.Tensor:
    """One dropout mask per sequence, shared by all time steps (AWD-LSTM's LockedDropout)."""
    if not rate:
        return values
    mask = values.new_empty((1, *values.shape[1:])).bernoulli_(1 - rate) / (1 - rate)
    return values * mask
