"""Fixtures shared by every test folder. Data-dependent tests fail (never skip) under CI when NASX_DATA is missing."""

import logging
import os
from pathlib import Path

import pytest

# Searches default to one worker process per core; the suite's hundreds of small searches run in this process
# (tests of the executors name theirs)
os.environ.setdefault("NASX_EXECUTOR", "serial")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("NASX_DATA")
    if not value or not Path(value).is_dir():
        message = "NASX_DATA must point at the benchmark data directory (../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(value)


#: the colour of each class of ``own_images``: a network tells them apart after a few steps
CLASS_COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40))


@pytest.fixture
def own_images(tmp_path):
    """Writes a user's own data: ``own_images(side=24, per_class=12, classes=3)`` makes a folder with one
    sub-folder of PNGs per class (``class0``, ...), each image its class's colour with seeded noise, and returns
    its path."""

    def make(side: int = 24, per_class: int = 12, classes: int = 3, name: str = "photos") -> Path:
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        root = tmp_path / name
        for label in range(classes):
            folder = root / f"class{label}"
            folder.mkdir(parents=True)
            for number in range(per_class):
                noise = rng.normal(0, 40, (side, side, 3))
                pixels = np.clip(np.array(CLASS_COLOURS[label]) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{number:03d}.png")
        return root

    return make


@pytest.fixture
def nasx_cli(capsys):
    """Runs the ``nasx`` command in this process: (exit status, stdout, stderr)."""
    from nasx_cli.main import main

    logger = logging.getLogger("nasx")
    handlers, propagate = list(logger.handlers), logger.propagate

    def call(*args):
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as done:
            code = done.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield call
    logger.handlers[:], logger.propagate = handlers, propagate  # main() installs its own warning handler
