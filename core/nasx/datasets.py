"""A user's own images (``--data PATH``): listing them, identifying them, reading only what is needed, and the
class-balanced batch the proxies see.

Three formats:

- a folder with one sub-folder per class (torchvision's ``ImageFolder`` layout): the class is the sub-folder's
  name, classes in sorted order, images found at any depth below it (PNG, JPEG, BMP and the other formats
  torchvision reads); grey, palette and RGBA images are converted to RGB (alpha is dropped);
- an ``.npz`` with uint8 images ``x`` of shape (N, H, W, C) with C = 1, 3 or 4 (or (N, H, W) for grey) and integer
  labels ``y`` (N,); an optional ``class_names`` array fixes the number of classes, else it is ``max(y) + 1``;
- a torchvision CIFAR-10/100 python folder (``cifar-10-batches-py/``, ``cifar-100-python/``, or the folder that
  holds one): its training batches.

What is read when: a folder is listed at once (names, sizes, labels: one ``stat`` per file) and, without
``--resolution``, every image's header is read to learn its size (Pillow reads only the first bytes); pixels are
decoded only when a batch needs them. An uncompressed ``.npz`` (``np.savez``) is memory-mapped: only the images
asked for are read. A compressed one (``np.savez_compressed``) cannot be read in part, so its images are
decompressed into memory once. CIFAR's batches are pickles, which are read whole, so their images are held in
memory (150 MB for CIFAR-10's training set).

Identity: a content hash of the file names (relative to the data's folder), sizes, labels and the resolution the
images are read at; every batch drawn adds the hash of the bytes it read and the seed of the draw. Changing an image
changes the hash of any batch that reads it (and the listing hash whenever its file size changes).

Unreadable images (a damaged, truncated or foreign file with an image suffix): they are skipped, with their count
and the first of them in a warning, as long as they are at most 1 in 100 of the images read by that step (the
header pass, the proxies' batch, the check before training); more is an error naming the first one. So on small
data any unreadable image is an error.

Torch is imported only by the functions that make tensors.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from nasx.errors import NasxError
from nasx.interfaces import Task

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch

#: file suffixes of images in a class folder (torchvision's ImageFolder list)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
#: the largest share of the images read by one step that may be unreadable: they are skipped with a warning
UNREADABLE_SHARE = 0.01

logger = logging.getLogger("nasx")


class UnreadableImage(Exception):
    """One image that cannot be read: its file and why."""

    def __init__(self, file: Path, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


def check_unreadable(bad: Sequence[UnreadableImage], read: int, what: str) -> None:
    """Apply the rule for unreadable images to one step that read ``read`` images of which ``bad`` failed: a
    warning with their count when they are at most ``UNREADABLE_SHARE`` of them, else an error naming the first."""
    if not bad:
        return
    first = bad[0]
    if len(bad) > UNREADABLE_SHARE * read:
        more = f" ({len(bad)} of the {read} images {what} cannot be read)" if len(bad) > 1 else ""
        raise NasxError(f"cannot read image {str(first.file)!r}: {first.reason}{more}")
    logger.warning("skipped %d unreadable image(s) of the %d %s (first: %s: %s)", len(bad), read, what,
                   first.file, first.reason)


def _rgb(image: Any, size: tuple[int, int] | None) -> np.ndarray:
    """A Pillow image as (H, W, 3) uint8 RGB, resized (bilinear) to ``size`` = (height, width) when it differs."""
    from PIL import Image

    if image.mode != "RGB":
        image = image.convert("RGB")  # grey and palette images are replicated, RGBA's alpha is dropped
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def balanced_order(labels: np.ndarray, seed: int, among: np.ndarray | None = None) -> np.ndarray:
    """Indices of the images (all, or those in ``among``) in an order whose every prefix is class-balanced: each
    class's images are shuffled by a generator seeded with ``seed``, then taken round-robin over the classes. A
    larger draw with the same seed starts with the smaller one."""
    rng = np.random.default_rng(seed)
    candidates = np.arange(len(labels)) if among is None else np.asarray(among, dtype=np.int64)
    chosen, turn, klass = [], [], []
    for label in np.unique(labels[candidates]):
        members = rng.permutation(candidates[labels[candidates] == label])
        chosen.append(members)
        turn.append(np.arange(len(members)))
        klass.append(np.full(len(members), label))
    if not chosen:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((np.concatenate(klass), np.concatenate(turn)))
    return np.concatenate(chosen)[order]


def channel_statistics(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (on the 0..1 scale) of uint8 (N, H, W, 3) images; a constant channel gets std 1."""
    values = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / 255.0
    mean, std = values.mean(axis=0), values.std(axis=0)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


class ImageData:
    """A user's labelled images, read lazily. Subclasses list their format and read one image or a few."""

    #: the format's name, recorded in the content hash
    format = ""

    def __init__(self, path: Path, labels: np.ndarray, classes: Sequence[str], shape: tuple[int, int],
                 listing: Iterable[bytes]) -> None:
        self.path = path
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = tuple(classes)
        #: (height, width) every image is read at
        self.shape = shape
        digest = hashlib.sha256(f"{self.format}\n{shape[0]}x{shape[1]}\n".encode())
        digest.update("\n".join(self.classes).encode() + b"\n")
        for part in listing:
            digest.update(part)
        digest.update(self.labels.tobytes())
        self.digest = digest.hexdigest()
        present = np.unique(self.labels)
        if len(present) < 2:
            only = self.classes[present[0]] if len(present) else "none"
            raise NasxError(f"{str(path)!r} has a single class ({only!r}): a classifier needs at least two")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, *self.shape)

    @property
    def task(self) -> Task:
        """The data as a space sees it: its name (the content hash) stands in for the dataset in results and
        cache keys."""
        return Task(f"data:{self.digest[:16]}", self.num_classes, self.input_shape)

    def read_one(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8; raises UnreadableImage for one that cannot be read."""
        raise NotImplementedError

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Images as (n, H, W, 3) uint8; an image that cannot be read is an error naming it."""
        images = np.empty((len(indices), *self.shape, 3), dtype=np.uint8)
        for row, index in enumerate(indices):
            try:
                images[row] = self.read_one(int(index))
            except UnreadableImage as failure:
                raise NasxError(f"cannot read image {str(failure.file)!r}: {failure.reason}") from None
        return images

    def unreadable(self, indices: Iterable[int], progress: bool = False) -> dict[int, UnreadableImage]:
        """The images among ``indices`` that cannot be read, by index (each is read once)."""
        return {}

    def read_readable(self, order: Sequence[int], wanted: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices, images) of the first ``wanted`` readable images in ``order``, unreadable ones skipped by the
        rule of ``check_unreadable``."""
        indices, images, bad = [], [], []
        for index in order:
            if len(indices) == wanted:
                break
            try:
                images.append(self.read_one(int(index)))
                indices.append(int(index))
            except UnreadableImage as failure:
                bad.append(failure)
        check_unreadable(bad, len(indices) + len(bad), what)
        stacked = np.stack(images) if images else np.empty((0, *self.shape, 3), dtype=np.uint8)
        return np.asarray(indices, dtype=np.int64), stacked

    def proxy_batch(self, size: int, seed: int) -> "Batch":
        """A seeded class-balanced batch of ``size`` images (all of them when there are fewer), normalised with
        its own per-channel mean and std. Its identity names the data's hash, the seed, and the bytes read."""
        from nasx.data import Batch, normalised

        indices, pixels = self.read_readable(balanced_order(self.labels, seed), size, "drawn for the proxies")
        labels = self.labels[indices]
        mean, std = channel_statistics(pixels)
        read = hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()[:16]
        identity = f"{self.task.name}:{self.shape[0]}x{self.shape[1]}:seed{seed}:n{len(indices)}:{read}"
        import torch

        return Batch(normalised(pixels, mean, std), torch.as_tensor(labels, dtype=torch.long), identity)


class FolderImages(ImageData):
    """One sub-folder per class; every image a file."""

    format = "folder"

    def __init__(self, path: Path, resolution: int | None) -> None:
        classes = sorted(entry.name for entry in path.iterdir() if entry.is_dir() and not entry.name.startswith("."))
        loose = sorted(f.name for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not classes:
            if loose:
                raise NasxError(f"{str(path)!r}: images must be in one sub-folder per class (found {loose[0]!r} "
                                "directly in the folder)")
            raise NasxError(f"{str(path)!r} is empty: expected one sub-folder of images per class, an .npz or a "
                            "CIFAR folder")
        if loose:  # they have no class: left out, but not silently
            logger.warning("%d image(s) directly in %s belong to no class folder and are left out (first: %s)",
                           len(loose), path, loose[0])
        files: list[Path] = []
        labels: list[int] = []
        for label, name in enumerate(classes):
            found = list(self._images_below(path / name))
            if not found:
                raise NasxError(f"class folder {str(path / name)!r} holds no image")
            files.extend(found)
            labels.extend([label] * len(found))
        if resolution is None:
            files, labels, shape = self._common_size(path, files, labels)
        else:
            shape = (resolution, resolution)
        self.files = files
        listing = (f"{file.relative_to(path).as_posix()}\t{file.stat().st_size}\n".encode() for file in files)
        super().__init__(path, np.asarray(labels), classes, shape, listing)

    @staticmethod
    def _images_below(folder: Path) -> Iterable[Path]:
        """Image files at any depth below ``folder``, in sorted order; hidden files and folders are left out, and
        any other file is an error naming it."""
        for root, folders, names in os.walk(folder, followlinks=True):
            folders[:] = sorted(f for f in folders if not f.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                file = Path(root) / name
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    raise NasxError(f"{str(file)!r} is not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
                yield file

    @staticmethod
    def _common_size(path: Path, files: list[Path], labels: list[int]):
        """Reads every image's header: (files, labels, (height, width)) without the unreadable ones, at the most
        common size (a warning names the sizes when they are mixed)."""
        from PIL import Image

        sizes: list[tuple[int, int]] = []
        kept_files, kept_labels, bad = [], [], []
        for file, label in zip(files, labels):
            try:
                with Image.open(file) as image:
                    width, height = image.size
            except Exception as exc:  # Pillow raises many kinds for a foreign or damaged file
                bad.append(UnreadableImage(file, _reason(exc)))
                continue
            sizes.append((height, width))
            kept_files.append(file)
            kept_labels.append(label)
        check_unreadable(bad, len(files), f"in {path}")
        counts = Counter(sizes)
        shape = max(counts, key=lambda size: (counts[size], size))
        if len(counts) > 1:
            shown = ", ".join(f"{h}x{w}: {n}" for (h, w), n in counts.most_common(3))
            logger.warning("images of %d sizes in %s (%s%s): all are resized to the most common, %dx%d (--resolution N "
                           "resizes to NxN)", len(counts), path, shown, ", ..." if len(counts) > 3 else "", *shape)
        return kept_files, kept_labels, shape

    def read_one(self, index: int) -> np.ndarray:
        from PIL import Image

        file = self.files[index]
        try:
            with Image.open(file) as image:
                return _rgb(image, self.shape)
        except Exception as exc:  # a truncated, damaged or foreign file
            raise UnreadableImage(file, _reason(exc)) from None

    def unreadable(self, indices: Iterable[int], progress: bool = False) -> dict[int, UnreadableImage]:
        from nasx.progress import ProgressBar

        indices = list(indices)
        bad = {}
        with ProgressBar("checking images", len(indices), enabled=progress) as bar:
            for number, index in enumerate(indices, start=1):
                try:
                    self.read_one(int(index))
                except UnreadableImage as failure:
                    bad[int(index)] = failure
                if number % 256 == 0:
                    bar.update(number, f"{number}/{len(indices)}")
        return bad


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ArrayImages(ImageData):
    """Images held in an array (memory-mapped or in memory) of shape (N, H, W, C) or (N, H, W)."""

    def __init__(self, path: Path, pixels: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                 resolution: int | None, listing: Iterable[bytes]) -> None:
        self.pixels = pixels
        native = tuple(pixels.shape[1:3])
        self.resize = resolution is not None and (resolution, resolution) != native
        shape = (resolution, resolution) if resolution is not None else native
        super().__init__(path, labels, classes, shape, listing)

    def read_one(self, index: int) -> np.ndarray:
        return self.read([index])[0]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image

        raw = np.asarray(self.pixels[np.asarray(indices, dtype=np.int64)])
        if self.resize:  # through Pillow, as folder images are
            return np.stack([_rgb(Image.fromarray(_channels_last(image)), self.shape) for image in raw]) \
                if len(raw) else np.empty((0, *self.shape, 3), dtype=np.uint8)
        if raw.ndim == 3:  # grey: replicated, as Pillow converts L to RGB
            return np.repeat(raw[..., None], 3, axis=-1)
        if raw.shape[-1] == 1:
            return np.repeat(raw, 3, axis=-1)
        return np.ascontiguousarray(raw[..., :3])  # RGB, or RGBA whose alpha is dropped as Pillow drops it


def _channels_last(image: np.ndarray) -> np.ndarray:
    """An (H, W, C) image as Pillow takes it: (H, W) for one channel."""
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


class NpzImages(ArrayImages):
    format = "npz"

    def __init__(self, path: Path, resolution: int | None) -> None:
        if not zipfile.is_zipfile(path):
            raise NasxError(f"{str(path)!r} is not an .npz archive; expected uint8 images 'x' (N, H, W, C) and "
                            "integer labels 'y'")
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [name for name in ("x", "y") if name not in archive.files]
                if missing:
                    raise NasxError(f"{str(path)!r} has no array {missing[0]!r} (expected uint8 images 'x' of shape "
                                    "(N, H, W, C) and integer labels 'y')")
                labels = archive["y"]
                names = archive["class_names"] if "class_names" in archive.files else None
            pixels = _memory_mapped(path, "x.npy")
            if pixels is None:  # compressed, or a layout numpy cannot map: read whole
                with np.load(path, allow_pickle=False) as archive:
                    pixels = archive["x"]
        except NasxError:
            raise
        except Exception as exc:  # zipfile, format and numpy errors of a damaged or foreign file
            raise NasxError(f"cannot read {str(path)!r} ({_reason(exc)}); expected an .npz with uint8 images 'x' "
                            "and integer labels 'y'") from None
        if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or (pixels.ndim == 4 and pixels.shape[-1] not in
                                                                      (1, 3, 4)):
            raise NasxError(f"{str(path)!r}: 'x' must hold uint8 images of shape (N, H, W, C) with C = 1, 3 or 4, "
                            f"got {pixels.dtype} {tuple(pixels.shape)}")
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise NasxError(f"{str(path)!r}: 'y' must hold one integer label per image, got {labels.dtype} "
                            f"{tuple(labels.shape)}")
        if len(labels) != len(pixels):
            raise NasxError(f"{str(path)!r}: {len(pixels)} images in 'x' but {len(labels)} labels in 'y'")
        if len(labels) == 0:
            raise NasxError(f"{str(path)!r} holds no image")
        if labels.min() < 0:
            position = int(np.argmax(labels < 0))
            raise NasxError(f"{str(path)!r}: label {int(labels[position])} of image {position} is negative; labels "
                            "are 0, 1, ..., classes - 1")
        if names is not None:
            classes = [str(name) for name in np.asarray(names).reshape(-1)]
            if labels.max() >= len(classes):
                position = int(np.argmax(labels >= len(classes)))
                raise NasxError(f"{str(path)!r}: label {int(labels[position])} of image {position} is out of range "
                                f"for its {len(classes)} class_names")
        else:
            classes = [str(label) for label in range(int(labels.max()) + 1)]
        listing = [f"x {tuple(pixels.shape)}\n".encode()]
        super().__init__(path, pixels, labels.astype(np.int64), classes, resolution, listing)


def _memory_mapped(path: Path, member: str) -> np.ndarray | None:
    """The array ``member`` of an .npz memory-mapped in place, when it is stored uncompressed; else None."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)  # the local file header: its name and extra field may differ from the directory's
        if header[:4] != b"PK\x03\x04":
            return None
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        offset = handle.tell()
    if dtype.hasobject or fortran_order:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class CifarImages(ArrayImages):
    format = "cifar"

    def __init__(self, folder: Path, layout: tuple, resolution: int | None) -> None:
        import pickle

        from nasx.data import read_cifar_batch

        _, train_files, _, label_key, meta_file, names_key = layout
        files = [folder / name for name in train_files if (folder / name).is_file()]
        if not files:
            raise NasxError(f"{str(folder)!r} holds no CIFAR training batch ({', '.join(train_files)})")
        parts = [read_cifar_batch(file, label_key) for file in files]
        pixels = np.concatenate([p for p, _ in parts])
        labels = np.concatenate([l for _, l in parts])
        classes = [str(label) for label in range(10 if label_key == b"labels" else 100)]
        try:
            with open(folder / meta_file, "rb") as handle:
                classes = [n.decode() for n in pickle.load(handle, encoding="bytes")[names_key]]
        except Exception:  # no metadata file: the classes keep their numbers as names
            pass
        if labels.min() < 0 or labels.max() >= len(classes):
            raise NasxError(f"{str(folder)!r}: CIFAR labels must lie in 0..{len(classes) - 1}")
        listing = [f"{file.name}\t{file.stat().st_size}\n".encode() for file in files]
        super().__init__(folder, pixels, labels, classes, resolution, listing)


def open_images(path: str | os.PathLike, resolution: int | None = None) -> ImageData:
    """The user's images at ``path``: a folder with a sub-folder per class, an .npz, or a CIFAR python folder."""
    from nasx.data import cifar_layout

    path = Path(path).expanduser()
    if not path.exists():
        raise NasxError(f"data {str(path)!r} does not exist")
    if path.is_dir():
        found = cifar_layout(path)
        if found is not None:
            return CifarImages(*found, resolution)
        return FolderImages(path, resolution)
    if path.suffix.lower() == ".npz":
        return NpzImages(path, resolution)
    raise NasxError(f"data {str(path)!r} must be a folder with one sub-folder per class, an .npz, or a CIFAR folder")
