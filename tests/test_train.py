"""``nasx train``: a network learns on tiny own data, runs are reproducible, a resumed run ends where an uninterrupted
one does, ``--from`` takes a search's result, and bad input is one line."""

import json

import pytest
import torch

import nasx

CELL = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
#: a small recipe that learns the colour-coded classes of ``own_images`` reliably in a few epochs
RECIPE = {"batch_size": 8, "lr": 0.05, "threads": 1}


@pytest.fixture
def photos(own_images):
    return own_images(side=16, per_class=14, classes=3)  # 39 training and 3 validation images


def record_without_times(out):
    record = json.loads((out / "train.json").read_text())
    for epoch in record["history"]:
        epoch.pop("seconds")
    record.pop("out")
    return record


def weights(out):
    return torch.load(out / "checkpoint.pt", weights_only=True)["model"]


def same_weights(first, second):
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_the_network_learns_the_images(tmp_path, photos):
    result = nasx.train(data=photos, arch=CELL, epochs=4, out=tmp_path / "run", **RECIPE)
    losses = [epoch["train_loss"] for epoch in result.history]
    assert [epoch["epoch"] for epoch in result.history] == [1, 2, 3, 4]
    assert losses[-1] == min(losses) and losses[-1] < losses[0] / 2, losses
    assert result.train_images == 39 and result.val_images == 3 and result.num_classes == 3
    # chance is a third; the 3 held-out images are learnt (100 % here, on this CPU)
    assert result.final_val_accuracy == result.history[-1]["val_accuracy"] > 50
    # the cosine schedule over the epochs
    assert [epoch["lr"] for epoch in result.history] == pytest.approx([0.05, 0.05 * (1 + 2 ** -0.5) / 2, 0.025,
                                                                       0.05 * (1 - 2 ** -0.5) / 2])
    assert json.loads((tmp_path / "run" / "train.json").read_text()) == result.to_dict()
    # the checkpoint holds the trained network of the space built for the data
    network = nasx.build(CELL, data=photos)
    network.load_state_dict(weights(tmp_path / "run"))
    assert network.eval()(torch.zeros(1, 3, 16, 16)).shape == (1, 3)


def test_same_seed_same_run_and_resume_ends_where_an_uninterrupted_run_does(tmp_path, photos):
    nasx.train(data=photos, arch=CELL, epochs=2, out=tmp_path / "whole", **RECIPE)
    nasx.train(data=photos, arch=CELL, epochs=2, out=tmp_path / "again", **RECIPE)
    assert record_without_times(tmp_path / "again") == record_without_times(tmp_path / "whole")
    assert same_weights(weights(tmp_path / "again"), weights(tmp_path / "whole"))

    def stop_after_the_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nasx.train(data=photos, arch=CELL, epochs=2, out=tmp_path / "cut", on_epoch=stop_after_the_first, **RECIPE)
    assert json.loads((tmp_path / "cut" / "train.json").read_text())["epochs_done"] == 1
    resumed = nasx.train(data=photos, arch=CELL, epochs=2, out=tmp_path / "cut", resume=True, batch_size=8,
                         lr=0.05)  # the threads of the interrupted run are kept
    assert resumed.epochs_done == 2 and resumed.threads == 1
    assert record_without_times(tmp_path / "cut") == record_without_times(tmp_path / "whole")
    assert same_weights(weights(tmp_path / "cut"), weights(tmp_path / "whole"))
    # another seed is another run
    nasx.train(data=photos, arch=CELL, epochs=2, out=tmp_path / "other", seed=1, **RECIPE)
    assert not same_weights(weights(tmp_path / "other"), weights(tmp_path / "whole"))


def test_from_a_search_result(tmp_path, own_images, nasx_cli):
    photos = own_images(side=24, per_class=4, classes=3)
    found = nasx.run(space="nats-sss", data=photos, resolution=16, proxies=["skip"], max_evals=2, cache=False,
                     out=tmp_path / "results.json")
    code, stdout, stderr = nasx_cli("train", "--from", tmp_path / "results.json", "--epochs", "1", "--batch-size",
                                    "6", "--threads", "1", "--out", tmp_path / "run")
    assert code == 0, stderr
    record = json.loads((tmp_path / "run" / "train.json").read_text())
    assert (record["space"], record["arch"]) == ("nats-sss", found.arch)
    assert record["data"] == str(photos) and record["input_shape"] == [3, 16, 16] and record["dataset"] == found.dataset
    assert record["epochs_done"] == 1 and "epoch 1/1: train loss" in stderr
    assert "final validation accuracy" in stdout and found.arch in stdout


@pytest.mark.parametrize("args, message", [
    (["--arch", CELL, "--from", "results.json"], "--arch ARCH or --from results.json"),
    ([], "--arch ARCH or --from results.json"),
    (["--arch", CELL, "--val-fraction", "1"], "--val-fraction must be a number at least 0 and below 1, got 1.0"),
    (["--arch", CELL, "--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--arch", CELL, "--lr", "0"], "--lr must be a number above 0, got 0.0"),
    (["--arch", CELL, "--resume"], "--resume: no checkpoint.pt"),
    (["--from", "missing.json"], "cannot read --from"),
    (["--arch", "|nor_conv~0|"], "malformed NB201 arch string"),
    (["--arch", CELL, "--space", "nb101"], "space 'nb101' cannot build its networks for other data"),
])
def test_bad_input_is_one_line(args, message, tmp_path, own_images, nasx_cli):
    photos = own_images(side=16, per_class=3, classes=2)
    code, _, stderr = nasx_cli("train", "--data", photos, "--out", tmp_path / "run", "--quiet", *args)
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_a_finished_folder_is_not_overwritten_and_resume_checks_the_run(tmp_path, photos, nasx_cli):
    nasx.train(data=photos, arch=CELL, epochs=1, out=tmp_path / "run", **RECIPE)
    code, _, stderr = nasx_cli("train", "--data", photos, "--arch", CELL, "--out", tmp_path / "run", "--quiet")
    assert code == 2 and "holds a training run already" in stderr
    code, _, stderr = nasx_cli("train", "--data", photos, "--arch", CELL, "--out", tmp_path / "run", "--resume",
                               "--lr", "0.1", "--batch-size", "8", "--quiet")
    assert code == 2 and "--resume: the run in" in stderr and "recipe" in stderr


def test_darts_trains_with_its_auxiliary_head_and_drop_path_and_resumes_exactly(tmp_path, own_images):
    """Drop path (from the second epoch on) draws from torch's generator: the checkpoint keeps its state, so a run
    resumed after the second epoch is the same run."""
    photos = own_images(side=32, per_class=4, classes=3)
    arch = ("Genotype(normal=[('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 2), "
            "('avg_pool_3x3', 1), ('skip_connect', 3), ('sep_conv_5x5', 0), ('dil_conv_5x5', 4)], "
            "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), "
            "('avg_pool_3x3', 2), ('skip_connect', 2), ('dil_conv_3x3', 3), ('max_pool_3x3', 1), "
            "('sep_conv_3x3', 4)], reduce_concat=range(2, 6))")
    settings = {"data": photos, "arch": arch, "space": "darts", "epochs": 3, "batch_size": 6, "threads": 1,
                "options": {"darts.channels": 4, "darts.layers": 3, "darts.auxiliary": True, "darts.drop_path": 0.2}}
    whole = nasx.train(out=tmp_path / "whole", **settings)
    assert whole.options["auxiliary"] and whole.num_classes == 3 and len(whole.history) == 3

    def stop_after_the_second(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nasx.train(out=tmp_path / "cut", on_epoch=stop_after_the_second, **settings)
    nasx.train(out=tmp_path / "cut", resume=True, **settings)
    assert record_without_times(tmp_path / "cut") == record_without_times(tmp_path / "whole")
    assert same_weights(weights(tmp_path / "cut"), weights(tmp_path / "whole"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda(tmp_path, photos):
    """On a GPU the recipe runs and learns; its checkpoint loads into the CPU network (runs there are close to,
    not bit-identical with, the CPU's)."""
    result = nasx.train(data=photos, arch=CELL, epochs=2, out=tmp_path / "run", device="cuda", **RECIPE)
    assert result.device == "cuda" and result.epochs_done == 2
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    network = nasx.build(CELL, data=photos)
    network.load_state_dict(torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu",
                                       weights_only=True)["model"])
