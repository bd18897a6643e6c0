"""Zero-cost proxies for nasx. Modules import torch only when a score is computed."""
