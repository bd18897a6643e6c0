"""Where benchmark data lives, and the input mini-batch proxies see.

Data directory: an explicit path, else ``$NASX_DATA``, else the user data dir (``platformdirs``).
nasx never downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasx.errors import NasxError

if TYPE_CHECKING:  # pragma: no cover
    import torch

# Per-channel mean and std (RGB, on the 0..1 scale) of each dataset's training images.
NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "ImageNet16-120": (
        (122.68 / 255, 116.66 / 255, 104.01 / 255),
        (63.22 / 255, 61.26 / 255, 65.09 / 255),
    ),
}


def resolve_data_dir(explicit: str | os.PathLike | None = None, required: bool = False) -> Path | None:
    """The data directory to use, or None when none is configured and none is required.

    An explicitly given directory (option or ``NASX_DATA``) that does not exist is an error.
    """
    for source, value in (("--data-dir", explicit), ("NASX_DATA", os.environ.get("NASX_DATA"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise NasxError(f"data directory {str(path)!r} (from {source}) does not exist")
            return path
    import platformdirs

    default = Path(platformdirs.user_data_dir("nasx"))
    if default.is_dir():
        return default
    if required:
        raise NasxError("no data directory: pass --data-dir or set NASX_DATA")
    return None


@dataclass
class Batch:
    """A mini-batch of normalised images (N, C, H, W float32) with labels, and an identity for caching."""

    images: "torch.Tensor"
    labels: "torch.Tensor"
    identity: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: str) -> "Batch":
        """The same batch on another torch device."""
        return Batch(self.images.to(device), self.labels.to(device), self.identity)

    def take(self, size: int) -> "Batch":
        """The first ``size`` images; an error if the batch is smaller."""
        identity = self.identity_of(size)
        if identity == self.identity:
            return self
        return Batch(self.images[:size], self.labels[:size], identity)

    def identity_of(self, size: int) -> str:
        """The identity of ``take(size)``, without taking it (a cache key needs no tensors)."""
        if size <= 0 or size == len(self):
            return self.identity
        if size > len(self):
            raise NasxError(f"a proxy needs {size} images but the input batch has only {len(self)}")
        return f"{self.identity}[:{size}]"


class SyntheticBatch(Batch):
    """Standard-normal images (already 'normalised') with uniform random labels, drawn from ``seed`` on first use.
    A command whose workers do the scoring then never imports torch for it, and each worker is sent the four
    numbers that draw it instead of its megabytes."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, size: int = 256, seed: int = 0) -> None:
        self.shape, self.num_classes, self.size, self.seed = tuple(shape), num_classes, size, seed
        self.identity = f"synthetic:normal:{'x'.join(map(str, self.shape))}:n{size}:seed{seed}"
        self._drawn: tuple["torch.Tensor", "torch.Tensor"] | None = None

    def __len__(self) -> int:
        return self.size

    @property
    def images(self) -> "torch.Tensor":
        return self._draw()[0]

    @property
    def labels(self) -> "torch.Tensor":
        return self._draw()[1]

    def _draw(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        if self._drawn is None:
            import torch

            generator = torch.Generator().manual_seed(self.seed)
            images = torch.randn((self.size, *self.shape), generator=generator)
            self._drawn = images, torch.randint(0, self.num_classes, (self.size,), generator=generator)
        return self._drawn

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_drawn": None}


def synthetic_batch(shape: tuple[int, int, int], num_classes: int, size: int = 256, seed: int = 0) -> Batch:
    """Standard-normal images (already 'normalised') with uniform random labels; no data needed."""
    return SyntheticBatch(shape, num_classes, size, seed)


def load_images(path: str | os.PathLike, dataset: str, size: int | None = None) -> Batch:
    """Real images from an ``.npz`` (uint8 NHWC ``x``, labels ``y``) or a torchvision CIFAR folder.

    Images are taken in file order and normalised with ``dataset``'s mean and std.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise NasxError(f"image file or folder {str(path)!r} does not exist")
    if path.is_dir():
        pixels, labels = _read_cifar_folder(path)
    elif path.suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise NasxError(f"{str(path)!r} is not an .npz archive; expected an .npz with uint8 images 'x' of shape "
                            "(N, H, W, 3) and labels 'y'")
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files or "y" not in archive.files:
                    raise NasxError(f"{path} has no arrays 'x' (images) and 'y' (labels)")
                pixels, labels = archive["x"], archive["y"]
            if not isinstance(pixels, np.ndarray) or not isinstance(labels, np.ndarray):
                raise ValueError("'x' or 'y' is not stored as a .npy array")
        except NasxError:
            raise
        except Exception as exc:  # zipfile, pickle and numpy errors of a damaged or foreign file
            raise NasxError(f"cannot read images from {str(path)!r} ({type(exc).__name__}: {exc}); expected an "
                            ".npz with uint8 images 'x' of shape (N, H, W, 3) and labels 'y'") from None
    else:
        raise NasxError(f"{path}: images must be an .npz file or a CIFAR folder in torchvision's format")
    if len(labels) != len(pixels):
        raise NasxError(f"{path}: {len(pixels)} images but {len(labels)} labels")
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise NasxError(f"{path}: expected uint8 images of shape (N, H, W, 3), got {pixels.dtype} {pixels.shape}")
    if size is not None:
        pixels, labels = pixels[:size], labels[:size]
    digest = hashlib.sha256(pixels.tobytes() + np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16]
    return _normalise(pixels, labels, dataset, f"images:{digest}:n{len(pixels)}:{dataset}")


def _normalise(pixels: np.ndarray, labels: np.ndarray, dataset: str, identity: str) -> Batch:
    import torch

    if dataset not in NORMALISATION:
        raise NasxError(f"no normalisation known for dataset {dataset!r}")
    return Batch(normalised(pixels, *NORMALISATION[dataset]), torch.as_tensor(labels, dtype=torch.long), identity)


def normalised(pixels: np.ndarray, mean, std) -> "torch.Tensor":
    """uint8 (N, H, W, 3) images as a float32 (N, 3, H, W) tensor, scaled to 0..1 and normalised per channel."""
    import torch

    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, 3, 1, 1) for v in (mean, std))
    images = (pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(images))


#: torchvision's CIFAR python folders: folder name, training files, test file, label key, metadata file and key
CIFAR_LAYOUTS = (
    ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels",
     "batches.meta", b"label_names"),
    ("cifar-100-python", ("train",), "test", b"fine_labels", "meta", b"fine_label_names"),
)


def cifar_layout(path: Path) -> tuple[Path, tuple] | None:
    """(the CIFAR folder, its layout) when ``path`` is a torchvision CIFAR python folder or holds one, else None."""
    for layout in CIFAR_LAYOUTS:
        folder_name, train_files, test_file = layout[:3]
        for folder in (path / folder_name, path):
            if any((folder / name).is_file() for name in (*train_files, test_file)):
                return folder, layout
    return None


def read_cifar_batch(file: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 32, 32, 3) uint8 and labels of one CIFAR python batch file (a pickle: read whole)."""
    try:
        with open(file, "rb") as handle:
            record: dict[bytes, Any] = pickle.load(handle, encoding="bytes")
        pixels = np.asarray(record[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return pixels, np.asarray(record[label_key], dtype=np.int64)
    except Exception as exc:  # a truncated or foreign pickle
        raise NasxError(f"cannot read CIFAR images from {str(file)!r} ({type(exc).__name__}: {exc}); "
                        "expected torchvision's CIFAR python batches") from None


def _read_cifar_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Test images of a torchvision CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``) folder."""
    found = cifar_layout(path)
    if found is not None:
        folder, (_, _, test_file, label_key, _, _) = found
        if (folder / test_file).is_file():
            return read_cifar_batch(folder / test_file, label_key)
    raise NasxError(f"{path} holds no CIFAR test batch (cifar-10-batches-py/test_batch or cifar-100-python/test)")
