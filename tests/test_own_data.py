"""Searching, scoring, grids and exports for a user's own images (``--data``), through the command line and the
API; bad input is one line on stderr with exit status 2."""

import json

import numpy as np
import pytest
import torch

import nasx

CELL = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
QUICK = ["--proxy", "naswot", "--proxy", "skip", "-o", "naswot.batch_size=8", "-o", "repeats=1", "--quiet"]


def test_run_searches_for_own_images_and_records_them(tmp_path, own_images, nasx_cli):
    photos = own_images(side=24, per_class=8, classes=3)
    out = tmp_path / "result.json"
    code, stdout, stderr = nasx_cli("run", "--space", "nats-tss", "--data", photos, *QUICK, "--max-evals", "3",
                                    "--no-cache", "--out", out)
    assert code == 0, stderr
    result = json.loads(out.read_text())
    assert result["num_classes"] == 3 and result["input_shape"] == [3, 24, 24]
    assert result["data"] == str(photos) and result["resolution"] is None and result["data_seed"] == 0
    assert result["dataset"].startswith("data:") and result["dataset"] in result["input"]
    assert result["test_accuracy"] is None and "your own data" in result["no_ground_truth"]
    assert result["evaluated"] == 3 and f"{photos} (3 classes, 24x24 images)" in stdout
    # the network found takes the images and gives one logit per class; its cost is the 24x24 one
    network = nasx.build(result["arch"], space="nats-tss", data=photos)
    assert network(torch.zeros(2, 3, 24, 24)).shape == (2, 3)
    assert result["params_m"] * 1e6 == pytest.approx(sum(p.numel() for p in network.parameters()), abs=0.5)


def test_score_with_own_images_caches_by_data_and_seed(tmp_path, own_images):
    photos = own_images(side=16, per_class=6, classes=3)
    cache = tmp_path / "scores.sqlite"

    def naswot(**data):
        (record,) = nasx.score([CELL], proxies=["naswot"], options={"naswot.batch_size": 8, "repeats": 1},
                               cache=cache, **data)
        assert record["test_accuracy"] is None
        return record

    first = naswot(data=photos)
    assert np.isfinite(first["scores"]["naswot"]) and not first["cached"]
    assert naswot(data=photos)["cached"]  # the same data, seed and resolution: from the cache
    assert not naswot(data=photos, data_seed=1)["cached"]  # another draw of the proxies' batch
    assert not naswot(data=photos, resolution=32)["cached"]  # other networks and images
    # other images in the same files' places
    own_images(side=16, per_class=7, classes=3, name="more")
    assert not naswot(data=photos.parent / "more")["cached"]


def test_resolution_resizes_for_the_space(tmp_path, own_images, nasx_cli):
    photos = own_images(side=30, per_class=4, classes=2)  # 30 is no multiple of 4: nats-tss refuses it
    code, _, stderr = nasx_cli("run", "--data", photos, *QUICK, "--max-evals", "1", "--no-cache")
    assert code == 2 and "multiples of 4" in stderr and "--resolution 32" in stderr
    result = nasx.run(data=photos, resolution=16, proxies=["skip"], max_evals=2, cache=False)
    assert result.input_shape == [3, 16, 16] and result.resolution == 16


def write_bad(kind, tmp_path, own_images):
    """The --data path of one kind of bad input (made in tmp_path), and the name of the file to be named."""
    if kind == "empty folder":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty", "empty"
    photos = own_images(side=16, per_class=4, classes=3)
    if kind == "single class":
        for folder in ("class1", "class2"):
            for file in (photos / folder).iterdir():
                file.unlink()
            (photos / folder).rmdir()
        return photos, "class0"
    if kind == "unreadable image":
        (photos / "class1" / "001.png").write_bytes(b"this is text")
        return photos, "001.png"
    if kind == "truncated image":
        data = (photos / "class2" / "003.png").read_bytes()
        (photos / "class2" / "003.png").write_bytes(data[:60])
        return photos, "003.png"
    if kind == "non-image file":
        (photos / "class1" / "notes.txt").write_text("a note")
        return photos, "notes.txt"
    pixels = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    labels = {"negative label": [0, 1, -2, 1], "float labels": [0.0, 1.0, 1.0, 0.0]}[kind]
    np.savez(tmp_path / "labels.npz", x=pixels, y=np.array(labels))
    return tmp_path / "labels.npz", "labels.npz"


@pytest.mark.parametrize("kind, message", [
    ("empty folder", "is empty"),
    ("single class", "single class"),
    ("unreadable image", "cannot read image"),
    ("truncated image", "cannot read image"),
    ("non-image file", "is not an image file"),
    ("negative label", "is negative"),
    ("float labels", "integer label"),
])
def test_bad_data_is_one_line_naming_the_file(kind, message, tmp_path, own_images, nasx_cli):
    path, named = write_bad(kind, tmp_path, own_images)
    code, _, stderr = nasx_cli("run", "--data", path, *QUICK, "--max-evals", "1", "--no-cache")
    assert code == 2
    assert message in stderr and named in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("args, message", [
    (["run", "--resolution", "2"], "too small for space 'nats-tss'"),
    (["run", "--space", "nb101"], "space 'nb101' cannot build its networks for other data"),
    (["run", "--space", "nb-nlp", "--proxy", "synflow"], "space 'nb-nlp' cannot build its networks for other data"),
    (["score", "--arch", CELL], None),
    (["run", "--dataset", "cifar10"], "--dataset cifar10 and --data together"),
    (["run", "--images", "x.npz"], "--images and --data together"),
    (["correlate", "--sample", "5"], "no ground truth for your own data"),
    (["experiment", "--search", "random", "--dataset", "cifar10"], "--dataset cifar10 and --data together"),
    (["export", "--arch", CELL, "--space", "nb101"], "space 'nb101' cannot build"),
    (["run", "--data-seed", "-1"], "--data-seed must be"),
])
def test_commands_take_own_data_or_refuse_in_one_line(args, message, tmp_path, own_images, nasx_cli):
    photos = own_images(side=16, per_class=4, classes=3)
    command, rest = args[0], args[1:]
    extra = {"run": [*QUICK, "--max-evals", "1", "--no-cache"], "score": [*QUICK, "--no-cache"],
             "correlate": [*QUICK, "--no-cache"], "export": ["--out", tmp_path / "m.pt"],
             "experiment": ["--proxies", "skip", "--max-evals", "1", "--quiet", "--no-cache"]}[command]
    if "--proxy" in rest:  # the proxy given replaces the quick ones
        extra = [value for value in extra if value not in QUICK]
    code, stdout, stderr = nasx_cli(command, "--data", photos, *rest, *extra)
    if message is None:  # works
        assert code == 0, stderr
        record = json.loads(stdout)
        assert np.isfinite(record["scores"]["naswot"]) and record["test_accuracy"] is None
        return
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_resolution_needs_data(nasx_cli):
    code, _, stderr = nasx_cli("run", "--proxy", "skip", "--resolution", "16", "--no-cache", "--quiet")
    assert code == 2 and "--resolution applies to your own images: give --data PATH too" in stderr


def test_experiment_searches_for_own_images(tmp_path, own_images):
    photos = own_images(side=16, per_class=4, classes=3)
    result = nasx.experiment(space="nats-tss", searches=["random"], proxies=["skip"], seeds=2, max_evals=3,
                             data=photos, cache=False, out=tmp_path / "runs")
    assert [row["status"] for row in result.runs] == ["ok", "ok"]
    name = nasx.run(data=photos, proxies=["skip"], max_evals=1, cache=False).dataset
    assert {row["dataset"] for row in result.runs} == {name}
    # another draw of the proxies' batch is another run of the grid
    again = nasx.experiment(space="nats-tss", searches=["random"], proxies=["skip"], seeds=2, max_evals=3,
                            data=photos, data_seed=1, cache=False, out=tmp_path / "runs", resume=True)
    assert len(again.runs) == 2 and {r["run_key"] for r in again.runs} != {r["run_key"] for r in result.runs}


def test_export_for_own_images_loads_without_the_data(tmp_path, own_images):
    photos = own_images(side=24, per_class=4, classes=4)
    exported = nasx.export(CELL, space="nats-tss", data=photos, out=tmp_path / "model.pt", init_seed=3)
    payload = torch.load(exported.path, weights_only=True)
    assert payload["num_classes"] == 4 and payload["input_shape"] == [3, 24, 24]
    assert payload["task"]["num_classes"] == 4 and payload["data"]["path"] == str(photos)
    rebuilt = eval(exported.constructor, {"nasx": nasx})  # reads the data again
    moved = photos.rename(tmp_path / "moved")
    loaded = nasx.load_export(exported.path)  # needs only the file
    for network in (rebuilt, loaded):
        for name, value in payload["state_dict"].items():
            assert torch.equal(network.state_dict()[name], value), name
        assert network.eval()(torch.zeros(2, 3, 24, 24)).shape == (2, 4)
    assert moved.is_dir()
