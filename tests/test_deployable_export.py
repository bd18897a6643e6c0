"""nasx export --format onnx|python|torchscript and nasx run --export: files that need no nasx give the outputs of
the network nasx builds."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import nasx
from nasx import NasxError

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
MOBILE = json.dumps({"ks": [3, 5, 7] * 7, "e": [6, 4, 3] * 7, "d": [2, 3, 4, 2, 3, 1]}, separators=(",", ":"))
NB_NLP = '{"f":{"input":["x","h_prev_0"],"op":"linear"},"h_new_0":{"input":["f"],"op":"activation_tanh"}}'

# (space, dataset, architecture, space options): one network of each space with image networks, small where the
# space has sizes
CASES = [
    ("nats-tss", "cifar100", "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
     {}),
    ("nats-sss", "ImageNet16-120", "8:16:24:32:64", {}),
    ("nb101", "cifar10", "input;conv3x3-bn-relu:0;maxpool3x3:0,1;conv1x1-bn-relu:1;output:2,3", {}),
    ("darts", "cifar10", DARTS_V2, {"channels": 6, "layers": 5}),
    ("mobile", "cifar10", MOBILE, {"width_mult": 0.5, "dropout": 0.2}),
]
IDS = [case[0] for case in CASES]


def inputs_of(space, dataset, options, size, seed=5):
    from nasx.exporting import example_inputs
    from nasx.plugins import Plugins

    return example_inputs(Plugins().get("space", space)(dataset=dataset, **options), size, seed)


def reference(arch, space, dataset, options, images, training=False):
    """Outputs of the network nasx builds (seed 0 weights)."""
    network = nasx.build(arch, space=space, dataset=dataset, options=options)
    network.train(training)
    if training:
        torch.manual_seed(0)
    with torch.no_grad():
        return network(images)


RUN_WITHOUT_NASX = textwrap.dedent("""
    import importlib.util, sys
    import torch
    for name in ("nasx", "nasx_nats", "nasx_nb101", "nasx_darts", "nasx_mobile", "nasx_nbnlp"):
        sys.modules[name] = None  # any import of them fails
    path, images_path, out_path, weights = sys.argv[1:]
    spec = importlib.util.spec_from_file_location("exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = module.build(weights=weights == "1")
    images = torch.load(images_path)
    with torch.no_grad():
        evaluated = network.eval()(images)
        torch.manual_seed(0)
        trained = network.train()(images)
    params = sum(p.numel() for p in network.parameters())
    torch.save({"params": params, "eval": evaluated, "train": trained}, out_path)
""")


@pytest.mark.parametrize("space, dataset, arch, options", CASES, ids=IDS)
def test_python_file_builds_without_nasx(tmp_path, space, dataset, arch, options):
    path = tmp_path / "net.py"
    result = nasx.export(arch, space=space, dataset=dataset, options=options, out=path, format="python",
                         weights=True)
    assert result.files == [path, tmp_path / "net_weights.pt"]
    assert "import nasx" not in path.read_text() and "nasx_" not in path.read_text().split('"""', 2)[2]
    images = inputs_of(space, dataset, options, 4)
    torch.save(images, tmp_path / "images.pt")
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_NASX, str(path), str(tmp_path / "images.pt"),
                           str(tmp_path / "out.pt"), "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    outputs = torch.load(tmp_path / "out.pt")
    assert outputs["params"] == result.params
    # the initial weights nasx drew, and the same computation in evaluation and in training mode
    assert torch.allclose(outputs["eval"], reference(arch, space, dataset, options, images), atol=1e-6)
    assert torch.allclose(outputs["train"], reference(arch, space, dataset, options, images, training=True),
                          atol=1e-6)


def test_python_file_without_weights_draws_its_own(tmp_path):
    space, dataset, arch, options = CASES[-1]
    path = tmp_path / "mobile_net.py"
    result = nasx.export(arch, space=space, dataset=dataset, options=options, out=path, format="python")
    assert result.files == [path] and not (tmp_path / "mobile_net_weights.pt").exists()
    images = inputs_of(space, dataset, options, 2)
    torch.save(images, tmp_path / "images.pt")
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_NASX, str(path), str(tmp_path / "images.pt"),
                           str(tmp_path / "out.pt"), "0"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    outputs = torch.load(tmp_path / "out.pt")
    assert outputs["params"] == result.params
    assert not torch.allclose(outputs["eval"], reference(arch, space, dataset, options, images))


@pytest.mark.parametrize("space, dataset, arch, options", CASES, ids=IDS)
def test_torchscript_loads_back_with_the_same_outputs(tmp_path, space, dataset, arch, options):
    path = tmp_path / "net.pt"
    result = nasx.export(arch, space=space, dataset=dataset, options=options, out=path, format="torchscript")
    loaded = torch.jit.load(str(path))
    images = inputs_of(space, dataset, options, 3)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(images), reference(arch, space, dataset, options, images), atol=1e-5)
    if space in ("nb101", "mobile"):  # TorchScript compiles these networks: they train as nasx's do
        assert result.note.startswith("scripted")
        with torch.no_grad():
            torch.manual_seed(0)
            trained = loaded.train()(images)
        assert torch.allclose(trained, reference(arch, space, dataset, options, images, training=True), atol=1e-5)
    else:
        assert result.note.startswith("traced in evaluation mode")


@pytest.mark.parametrize("space, dataset, arch, options", [*CASES, ("nb-nlp", "ptb", NB_NLP, {})],
                         ids=[*IDS, "nb-nlp"])
def test_onnx_equals_pytorch(tmp_path, space, dataset, arch, options):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    path = tmp_path / "net.onnx"
    nasx.export(arch, space=space, dataset=dataset, options=options, out=path, format="onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = inputs_of(space, dataset, options, 5)  # not the export's batch size: the batch dimension is dynamic
    (logits,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    expected = reference(arch, space, dataset, options, images)
    assert logits.shape == tuple(expected.shape)
    assert float((torch.from_numpy(logits) - expected).abs().max()) <= 1e-4 * max(1.0, float(expected.abs().max()))


def test_nb_nlp_networks_are_refused_as_python_in_one_line(tmp_path):
    with pytest.raises(NasxError, match="does not trace as straight-line code: it uses a size of its input as a "
                                        "Python number") as refused:
        nasx.export(NB_NLP, space="nb-nlp", out=tmp_path / "lm.py", format="python")
    assert len(str(refused.value).splitlines()) == 1
    assert not (tmp_path / "lm.py").exists()


def test_networks_whose_python_differs_in_training_are_refused(tmp_path):
    with pytest.raises(NasxError, match="something else in training than in evaluation"):
        nasx.export(DARTS_V2, space="darts", options={"channels": 4, "layers": 3, "drop_path": 0.2},
                    out=tmp_path / "d.py", format="python")


@pytest.mark.parametrize("format", ["onnx", "python", "torchscript", "nasx"])
def test_unwritable_paths_are_one_line_errors(tmp_path, format):
    if format == "onnx":
        pytest.importorskip("onnxruntime")
    (tmp_path / "file").write_text("")
    space, dataset, arch, options = CASES[1]
    with pytest.raises(NasxError, match="^cannot write .*file/net") as refused:
        nasx.export(arch, space=space, dataset=dataset, options=options, out=tmp_path / "file" / "net",
                    format=format)
    assert len(str(refused.value).splitlines()) == 1


def test_bad_formats_and_options_are_refused(tmp_path, monkeypatch):
    arch = CASES[1][2]
    with pytest.raises(NasxError, match="unknown export format 'tflite'; choose one of nasx, onnx, python"):
        nasx.export(arch, space="nats-sss", out=tmp_path / "m", format="tflite")
    with pytest.raises(NasxError, match="--weights is for --format python"):
        nasx.export(arch, space="nats-sss", out=tmp_path / "m", format="onnx", weights=True)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(NasxError, match=r"--format onnx needs onnxruntime: pip install 'nasx\[export\]'"):
        nasx.export(arch, space="nats-sss", out=tmp_path / "m.onnx", format="onnx")
    assert not list(tmp_path.iterdir())


def nasx_cli(*args):
    return subprocess.run([sys.executable, "-m", "nasx_cli.main", *args], capture_output=True, text=True)


def test_export_command_writes_python_with_weights(tmp_path):
    out = tmp_path / "model.py"
    done = nasx_cli("export", "--space", "nats-sss", "--arch", "8:8:16:16:24", "--out", str(out), "--format",
                    "python", "--weights")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("python: trains and evaluates as the network does")
    assert done.stderr.split() == ["wrote", str(out), "wrote", str(tmp_path / "model_weights.pt")]


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "Invalid value for '--format'"),
    (["--format", "torchscript", "--weights"], "--weights is for --format python"),
])
def test_export_command_rejects_bad_formats(tmp_path, args, message):
    done = nasx_cli("export", "--space", "nats-sss", "--arch", "8:8:16:16:24", "--out", str(tmp_path / "m"), *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_run_exports_the_network_it_found(tmp_path):
    folder = tmp_path / "found"
    done = nasx_cli("run", "--space", "mobile", "--dataset", "cifar10", "-o", "mobile.width_mult=0.35",
                    "--proxy", "params", "--search", "random", "--max-evals", "3", "--no-cache", "--quiet",
                    "--export", str(folder), "--out", str(tmp_path / "result.json"))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    names = ["network.onnx", "network.py", "network_weights.pt", "network.torchscript.pt"]
    assert result["exports"] == [str(folder / name) for name in names]
    assert sorted(path.name for path in folder.iterdir()) == sorted(names)
    for name in names:
        assert f"wrote {folder / name}" in done.stderr
    # the files hold the network found, with the export's default initial weights
    images = inputs_of("mobile", "cifar10", {"width_mult": 0.35}, 2)
    loaded = torch.jit.load(str(folder / "network.torchscript.pt"))
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(images),
                              reference(result["arch"], "mobile", "cifar10", {"width_mult": 0.35}, images), atol=1e-5)


def test_run_without_the_onnx_extra_says_so(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    result = nasx.run(space="nats-sss", proxies=["params"], search="random", max_evals=2, cache=False,
                      export=tmp_path)
    assert result.exports == [str(tmp_path / name) for name in ("network.py", "network_weights.pt",
                                                                "network.torchscript.pt")]
    assert "no ONNX file written: pip install 'nasx[export]'" in result.warnings


class Toy(torch.nn.Module):
    """A parameter outside torch's layers, a branch on a channel count, a view by the batch size."""

    def __init__(self, halve_in_training=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.scale = torch.nn.Parameter(torch.full((4,), 2.0))
        self.head = torch.nn.Linear(4, 2)
        self.halve_in_training = halve_in_training

    def forward(self, x):
        y = self.conv(x) * self.scale.view(1, -1, 1, 1)
        if y.shape[1] > 3:  # decided while tracing, from the example's values
            y = torch.relu(y)
        if self.halve_in_training and self.training:
            y = y / 2
        return self.head(y.mean((2, 3)).view(x.size(0), -1))


def test_straight_line_python_of_a_small_network(tmp_path):
    from nasx.standalone import load_source, python_source

    network = Toy()
    source = python_source(network, torch.randn(2, 3, 8, 8), title="toy", module="toy", arch="toy",
                           input_shape=(3, 8, 8), num_classes=2, weights_file=None, any_resolution=True)
    assert "relu" in source and "if " not in source.split("def forward", 1)[1].split("def build", 1)[0]
    written = load_source(source, tmp_path / "toy.py")["build"]()
    assert sorted(written.state_dict()) == sorted(network.state_dict())
    written.load_state_dict(network.state_dict())
    images = torch.randn(5, 3, 11, 7)  # another batch size and resolution
    with torch.no_grad():
        assert torch.equal(written(images), network(images))
    with pytest.raises(NasxError, match="something else in training than in evaluation"):
        python_source(Toy(halve_in_training=True), torch.randn(2, 3, 8, 8), title="toy", module="toy", arch="toy",
                      input_shape=(3, 8, 8), num_classes=2, weights_file=None, any_resolution=True)
