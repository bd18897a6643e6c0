"""Sizes and costs of NAS-Bench-NLP's language model, without torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from nasx_nbnlp.recipe import INPUT, LINEAR

#: vocabulary of each dataset as NAS-Bench-NLP's ``data.Corpus`` builds it (train + valid + test words)
VOCABULARY = {"ptb": 10000, "wikitext-2": 33278}


@dataclass(frozen=True)
class Sizes:
    """The benchmark's model (``main_one_model_train.py``: emsize 400, nhid 600, nlayers 3, tied)."""

    embedding: int = 400
    hidden: int = 600
    layers: int = 3


@dataclass(frozen=True)
class Dropouts:
    """AWD-LSTM's regularisation as NAS-Bench-NLP trained with it (``main_one_model_train.py``)."""

    output: float = 0.4  # dropout
    between_layers: float = 0.25  # dropouth
    input: float = 0.4  # dropouti
    embedding: float = 0.1  # dropoute
    weights: float = 0.5  # wdrop


def layer_widths(sizes: Sizes) -> list[tuple[int, int]]:
    """(input width, hidden width) of each recurrent layer; the last one's hidden width is the embedding's,
    because the decoder is tied to the embedding (``model.py``)."""
    widths = []
    for layer in range(sizes.layers):
        inputs = sizes.embedding if layer == 0 else sizes.hidden
        hidden = sizes.embedding if layer == sizes.layers - 1 else sizes.hidden
        widths.append((inputs, hidden))
    return widths


def params_and_flops(recipe: Mapping[str, tuple], vocabulary: int, sizes: Sizes = Sizes()) -> tuple[int, int]:
    """(parameters, FLOPs per token). Parameters as the benchmark counts them (``num_params`` of its logs): the
    embedding (the decoder's weight is the same tensor), the decoder's bias, and per layer every linear node's
    weights (output x input width, one matrix per input) and one bias. FLOPs per predicted token, counted as
    NATS-Bench counts linear layers (in x out, plus out for a bias): every linear node of the three layers and the
    decoder; activations and elementwise operations are not counted."""
    params = vocabulary * sizes.embedding + vocabulary
    flops = sizes.embedding * vocabulary + vocabulary
    for input_width, width in layer_widths(sizes):
        for op, sources in recipe.values():
            if op == LINEAR:
                node = sum(width * (input_width if s == INPUT else width) for s in sources) + width
                params += node
                flops += node
    return params, flops
