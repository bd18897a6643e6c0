"""epsilon (Gracheva, 2023, "two constant shared weights initialisations"): how differently a network maps a
batch under two constant weight values. No random weights are involved, so one repeat is enough."""

from __future__ import annotations

import copy

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive
from nasx_proxies._common import as_float64

#: (w1, w2) per space, from the paper (nb-nlp: its Table 9); spaces not listed use NB201's pair. darts is not in
#: the paper: NB201's pair underflows to NaN on every darts cell tried (two conv+BN layers per separable conv), and
#: NB101's pair, for that other deep conv stack, scores them all
DEFAULT_WEIGHTS = {"nats-tss": (1e-7, 1.0), "nats-sss": (1e-7, 1.0), "nb101": (1e-4, 10.0), "nb-nlp": (1e-5, 1e-3),
                   "darts": (1e-4, 10.0)}
#: nb-nlp's embedding cannot be constant (every token would look the same): the reference draws it from U(0, 1)
#: right after seeding with 21, the same draw for both constants (its Table 10 compares such draws)
LANGUAGE_MODEL_EMBEDDING_SEED = 21


def _weight_pair(text: str) -> tuple[float, float] | None:
    """The pair 'w1,w2' as two floats, or None when ``text`` is not two numbers."""
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        return None
    return first, second


def _empty_or_weight_pair(value: str) -> str | None:
    """Check of the ``weights`` option: empty (the space's pair from the paper) or two numbers 'w1,w2'."""
    if not value.strip() or _weight_pair(value) is not None:
        return None
    return "must be two numbers 'w1,w2' (or empty for the space's pair)"


class Epsilon(Proxy):
    name = "epsilon"
    summary = "Mean |difference| of min-max normalised outputs under two constant weights, over their mean"
    needs_data = True
    defaults = {"batch_size": 256, "weights": "", "double": False, "repeats": 1}
    # batch_size 0: the whole input batch
    option_checks = {"batch_size": non_negative, "weights": _empty_or_weight_pair, "repeats": positive}
    # 2: channels-last layout (same values up to float32 rounding, about twice as fast on a CPU)
    # 3: one output per image, as in the paper's one-output networks (was: every logit; scores moved by at most
    #    1e-4 relative at 256 images on 200 NB201 cells, by 2.4 % on one cell at 16 images)
    # 4: darts defaults to NB101's constants (NaN before); other spaces unchanged
    version = "4"

    def weights_for(self, space) -> tuple[float, float]:
        text = str(self.options["weights"]).strip()
        if not text:
            return DEFAULT_WEIGHTS.get(space.name, DEFAULT_WEIGHTS["nats-tss"])
        pair = _weight_pair(text)
        if pair is None:  # options changed after the checks ran
            from nasx.errors import NasxError

            raise NasxError(f"epsilon.weights must be two numbers 'w1,w2', got {text!r}")
        return pair

    def score_network(self, network, batch, space) -> float:
        """As in the paper: every weight tensor (convolutions, linear layers and BatchNorm scales) is set to the
        constant and every bias to zero; BatchNorm uses batch statistics; float32; one output per image (the
        paper's networks have a single output unit). Outputs that are exactly zero after normalisation (the
        minimum, and units that underflowed) are left out of both means, and an output that collapsed to one
        value gives NaN."""
        import torch

        if getattr(space, "name", None) == "nb-nlp":
            return self._score_language_model(network, batch, space)
        images = batch.images
        if self.options["double"] and images.device.type == "mps":
            from nasx.errors import NasxError

            raise NasxError("proxy epsilon with double=true needs float64, which MPS lacks; use --device cpu or "
                            "cuda, or double=false")
        constant = copy.deepcopy(network)  # the constant weights must not leak into the caller's network
        if self.options["double"]:
            constant, images = constant.double(), images.double()
        if images.dim() == 4 and images.device.type == "cpu":
            # convolutions on the CPU run about twice as fast in this layout; a gain measured on CPUs only, so other
            # devices keep their default layout
            constant = constant.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        normalised = []
        for value in self.weights_for(space):
            with torch.no_grad():
                for name, parameter in constant.named_parameters():
                    parameter.fill_(0.0 if name.endswith("bias") else value)
                constant.train()
                logits = constant(images)
                # With constant weights and zero biases every logit of an image equals the paper's single output,
                # but the copies differ in their last bits: kept together, only one copy of the smallest output
                # became the exact zero dropped below
                flat = as_float64(logits.reshape(len(logits), -1)[:, 0])
            low, high = flat.min(), flat.max()
            normalised.append((flat - low) / (high - low))  # 0/0 = NaN when the output collapsed
        stacked = torch.stack(normalised)
        stacked[stacked == 0] = float("nan")
        dispersion = (stacked[0] - stacked[1]).abs().nanmean()
        return float(dispersion / stacked.nanmean())

    def _score_language_model(self, network, batch, space) -> float:
        """NAS-Bench-NLP as in the reference (egracheva/epsinas, NAS-Bench-NLP/epsinas_utils.py,
        ``compute_epsinas``): every parameter of the recurrent cells, biases included, set to the constant; the
        embedding (tied to the decoder) drawn from U(0, 1) after seeding with 21; every hidden state starting at
        the constant; eval mode (no dropout); the output is the first unit of the last layer's raw output at every
        position of the batch (the decoder is not used)."""
        import torch

        tokens = batch.images
        if self.options["double"] and tokens.device.type == "mps":
            from nasx.errors import NasxError

            raise NasxError("proxy epsilon with double=true needs float64, which MPS lacks; use --device cpu or "
                            "cuda, or double=false")
        constant = copy.deepcopy(network)
        if self.options["double"]:
            constant = constant.double()
        embedding = constant.encoder.weight
        draw = torch.empty(embedding.shape, dtype=torch.float32)  # on the CPU: the same draw on every device
        draw.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(LANGUAGE_MODEL_EMBEDDING_SEED))
        normalised = []
        for value in self.weights_for(space):
            with torch.no_grad():
                for parameter in constant.parameters():
                    parameter.fill_(value)
                embedding.copy_(draw.to(embedding.device, embedding.dtype))
                constant.eval()
                last = constant.recurrent_outputs(tokens, initial=value)[-1]  # (T, N, width)
                flat = as_float64(last[..., 0].flatten())
            low, high = flat.min(), flat.max()
            normalised.append((flat - low) / (high - low))
        return _dispersion(normalised)


def _dispersion(normalised) -> float:
    """mean |V1' - V2'| / mean(V1', V2') over the outputs that are not exactly 0 after normalisation (the same
    computation as the end of ``score_network``)."""
    import torch

    stacked = torch.stack(normalised)
    stacked[stacked == 0] = float("nan")
    dispersion = (stacked[0] - stacked[1]).abs().nanmean()
    return float(dispersion / stacked.nanmean())
