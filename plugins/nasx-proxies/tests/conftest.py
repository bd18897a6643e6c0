import pytest

from nasx.data import synthetic_batch
from nasx_nats.tss import NatsTopologySpace


@pytest.fixture(scope="module")
def space():
    return NatsTopologySpace(dataset="cifar10")


@pytest.fixture(scope="module")
def batch(space):
    return synthetic_batch(space.input_shape, space.num_classes)
