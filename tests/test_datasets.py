"""A user's own images: the three formats, conversions, sizes, the proxies' batch, identity, and bad input."""

import logging
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from nasx.datasets import NpzImages, balanced_order, open_images
from nasx.errors import NasxError

RNG = np.random.default_rng(0)
#: 12 RGB images of 32x32 (CIFAR's size), 4 of each of 3 classes, sorted by class
PIXELS = RNG.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
LABELS = np.repeat(np.arange(3), 4)
CLASSES = ("cat", "dog", "eel")


def write_folder(root, pixels, labels, classes=CLASSES, suffix=".png"):
    for number, (image, label) in enumerate(zip(pixels, labels)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{number:03d}{suffix}")
    return root


def write_cifar(root, pixels, labels, classes=CLASSES):
    """A cifar-10-batches-py folder: the images split over two training batches, rows of 3072 channel-first
    bytes."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = pixels.transpose(0, 3, 1, 2).reshape(len(pixels), -1)
    for name, part in (("data_batch_1", slice(0, 7)), ("data_batch_2", slice(7, None))):
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rows[part], b"labels": [int(v) for v in labels[part]]}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [name.encode() for name in classes]}, handle)
    return root


def test_the_three_formats_read_to_the_same_pixels_and_labels(tmp_path):
    np.savez(tmp_path / "plain.npz", x=PIXELS, y=LABELS, class_names=np.array(CLASSES))
    np.savez_compressed(tmp_path / "packed.npz", x=PIXELS, y=LABELS, class_names=np.array(CLASSES))
    sources = [write_folder(tmp_path / "folder", PIXELS, LABELS), tmp_path / "plain.npz", tmp_path / "packed.npz",
               write_cifar(tmp_path / "cifar", PIXELS, LABELS)]
    for source in sources:
        data = open_images(source)
        assert data.classes == CLASSES and data.num_classes == 3 and data.input_shape == (3, 32, 32), source
        assert np.array_equal(data.labels, LABELS), source
        assert np.array_equal(data.read(range(12)), PIXELS), source
        assert np.array_equal(data.read([7, 2]), PIXELS[[7, 2]]), source
    # an uncompressed archive is memory-mapped: images are read when asked for, not when it is opened
    assert isinstance(open_images(tmp_path / "plain.npz").pixels, np.memmap)
    assert not isinstance(open_images(tmp_path / "packed.npz").pixels, np.memmap)


def test_grey_palette_and_rgba_images_become_rgb(tmp_path):
    grey = RNG.integers(0, 256, (4, 16, 16), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (4, 16, 16, 4), dtype=np.uint8)
    for number in range(4):
        (tmp_path / "folder" / "grey").mkdir(parents=True, exist_ok=True)
        (tmp_path / "folder" / "rgba").mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey[number], mode="L").save(tmp_path / "folder" / "grey" / f"{number}.png")
        Image.fromarray(rgba[number], mode="RGBA").save(tmp_path / "folder" / "rgba" / f"{number}.png")
    expected = np.concatenate([np.repeat(grey[..., None], 3, axis=-1), rgba[..., :3]])
    assert np.array_equal(open_images(tmp_path / "folder").read(range(8)), expected)
    labels = np.array([0, 0, 1, 1])
    np.savez(tmp_path / "grey.npz", x=grey, y=labels)
    np.savez(tmp_path / "grey1.npz", x=grey[..., None], y=labels)
    np.savez(tmp_path / "rgba.npz", x=rgba, y=labels)
    for name, pixels in (("grey", expected[:4]), ("grey1", expected[:4]), ("rgba", expected[4:])):
        assert np.array_equal(open_images(tmp_path / f"{name}.npz").read(range(4)), pixels), name
    # a palette image as Pillow converts it
    palette = Image.fromarray(grey[0], mode="L").convert("P")
    palette.save(tmp_path / "folder" / "grey" / "9.png")
    assert np.array_equal(open_images(tmp_path / "folder").read([4])[0], np.asarray(palette.convert("RGB")))


def test_mixed_sizes_are_resized_to_the_most_common_with_a_warning(tmp_path, caplog):
    small = RNG.integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    write_folder(tmp_path / "mixed", np.concatenate([PIXELS[:4, :24, :24], PIXELS[4:8, :24, :24]]),
                 np.repeat([0, 1], 4))
    for number, image in enumerate(small):
        Image.fromarray(image).save(tmp_path / "mixed" / "dog" / f"small{number}.png")
    Image.fromarray(small[0]).save(tmp_path / "mixed" / "loose.png")  # in no class folder
    with caplog.at_level(logging.WARNING, logger="nasx"):
        data = open_images(tmp_path / "mixed")
    assert data.shape == (24, 24) and len(data) == 10
    assert "1 image(s) directly in" in caplog.text and "loose.png" in caplog.text
    assert "images of 2 sizes" in caplog.text and "24x24: 8" in caplog.text and "16x20: 2" in caplog.text
    resized = np.asarray(Image.fromarray(small[1]).resize((24, 24), Image.Resampling.BILINEAR))
    assert np.array_equal(data.read([9])[0], resized)  # dog/small1.png sorts last
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nasx"):
        chosen = open_images(tmp_path / "mixed", resolution=16)
    assert chosen.shape == (16, 16) and "images of 2 sizes" not in caplog.text
    assert np.array_equal(chosen.read([9])[0],
                          np.asarray(Image.fromarray(small[1]).resize((16, 16), Image.Resampling.BILINEAR)))
    # the same resizing for images held in arrays
    np.savez(tmp_path / "images.npz", x=PIXELS, y=LABELS)
    expected = np.asarray(Image.fromarray(PIXELS[5]).resize((16, 16), Image.Resampling.BILINEAR))
    assert np.array_equal(open_images(tmp_path / "images.npz", resolution=16).read([5])[0], expected)
    assert open_images(tmp_path / "images.npz", resolution=16).task != open_images(tmp_path / "images.npz").task


def test_the_proxies_batch_is_class_balanced_seeded_and_normalised(tmp_path):
    labels = np.repeat([0, 1, 2], [10, 6, 3])
    pixels = RNG.integers(0, 256, (len(labels), 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "images.npz", x=pixels, y=labels)
    data = open_images(tmp_path / "images.npz")
    batch = data.proxy_batch(9, seed=0)
    assert np.bincount(batch.labels.numpy()).tolist() == [3, 3, 3]
    # every prefix is balanced: the first 3k images hold k of each class while each class has images left
    order = balanced_order(data.labels, 0)
    for size in (3, 6, 9):
        assert np.bincount(data.labels[order[:size]], minlength=3).tolist() == [size // 3] * 3
    assert np.bincount(data.labels[order[:15]]).tolist() == [6, 6, 3]  # class 2 runs out after 3
    assert sorted(order.tolist()) == list(range(len(labels)))
    again, other = data.proxy_batch(9, seed=0), data.proxy_batch(9, seed=1)
    assert batch.identity == again.identity and bool((batch.images == again.images).all())
    assert other.identity != batch.identity and not bool((other.images == batch.images).all())
    assert "seed0" in batch.identity and data.task.name in batch.identity
    # normalised with the batch's own per-channel mean and std
    images = batch.images.double()
    assert images.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (images.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
    assert len(data.proxy_batch(256, seed=0)) == len(labels)  # all of them when there are fewer


def test_the_content_hash_follows_the_images(tmp_path):
    root = write_folder(tmp_path / "bmp", PIXELS[:6, :16, :16], np.repeat([0, 1], 3), suffix=".bmp")
    before = open_images(root)
    batch = before.proxy_batch(256, seed=0)
    changed = PIXELS[4, :16, :16].copy()
    changed[3, 3, 0] ^= 1  # one value of one image: a BMP keeps its size
    Image.fromarray(changed).save(root / "dog" / "004.bmp")
    after = open_images(root)
    assert after.task == before.task  # names, sizes and labels are unchanged...
    assert after.proxy_batch(256, seed=0).identity != batch.identity  # ...but the bytes read are not
    Image.fromarray(PIXELS[4, :16, :16]).save(root / "dog" / "004.bmp")
    assert open_images(root).proxy_batch(256, seed=0).identity == batch.identity
    shutil.copy(root / "cat" / "000.bmp", root / "cat" / "000b.bmp")  # one image more
    assert open_images(root).task != before.task
    (root / "cat" / "000b.bmp").unlink()
    Image.fromarray(PIXELS[4, :8, :16]).resize((16, 16)).save(root / "dog" / "004.png")  # another format
    (root / "dog" / "004.bmp").unlink()
    assert open_images(root).task != before.task
    # a moved copy is the same data
    assert open_images(shutil.copytree(root, tmp_path / "elsewhere")).task == open_images(root).task


def test_unreadable_images_among_many_are_skipped_with_a_warning(tmp_path, caplog):
    """At most 1 in 100 of the images read may be unreadable: they are skipped, counted in a warning."""
    pixels = RNG.integers(0, 256, (102, 8, 8, 3), dtype=np.uint8)
    root = write_folder(tmp_path / "many", pixels, np.repeat([0, 1, 2], 34))
    (root / "dog" / "zzz.png").write_bytes(b"not a png at all")  # its header cannot be read
    with caplog.at_level(logging.WARNING, logger="nasx"):
        data = open_images(root)
    assert len(data) == 102
    assert "skipped 1 unreadable image(s) of the 103" in caplog.text and "zzz.png" in caplog.text
    (root / "dog" / "zzz.png").unlink()
    good = (root / "eel" / "070.png").read_bytes()
    (root / "eel" / "070.png").write_bytes(good[: len(good) // 2])  # truncated: found when its pixels are read
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nasx"):
        batch = open_images(root, resolution=8).proxy_batch(256, seed=0)  # no header pass: all 102 are drawn
    assert len(batch) == 101 and "skipped 1 unreadable image(s) of the 102" in caplog.text
    assert "070.png" in caplog.text
    shutil.copy(root / "eel" / "070.png", root / "eel" / "071.png")  # 2 of 102 are too many
    with pytest.raises(NasxError, match=r"cannot read image .*07[01].png.*\(2 of the 102 images"):
        open_images(root, resolution=8).proxy_batch(256, seed=0)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1, -1, 1]), "label -1 of image 2 is negative"),
    (np.array([0.0, 1.0, 1.0, 0.0]), "'y' must hold one integer label per image, got float64"),
    (np.array([0, 1, 3, 1]), "label 3 of image 2 is out of range for its 3 class_names"),
    (np.array([1, 1, 1, 1]), "single class"),
    (np.array([0, 1, 1]), "4 images in 'x' but 3 labels"),
])
def test_bad_npz_labels_are_named(tmp_path, labels, message):
    np.savez(tmp_path / "bad.npz", x=PIXELS[:4], y=labels, class_names=np.array(CLASSES))
    with pytest.raises(NasxError, match=message) as error:
        NpzImages(tmp_path / "bad.npz", None)
    assert "bad.npz" in str(error.value)
