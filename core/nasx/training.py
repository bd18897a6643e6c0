"""``nasx train``: a short, honest recipe to confirm on your own images that a found network learns, and to compare
candidates by their held-out accuracy. It is not a training framework: one fixed recipe, a few options.

The recipe: the space's network for training (``Space.build_for_training`` of the space built for the data) with
seeded initial weights (each layer's own initialisation); SGD with momentum 0.9 and weight decay 5e-4; the learning
rate on a cosine schedule over the epochs (stepped once per epoch); random crops (each side padded with zeros by an
eighth of it, 4 pixels for 32) and horizontal flips; cross-entropy, optionally with label smoothing; a network with
an auxiliary head (DARTS's, ``forward_with_auxiliary``) adds 0.4 times its loss, and one with drop path
(``drop_path_probability``) has it raised linearly from 0 to its built value over the epochs, as DARTS does.
Images are scaled to 0..1 and normalised with the per-channel mean and std of a seeded class-balanced sample of (up
to) 256 training images. A seeded, class-stratified share of the images (``val_fraction``, 10 %) is held out, and
the accuracy on it is measured after every epoch.

Images are read lazily, a batch at a time, from the data's loader (:mod:`nasx.datasets`); every image is read once
before the first epoch, so that unreadable ones are left out (or stop the run) before any training.

Reproducible: one seeded generator draws the split, the order of every epoch and every crop and flip; torch's own
generator (drop path) is seeded too; on the CPU, deterministic algorithms are used and the thread count is fixed
(recorded, and kept by ``--resume``), so the same seed gives the same run, and a run resumed from the checkpoint of
any epoch ends with the same weights as one that was never interrupted. On a GPU, runs are close but not
bit-identical.

Written to ``out``: ``checkpoint.pt`` after every epoch (``torch.save`` of plain data: the configuration, the
epoch, the network's ``model`` state dict, the optimizer, scheduler and generator states, and the history) and
``train.json`` (strict JSON: per-epoch train loss, train accuracy, validation accuracy, learning rate and seconds,
and the final validation accuracy). Nothing here imports torch at import time.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from nasx import jsonio
from nasx.errors import NasxError
from nasx.settings import ComponentSpec, Data, check_int

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from nasx._build import Options
    from nasx.plugins import Plugins

CHECKPOINT = "checkpoint.pt"
RECORD = "train.json"
#: the ``format`` field of checkpoints
CHECKPOINT_FORMAT = "nasx-train-checkpoint"
#: DARTS's weight of the auxiliary head's loss
AUXILIARY_WEIGHT = 0.4
#: images of the sample whose per-channel mean and std normalise the inputs
NORMALISATION_SAMPLE = 256


def _number(option: str, value: Any, low: float, high: float | None = None, low_open: bool = False) -> float:
    """A finite number of at least ``low`` (above it with ``low_open``) and below ``high``; else a NasxError."""
    bounds = f"{'above' if low_open else 'at least'} {low:g}" + (f" and below {high:g}" if high is not None else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or (low_open and value == low) or (high is not None and value >= high):
        raise NasxError(f"{option} must be a number {bounds}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Recipe:
    """The training recipe's settings, checked where they are made."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("--epochs", self.epochs, 1)
        check_int("--batch-size", self.batch_size, 1)
        check_int("--seed", self.seed, 0)
        for option, name, low, high, low_open in (
                ("--lr", "lr", 0.0, None, True), ("momentum", "momentum", 0.0, 1.0, False),
                ("--weight-decay", "weight_decay", 0.0, None, False),
                ("--label-smoothing", "label_smoothing", 0.0, 1.0, False),
                ("--val-fraction", "val_fraction", 0.0, 1.0, False)):
            object.__setattr__(self, name, _number(option, getattr(self, name), low, high, low_open))


DEFAULT_RECIPE = Recipe()


@dataclass
class TrainResult:
    """What ``nasx train`` did; ``to_dict()`` is what it writes to ``train.json``."""

    out: Path
    space: str
    arch: str
    options: dict[str, Any]
    data: str
    resolution: int | None
    dataset: str
    num_classes: int
    input_shape: list[int]
    params: int
    train_images: int
    val_images: int
    unreadable_images: int
    normalisation: dict[str, list[float]]
    recipe: dict[str, Any]
    device: str
    threads: int
    epochs_done: int = 0
    final_val_accuracy: float | None = None
    #: one record per epoch: epoch, lr, train_loss, train_accuracy, val_accuracy (None without a validation
    #: split), seconds
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonio.strict({**asdict(self), "out": os.fspath(self.out)})

    def configuration(self) -> dict[str, Any]:
        """What a resumed run must share with the checkpoint it continues (the data by content, not by path)."""
        return {key: getattr(self, key) for key in ("space", "arch", "options", "dataset", "num_classes",
                                                     "input_shape", "train_images", "val_images", "recipe",
                                                     "threads")}


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """A result written by ``nasx run --out`` (its space, options, arch, data)."""
    try:
        with open(path) as handle:
            results = json.load(handle)
    except OSError as exc:
        raise NasxError(f"cannot read --from {os.fspath(path)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise NasxError(f"--from {os.fspath(path)!r} is not JSON ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("arch"), str) \
            or not isinstance(results.get("space"), str):
        raise NasxError(f"--from {os.fspath(path)!r} is not a result of nasx run (it needs 'space' and 'arch')")
    return results


def train_command(
    plugins: "Plugins",
    data: "str | os.PathLike | Data | None",
    resolution: int | None,
    arch: str | None,
    from_results: str | os.PathLike | None,
    space: ComponentSpec | None,
    options: "Options",
    recipe: Recipe,
    device: str | None,
    threads: int | None,
    out: str | os.PathLike | None,
    resume: bool,
    progress: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> TrainResult:
    from nasx._build import option_pairs, space_only
    from nasx.experiments import DEFAULT_SPACE

    if (arch is None) == (from_results is None):
        raise NasxError("give the architecture to train: --arch ARCH or --from results.json (one of them)")
    if from_results is not None:
        results = read_results(from_results)
        if space is not None and space != results["space"]:
            raise NasxError(f"--space {space} but {os.fspath(from_results)!r} is a result of space "
                            f"'{results['space']}'")
        space, arch = results["space"], results["arch"]
        recorded = (results.get("options") or {}).get(space) or {}
        options = (*option_pairs({f"{space}.{name}": value for name, value in recorded.items()}),
                   *option_pairs(options))
        # the images the search saw, at its resolution, unless others are given
        data = data if data is not None else results.get("data")
        resolution = resolution if resolution is not None else results.get("resolution")
    if data is None:
        raise NasxError("--data PATH is needed: nasx train trains on your own images")
    if out is None:
        raise NasxError("--out DIR is needed: the checkpoint of every epoch and train.json are written there")
    if threads is not None:
        check_int("--threads", threads, 1)
    own = Data.given(data, resolution)
    built_space = space_only(plugins, space if space is not None else DEFAULT_SPACE, None, options, own)
    genotype = built_space.decode(arch)
    return Training(built_space, genotype, own, recipe, device, threads, Path(out), progress, on_epoch).run(resume)


class Training:
    """One training run of the recipe (see the module's docstring)."""

    def __init__(self, space, genotype, data: Data, recipe: Recipe, device: str | None, threads: int | None,
                 out: Path, progress: bool, on_epoch) -> None:
        self.space = space
        self.genotype = genotype
        self.data = data
        self.recipe = recipe
        self.device_option = device
        self.threads = threads
        self.out = out
        self.progress = progress
        self.on_epoch = on_epoch

    def run(self, resume: bool) -> TrainResult:
        import torch

        from nasx.scoring import resolve_device

        checkpoint_path = self.out / CHECKPOINT
        checkpoint = None
        if resume:
            if not checkpoint_path.is_file():
                raise NasxError(f"--resume: no {CHECKPOINT} in {os.fspath(self.out)!r} to continue")
            checkpoint = _load_checkpoint(checkpoint_path)
        elif checkpoint_path.exists():
            raise NasxError(f"{os.fspath(self.out)!r} holds a training run already ({CHECKPOINT}): --resume "
                            "continues it, or choose another --out")
        device = resolve_device(self.device_option)
        threads = self.threads
        if threads is None:
            threads = checkpoint["threads"] if checkpoint is not None else torch.get_num_threads()
        previous_threads = torch.get_num_threads()
        previous_deterministic = (torch.are_deterministic_algorithms_enabled(),
                                  torch.is_deterministic_algorithms_warn_only_enabled())
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        try:
            torch.set_num_threads(threads)
            if device == "cpu":
                torch.use_deterministic_algorithms(True)
            with torch.random.fork_rng(devices=devices):
                return self._train(device, threads, checkpoint)
        finally:
            torch.set_num_threads(previous_threads)
            torch.use_deterministic_algorithms(previous_deterministic[0], warn_only=previous_deterministic[1])

    def _split(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(training indices, validation indices, number of unreadable images left out): each class's readable
        images shuffled with the seed, the first ``val_fraction`` of them held out (at least one image of a class
        stays for training)."""
        import numpy as np

        from nasx.datasets import check_unreadable

        images = self.data.images
        bad = images.unreadable(range(len(images)), self.progress)
        check_unreadable(list(bad.values()), len(images), f"in {os.fspath(self.data.path)}")
        readable = np.setdiff1d(np.arange(len(images)), np.fromiter(bad, dtype=np.int64, count=len(bad)))
        rng = np.random.default_rng(self.recipe.seed)
        train, val = [], []
        for label in range(images.num_classes):
            members = rng.permutation(readable[images.labels[readable] == label])
            held = min(int(round(self.recipe.val_fraction * len(members))), max(len(members) - 1, 0))
            val.append(members[:held])
            train.append(members[held:])
        return np.sort(np.concatenate(train)), np.sort(np.concatenate(val)), len(bad)

    def _train(self, device: str, threads: int, checkpoint: dict | None) -> TrainResult:
        import numpy as np
        import torch

        from nasx.datasets import balanced_order, channel_statistics
        from nasx.exporting import trainable_network

        recipe, images = self.recipe, self.data.images
        torch.random.default_generator.manual_seed(recipe.seed)
        if device.startswith("cuda"):  # the generator of the training's device, wherever the current device is
            torch.cuda.default_generators[torch.device(device).index or 0].manual_seed(recipe.seed)
        train_indices, val_indices, unreadable = self._split()
        _, sample = images.read_readable(balanced_order(images.labels, recipe.seed, among=train_indices),
                                         NORMALISATION_SAMPLE, "sampled for the normalisation")
        mean, std = channel_statistics(sample)
        network = trainable_network(self.space, self.genotype, "pytorch", recipe.seed).to(device)
        result = TrainResult(
            out=self.out, space=self.space.name, arch=self.space.encode(self.genotype),
            options=dict(self.space.options),
            data=os.fspath(self.data.path), resolution=self.data.resolution, dataset=self.space.dataset,
            num_classes=self.space.num_classes, input_shape=list(self.space.input_shape),
            params=sum(p.numel() for p in network.parameters()), train_images=len(train_indices),
            val_images=len(val_indices), unreadable_images=unreadable,
            normalisation={"mean": mean.tolist(), "std": std.tolist()}, recipe=asdict(recipe), device=device,
            threads=threads)
        optimizer = torch.optim.SGD(network.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                    weight_decay=recipe.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
        generator = torch.Generator().manual_seed(recipe.seed)
        if checkpoint is not None:
            wanted, recorded = jsonio.strict(result.configuration()), checkpoint["configuration"]
            mismatch = [key for key in wanted if wanted[key] != recorded.get(key)]
            if mismatch:
                key = mismatch[0]
                raise NasxError(f"--resume: the run in {os.fspath(self.out)!r} has {key} {recorded.get(key)!r}, "
                                f"not {wanted[key]!r}")
            network.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            generator.set_state(checkpoint["generator"])
            torch.random.default_generator.set_state(checkpoint["torch_rng"])
            if device.startswith("cuda") and checkpoint.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
            result.history = list(checkpoint["history"])
            result.epochs_done = checkpoint["epoch"]
        loss_of = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        batches = math.ceil(len(train_indices) / recipe.batch_size)
        normalise = _Normaliser(mean, std, device)
        pad = max(1, min(images.shape) // 8)
        drop_path = getattr(network, "drop_path_probability", None)

        from nasx.progress import ProgressBar

        with ProgressBar("training", recipe.epochs * batches, enabled=self.progress) as bar:
            for epoch in range(result.epochs_done, recipe.epochs):
                started = time.perf_counter()
                lr = optimizer.param_groups[0]["lr"]
                if drop_path is not None:
                    network.drop_path_probability = drop_path * epoch / recipe.epochs
                network.train()
                total_loss, correct, seen = 0.0, 0, 0
                order = train_indices[torch.randperm(len(train_indices), generator=generator).numpy()]
                # nearly equal batches of at most batch_size images: never a batch of one, which BatchNorm refuses
                for step, batch in enumerate(np.array_split(order, batches)):
                    inputs = normalise(_augmented(images.read(batch), pad, generator))
                    labels = torch.as_tensor(images.labels[batch], device=device)
                    logits, auxiliary = _forward(network, inputs)
                    loss = loss_of(logits, labels)
                    objective = loss if auxiliary is None else loss + AUXILIARY_WEIGHT * loss_of(auxiliary, labels)
                    optimizer.zero_grad(set_to_none=True)
                    objective.backward()
                    optimizer.step()
                    total_loss += loss.item() * len(batch)
                    correct += int((logits.argmax(dim=1) == labels).sum())
                    seen += len(batch)
                    bar.update(epoch * batches + step + 1, f"epoch {epoch + 1}/{recipe.epochs}  loss "
                                                           f"{total_loss / seen:.3f}  acc {100 * correct / seen:.1f} %")
                scheduler.step()
                record = {"epoch": epoch + 1, "lr": lr, "train_loss": total_loss / seen,
                          "train_accuracy": 100.0 * correct / seen,
                          "val_accuracy": self._accuracy(network, val_indices, normalise),
                          "seconds": time.perf_counter() - started}
                result.history.append(record)
                result.epochs_done = epoch + 1
                self._save(result, network, optimizer, scheduler, generator, device)
                if self.on_epoch is not None:
                    self.on_epoch(record)
        if result.epochs_done == recipe.epochs and result.history:
            result.final_val_accuracy = result.history[-1]["val_accuracy"]
        jsonio.write(self.out / RECORD, result.to_dict())
        return result

    def _accuracy(self, network, indices: np.ndarray, normalise) -> float | None:
        """Top-1 accuracy (%) on the held-out images, in evaluation mode; None without any."""
        import torch

        if not len(indices):
            return None
        network.eval()
        correct = 0
        with torch.no_grad():
            for first in range(0, len(indices), self.recipe.batch_size):
                batch = indices[first:first + self.recipe.batch_size]
                inputs = normalise(torch.from_numpy(self.data.images.read(batch)).permute(0, 3, 1, 2).float() / 255)
                labels = torch.as_tensor(self.data.images.labels[batch], device=inputs.device)
                correct += int((network(inputs).argmax(dim=1) == labels).sum())
        return 100.0 * correct / len(indices)

    def _save(self, result: TrainResult, network, optimizer, scheduler, generator, device: str) -> None:
        """The checkpoint of the epoch just done (written whole, then moved into place) and train.json so far."""
        import torch

        from nasx.exporting import _save

        payload = {
            "format": CHECKPOINT_FORMAT,
            "configuration": jsonio.strict(result.configuration()),
            "threads": result.threads,
            "epoch": result.epochs_done,
            "model": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.random.default_generator.get_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.startswith("cuda") else None,
            "history": jsonio.strict(result.history),
        }
        partial = self.out / (CHECKPOINT + ".partial")
        _save(partial, lambda: torch.save(payload, partial))
        os.replace(partial, self.out / CHECKPOINT)
        jsonio.write(self.out / RECORD, result.to_dict())


def _load_checkpoint(path: Path) -> dict[str, Any]:
    from nasx.exporting import _load

    checkpoint = _load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise NasxError(f"{os.fspath(path)!r} is not a checkpoint written by nasx train")
    return checkpoint


class _Normaliser:
    """(N, 3, H, W) images on the 0..1 scale -> normalised, on the training device."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, device: str) -> None:
        import torch

        self.mean = torch.as_tensor(mean).reshape(1, 3, 1, 1).to(device)
        self.std = torch.as_tensor(std).reshape(1, 3, 1, 1).to(device)
        self.device = device

    def __call__(self, images):
        return (images.to(self.device) - self.mean) / self.std


def _augmented(pixels: np.ndarray, pad: int, generator):
    """uint8 (N, H, W, 3) images as float (N, 3, H, W) on 0..1, each randomly cropped from the image padded with
    ``pad`` zeros on every side and flipped left-right with probability 1/2 (drawn from ``generator``)."""
    import torch

    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    count, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = torch.randint(0, 2 * pad + 1, (count,), generator=generator).tolist()
    columns = torch.randint(0, 2 * pad + 1, (count,), generator=generator).tolist()
    flips = (torch.rand(count, generator=generator) < 0.5).tolist()
    out = torch.empty_like(images)
    for number, (row, column, flip) in enumerate(zip(rows, columns, flips)):
        crop = padded[number, :, row:row + height, column:column + width]
        out[number] = crop.flip(-1) if flip else crop
    return out


def _forward(network, inputs):
    """(logits, auxiliary logits or None): a network with an auxiliary head gives both in training mode."""
    if hasattr(network, "forward_with_auxiliary"):
        return network.forward_with_auxiliary(inputs)
    return network(inputs), None
