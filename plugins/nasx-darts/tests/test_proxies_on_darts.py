"""Every installed proxy scores darts networks (the proxies' 16-channel, 8-cell network), with small batches."""

import math

import nasx

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")

SMALL = {"repeats": 1, "batch_size": 8, "nregions.samples": 50}


def test_every_proxy_scores_a_darts_network():
    from nasx.plugins import Plugins

    space = Plugins().get("space", "darts")()
    proxies = [name for name in sorted(Plugins().names("proxy"))  # every installed proxy defined on darts
               if not space.proxy_problem(Plugins().get("proxy", name)())]
    assert {"naswot", "synflow", "zico", "meco", "swap", "vkdnw", "zen", "gradsign", "epsilon"} <= set(proxies)
    record, = nasx.score([DARTS_V2], space="darts", proxies=proxies, options=SMALL, cache=False)
    assert record["errors"] == {}
    assert set(record["scores"]) == set(proxies)
    # The NTK of this network is singular whatever the batch: the last cell has no pooling, so every feature the
    # classifier reads is a sum of training-mode BatchNorm outputs, whose mean over the batch is zero (their shift
    # starts at 0); the batch's summed logits then depend on no weight, the images' gradients sum to zero and the
    # kernel has a zero eigenvalue (in float64 the smallest is ~1e-9 against ~3e6, for 8 to 32 images). Its
    # condition number is infinite; float32 rounding decides whether that comes out as inf or a huge number.
    ntk = record["scores"].pop("ntk")
    assert ntk == math.inf or ntk > 1e6, ntk
    assert all(isinstance(score, float) and math.isfinite(score) for score in record["scores"].values()), record
    assert record["scores"]["params"] == record["params_m"] == 3.349342  # the evaluation network's cost
    assert record["scores"]["skip"] == 2.0  # skips 0->4, 0->5, 2->3, 2->4, 2->5 jump 3, 4, 0, 1, 2 states
    assert record["test_accuracy"] is None  # no ground truth
