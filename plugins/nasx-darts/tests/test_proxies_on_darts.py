"""Every installed proxy scores darts networks (the proxies' 16-channel, 8-cell network), with small batches."""

import math

import nasx

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")

SMALL = {
    "repeats": 1, "batch_size": 8,
    "nregions.samples": 50,
    # the NTK of 8 or 12 images of this cell is singular (an infinite condition number); 16 is the smallest batch
    # tried that gives a finite one
    "ntk.batch_size": 16,
}


def test_every_proxy_scores_a_darts_network():
    from nasx.plugins import Plugins

    proxies = sorted(Plugins().names("proxy"))  # every installed proxy: darts refuses none
    record, = nasx.score([DARTS_V2], space="darts", proxies=proxies, options=SMALL, cache=False)
    assert record["errors"] == {}
    assert set(record["scores"]) == set(proxies)
    assert all(isinstance(score, float) and math.isfinite(score) for score in record["scores"].values()), record
    assert record["scores"]["params"] == record["params_m"] == 3.349342  # the evaluation network's cost
    assert record["scores"]["skip"] == 2.0  # skips 0->4, 0->5, 2->3, 2->4, 2->5 jump 3, 4, 0, 1, 2 states
    assert record["test_accuracy"] is None  # no ground truth
