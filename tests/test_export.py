"""nasx export / nasx.export: the file loads back into the same network, for every space, and rebuilds from its
constructor string."""

import os
import subprocess
import sys

import pytest
import torch

import nasx
from nasx import NasxError

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")

# space -> (dataset, architecture, space options) for the spaces known here: other datasets than the default, a
# small darts network; any other installed space is exported with its default dataset and a sampled architecture
KNOWN = {
    "nats-tss": ("cifar100",
                 "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|", {}),
    "nats-sss": ("ImageNet16-120", "8:16:24:32:64", {}),
    "nb101": ("cifar10", "input;conv3x3-bn-relu:0;maxpool3x3:0,1;conv1x1-bn-relu:1;output:2,3", {}),
    "darts": ("cifar10", DARTS_V2, {"channels": 6, "layers": 5, "auxiliary": True}),
}


def installed_spaces() -> list[str]:
    from nasx.plugins import Plugins

    return sorted(Plugins().names("space"))


def case(name):
    """(space instance, dataset, architecture, options) of one installed space."""
    import random

    from nasx.plugins import Plugins

    dataset, arch, options = KNOWN.get(name, (None, None, {}))
    space = Plugins().get("space", name)(dataset=dataset, **options)
    genotype = space.decode(arch) if arch else space.sample(random.Random(0))
    try:
        space.build(genotype)
    except NotImplementedError as reason:
        pytest.skip(f"space '{name}' builds no networks: {reason}")
    return space, space.dataset, space.encode(genotype), options


CASES = [(name, *KNOWN[name]) for name in KNOWN]  # for the tests of one export


def inputs(space, count, seed=0):
    """A fixed batch the space's networks read: its own (token ids) where it has one, else random images."""
    own = space.input_batch(None, count)
    if own is not None:
        return own.images
    return torch.randn(count, *space.input_shape, generator=torch.Generator().manual_seed(seed))


def outputs(network, images):
    """Logits of a fixed batch in evaluation mode."""
    with torch.no_grad():
        return network.eval()(images)


@pytest.mark.parametrize("space", installed_spaces())
def test_the_file_loads_back_into_the_same_network(tmp_path, space):
    built, dataset, arch, options = case(space)
    path = tmp_path / "nested" / "model.pt"
    result = nasx.export(arch, space=space, dataset=dataset, out=path, options=options, init_seed=3)
    payload = torch.load(path, weights_only=True)  # plain data and tensors: no code is unpickled
    assert payload["format"] == "nasx-export" and payload["format_version"] == 1
    assert (payload["space"], payload["dataset"], payload["arch"]) == (space, dataset, result.arch)
    assert payload["options"] == result.options and all(payload["options"][k] == v for k, v in options.items())
    assert payload["init"] == {"scheme": "pytorch", "seed": 3}
    assert tuple(payload["input_shape"]) == built.input_shape
    images = inputs(built, 3)

    loaded = nasx.load_export(path)
    assert sum(p.numel() for p in loaded.parameters()) == payload["params"] == result.params
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, payload["state_dict"][name]), name
    logits = outputs(loaded, images)
    assert logits.shape[:2] == (3, payload["num_classes"])  # a language model adds one logit vector per token

    # the constructor string rebuilds the same initial weights, so the same outputs
    rebuilt = eval(result.constructor, {"nasx": nasx})
    assert torch.equal(outputs(rebuilt, images), logits)
    # another seed gives other weights
    other = nasx.build(arch, space=space, dataset=dataset, options=options, init_seed=4)
    assert not torch.equal(outputs(other, images), logits)

    # the loaded network trains: gradients reach every parameter (darts: through its auxiliary head too)
    loaded.train()
    images = inputs(built, 4, seed=1)
    if hasattr(loaded, "forward_with_auxiliary"):
        logits, auxiliary = loaded.forward_with_auxiliary(images)
        loss = logits.logsumexp(1).mean() + 0.4 * auxiliary.logsumexp(1).mean()
    else:
        loss = loaded(images).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in loaded.parameters() if p.numel())  # nb101 has empty device markers


def test_darts_exports_the_evaluation_network(tmp_path):
    path = tmp_path / "darts_v2.pt"
    result = nasx.export(DARTS_V2, space="darts", out=path)
    assert result.params == 3_349_342  # DARTS's 36-channel, 20-cell network, not the proxies' smaller one
    assert result.options["channels"] == 36 and result.options["layers"] == 20
    network = nasx.load_export(path)
    assert len(network.cells) == 20
    assert outputs(network, torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_kaiming_initial_weights_are_the_proxies_first_initialisation(tmp_path):
    from nasx.torch_utils import initialise
    from nasx_nats.tss import NatsTopologySpace

    arch = CASES[0][2]
    nasx.export(arch, out=tmp_path / "m.pt", init="kaiming", init_seed=0)
    space = NatsTopologySpace(dataset="cifar10")
    network = space.build(space.decode(arch))
    initialise(network, "kaiming", 0)  # what the evaluator does before the first repeat with init seed 0
    loaded = nasx.load_export(tmp_path / "m.pt")
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_bad_exports_are_one_line_errors(tmp_path):
    with pytest.raises(NasxError, match="malformed darts genotype"):
        nasx.export("Genotype(normal=[])", space="darts", out=tmp_path / "m.pt")
    with pytest.raises(NasxError, match="no component of this run has an option 'channels'"):
        nasx.export(CASES[0][2], options={"channels": 3}, out=tmp_path / "m.pt")
    with pytest.raises(NasxError, match="unknown initialisation 'xavier'"):
        nasx.export(CASES[0][2], init="xavier", out=tmp_path / "m.pt")
    (tmp_path / "file").write_text("")
    with pytest.raises(NasxError, match="cannot write"):
        nasx.export(CASES[0][2], out=tmp_path / "file" / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_load_export_refuses_other_files(tmp_path):
    with pytest.raises(NasxError, match="cannot read"):
        nasx.load_export(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    for name in ("text.pt", "other.pt"):
        with pytest.raises(NasxError, match="is not a file written by nasx export"):
            nasx.load_export(tmp_path / name)
    nasx.export(DARTS_V2, space="darts", options={"channels": 4, "layers": 3}, out=tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["options"]["channels"] = 6  # as if the space now built another network from the same description
    torch.save(payload, tmp_path / "changed.pt")
    with pytest.raises(NasxError, match="do not fit the network that space 'darts' builds now"):
        nasx.load_export(tmp_path / "changed.pt")


def nasx_cli(*args):
    return subprocess.run([sys.executable, "-m", "nasx_cli.main", *args], capture_output=True, text=True)


def test_export_command(tmp_path):
    out = tmp_path / "model.pt"
    done = nasx_cli("export", "--space", "darts", "--arch", DARTS_V2, "--out", str(out), "-o", "darts.channels=4",
                    "-o", "layers=3", "--init-seed", "7")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("darts / cifar10: ")
    assert "rebuild: nasx.build(\"Genotype(normal=[('sep_conv_3x3', 0)" in done.stdout
    assert "init_seed=7" in done.stdout
    assert done.stderr.strip() == f"wrote {out}"
    network = nasx.load_export(out)
    assert sum(p.numel() for p in network.parameters()) == int(done.stdout.split(": ")[1].split()[0])


@pytest.mark.parametrize("args, message", [
    (["--space", "darts", "--arch", "Genotype()"], "malformed darts genotype"),
    (["--space", "dartz", "--arch", "x"], "did you mean 'darts'"),
    (["--space", "darts", "--arch", DARTS_V2, "-o", "darts.layers=2"], "darts.layers must be an integer of at least 3"),
])
def test_export_command_rejects_bad_input(tmp_path, args, message):
    done = nasx_cli("export", *args, "--out", str(tmp_path / "m.pt"))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("message, reason", [
    ("[enforce fail at inline_container.cc:747] . open file failed with strerror: No such file or directory",
     "No such file or directory"),
    ("[enforce fail at inline_container.cc:600] . unexpected pos 64 vs 0", "unexpected pos 64 vs 0"),
    ("PytorchStreamWriter failed writing file data/0: file write failed\nmore detail", "PytorchStreamWriter failed "
     "writing file data/0: file write failed"),
])
def test_a_failed_torch_save_is_one_line_naming_the_path_and_the_reason(tmp_path, message, reason):
    from nasx.exporting import _save

    def write():
        raise RuntimeError(message)

    with pytest.raises(NasxError) as refused:
        _save(tmp_path / "m.pt", write)
    assert str(refused.value) == f"cannot write {str(tmp_path / 'm.pt')!r}: {reason}"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, where files cannot be made")
def test_exporting_where_no_file_can_be_made_says_why_in_one_line():
    with pytest.raises(NasxError) as refused:
        nasx.export(CASES[0][2], out="/proc/nasx-cannot-be-here.pt")
    assert str(refused.value) == "cannot write '/proc/nasx-cannot-be-here.pt': No such file or directory"
