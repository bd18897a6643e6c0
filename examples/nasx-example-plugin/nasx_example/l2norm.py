"""A minimal proxy: the L2 norm of all conv and linear weights right after initialisation."""

from nasx import Proxy
from nasx.options import positive


class L2Norm(Proxy):
    name = "example-l2norm"
    summary = "L2 norm of the initialised conv and linear weights (an example plugin)"
    higher_is_better = True
    defaults = {"repeats": 1}
    option_checks = {"repeats": positive}  # checked when the proxy is built: -o example-l2norm.repeats=0 is refused

    def score_network(self, network, batch, space) -> float:
        import torch  # imported when scoring, so listing plugins stays fast

        weights = [m.weight for m in network.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        return float(torch.sqrt(sum((w.detach() ** 2).sum() for w in weights)))
