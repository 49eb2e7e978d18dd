"""`cnnlab summary` and `cnnlab models` through the real CLI."""

import json

from cnnlab.models import list_models

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # shared cores: two threads per process are much slower here


def summary_json(cli, *args: str) -> dict:
    proc = cli("summary", *args, "--json", env=ONE_THREAD)
    return json.loads(proc.stdout)


def test_chapter_cnn_totals(cli):
    s = summary_json(cli, "chapter-cnn", "--input", "1x28x28")
    assert (s["params"], s["trainable"]) == (123_222, 123_222)
    # conv 24*24*16*25 + 20*20*32*16*25 + 6*6*64*32*25, linear 576*100 + 100*10
    assert s["macs"] == 230_400 + 5_120_000 + 1_843_200 + 57_600 + 1_000
    assert s["mismatches"] == []
    first, last = s["layers"][0], s["layers"][-1]
    assert first == {
        "name": "layer.0",
        "type": "Conv2d",
        "output_shape": [16, 24, 24],
        "params": 416,
        "macs": 230_400,
    }
    assert last["output_shape"] == [10]
    assert sum(layer["params"] for layer in s["layers"]) == s["params"]
    assert sum(layer["macs"] for layer in s["layers"]) == s["macs"]


def test_table_output(cli):
    out = cli("summary", "chapter-cnn", "--input", "1x28x28", env=ONE_THREAD).stdout
    assert "layer.5 (Conv2d)" in out and "64 x 6 x 6" in out
    assert "Total params: 123,222" in out
    assert "7,252,200" in out
    assert "5 conv/pool layers checked, all match" in out


def test_small_resnet_and_googlenet(cli):
    s = summary_json(cli, "resnet18", "--input", "3x32x32", "--width", "0.25", "--classes", "7")
    assert s["mismatches"] == [] and s["layers"][-1]["output_shape"] == [7]
    g = summary_json(cli, "googlenet", "--input", "1x28x28", "--width", "0.25")
    assert g["params_not_run"] > 0  # the aux heads: counted in params, not run in eval
    assert g["params"] == sum(layer["params"] for layer in g["layers"]) + g["params_not_run"]


def _fails(cli, *args: str):
    proc = cli(*args, check=False, env=ONE_THREAD)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line
    return proc.stderr


def test_too_small_input_names_the_layer(cli):
    err = _fails(cli, "summary", "googlenet", "--input", "3x1x1")
    assert "too small" in err and "shrinks to zero at layer 'maxpool3' (MaxPool2d" in err
    # VGG's small form pools with ceil_mode: PyTorch keeps a 1x1 map as one partial window, and so does
    # the formula (it used to refuse 3x16x16, which PyTorch runs)
    table = cli("summary", "vgg16", "--input", "3x16x16").stdout
    assert "features.30 (MaxPool2d)      512 x 1 x 1" in table and "all match" in table
    # chapter-cnn sizes its FC from the input and fails while being built: still named by layer
    err = _fails(cli, "summary", "chapter-cnn", "--input", "1x8x8", "--json")
    assert "shrinks to zero at layer 'layer.2' (Conv2d" in err


def test_bad_arguments(cli):
    assert "CxHxW" in _fails(cli, "summary", "chapter-cnn", "--input", "3x16")
    assert "unknown model 'nope'" in _fails(cli, "summary", "nope")


def test_models_lists_every_model(cli):
    data = json.loads(cli("models", "--json", env=ONE_THREAD).stdout)
    rows = {r["name"]: r for r in data["models"]}
    assert sorted(rows) == list_models()
    assert rows["chapter-cnn"] == {"name": "chapter-cnn", "params": 123_222, "macs": 7_252_200}
    assert all(isinstance(r["params"], int) and r["macs"] > 0 for r in rows.values())


def test_models_imagenet_form(cli):
    proc = cli("models", "--input", "3x224x224", "--classes", "1000", "--json", env=ONE_THREAD)
    rows = {r["name"]: r for r in json.loads(proc.stdout)["models"]}
    assert rows["resnet50"]["params"] == 25_557_032
    assert rows["vgg16"]["params"] == 138_357_544
    assert rows["googlenet-tv"]["params"] == 13_004_888  # built with its aux heads
    assert round(rows["resnet50"]["macs"] / 1e9, 2) == 4.09  # torchvision's 4.09 GFLOPS (multiply-adds)
