"""NAS-Bench-101 networks, built by nasbench-pytorch, with its parameter count made equal to the benchmark's."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from nasbench_pytorch.model import Network
from nasbench_pytorch.model import model as nasbench_model

from nasx_nb101.cell import MODULES_PER_STACK, NUM_CLASSES, NUM_STACKS, STEM_CHANNELS


def build_network(matrix: np.ndarray, ops: Sequence[str]) -> torch.nn.Module:
    """The benchmark's network for a pruned cell (3 stacks of 3 modules, 128 stem channels, 10 classes).

    nasbench-pytorch fills the unused slots of a cell (the input vertex, and vertices the input does not feed) with
    ``Placeholder`` modules that each hold a one-element parameter, never used in the forward pass. They are why
    its parameter count exceeds the benchmark's by one per placeholder (8,555,575 against 8,555,530 for the first
    cell of the table: 9 modules x 5 placeholders). They are replaced by parameter-free identities here.
    """
    network = Network((np.asarray(matrix, dtype=np.int64), list(ops)), num_labels=NUM_CLASSES,
                      stem_out_channels=STEM_CHANNELS, num_stacks=NUM_STACKS,
                      num_modules_per_stack=MODULES_PER_STACK)
    for cell in network.modules():
        if isinstance(cell, nasbench_model.Cell):
            for slots in (cell.vertex_op, cell.input_op):
                for position, module in enumerate(slots):
                    if isinstance(module, nasbench_model.Placeholder):
                        slots[position] = torch.nn.Identity()
            cell.last_inop = cell.input_op[len(cell.input_op) - 1]
    return network
