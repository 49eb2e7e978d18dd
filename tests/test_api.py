"""The Python API (`import cnnlab`): cheap to import, every name documented, and each verb returns exactly
what the matching `cnnlab ... --json` command prints (both call the same function)."""

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import untrained_checkpoint
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

import cnnlab


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    untrained_checkpoint(folder / "best")
    return folder


def test_import_cnnlab_loads_no_heavy_packages():
    code = (
        "import cnnlab, sys; heavy = [m for m in ('torch', 'matplotlib', 'fastapi', 'uvicorn', 'onnx', "
        "'onnxruntime', 'PIL', 'numpy') if m in sys.modules]; assert not heavy, heavy; "
        "assert 'summary' in dir(cnnlab) and cnnlab.__version__"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_resolves_and_is_documented():
    for name in cnnlab.__all__:
        value = getattr(cnnlab, name)
        assert value.__doc__ and value.__doc__.strip(), name
        assert name in dir(cnnlab)
    with pytest.raises(AttributeError):
        cnnlab.no_such_thing  # noqa: B018


def test_no_module_is_named_like_an_api_function():
    """Importing a module `cnnlab.X` sets the attribute X of the package: a module named like an API name
    would hide the function. No work-around in __init__.py: the modules have other names."""
    package = Path(cnnlab.__file__).parent
    clash = [n for n in cnnlab.__all__ if (package / f"{n}.py").exists() or (package / n).is_dir()]
    assert clash == []
    for module in (
        "cnnlab.commands.eval",
        "cnnlab.commands.predict",
        "cnnlab.evaluation",
        "cnnlab.prediction",
    ):
        importlib.import_module(module)  # the commands and the library behind the two functions
    assert cnnlab.evaluate.__module__ == "cnnlab.api" and cnnlab.predict.__module__ == "cnnlab.api"
    assert type(cnnlab).__setattr__ is types.ModuleType.__setattr__  # a plain module


def test_get_model_and_registry():
    model = cnnlab.get_model("resnet18", num_classes=10, in_channels=1, input_size=28)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert "chapter-cnn" in cnnlab.list_models() and "mnist-sample" in cnnlab.list_datasets()
    data = cnnlab.load_dataset("mnist-sample")
    assert data.train_x.shape == (8000, 1, 28, 28) and len(data.test_y) == 2000


def test_summary_equals_the_cli(cli):
    s = cnnlab.summary("chapter-cnn", "1x28x28")
    out = json.loads(cli("summary", "chapter-cnn", "--input", "1x28x28", "--json").stdout)
    assert {"model": "chapter-cnn", "classes": 10, "width": 1.0, **s.to_json()} == out
    assert str(s) == cli("summary", "chapter-cnn").stdout.rstrip("\n")  # print(summary) = the table
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Flatten())
    custom = cnnlab.summary(net, (3, 9, 9))
    assert custom.layers[0].output_shape == [4, 4, 4] and custom.checked == 1 and "Sequential" in str(custom)


def test_evaluate_equals_the_cli(cli, run):
    ours = cnnlab.evaluate(run)
    theirs = json.loads(cli("eval", str(run), "--json").stdout)
    ours.pop("images_per_second"), theirs.pop("images_per_second")  # timing, not a result
    assert ours == theirs and ours["test_images"] == 2000
    pair = cnnlab.load_checkpoint(run)
    assert cnnlab.evaluate(pair)["confusion"] == ours["confusion"]  # a loaded (model, meta) pair works too


def test_predict_equals_the_cli(cli, run, tmp_path):
    data = cnnlab.load_dataset("mnist-sample")
    files = []
    for i in (0, 1):
        files.append(tmp_path / f"digit{i}.png")
        Image.fromarray(data.test_x[i, 0].numpy()).save(files[-1])
    ours = cnnlab.predict(run, [str(f) for f in files])
    theirs = json.loads(cli("predict", str(run), *map(str, files), "--json").stdout)
    assert ours == theirs and len(ours) == 2
    pil = cnnlab.predict(run, Image.open(files[0]))  # one PIL image: same numbers, no file name
    assert pil[0]["probabilities"] == ours[0]["probabilities"] and pil[0]["file"] is None


def test_train_equals_the_cli(cli, tmp_path):
    settings = dict(dataset="mnist-sample", epochs=1, limit_train=512, max_steps=2, deterministic=True)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        ours = cnnlab.train(**settings, out=str(tmp_path / "api"))
        again = cnnlab.train(cnnlab.TrainConfig(**settings), out=str(tmp_path / "cfg"))  # a config works too
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in settings.items()]
    theirs = json.loads(cli("train", *flags, "--out", str(tmp_path / "cli"), "--json").stdout)
    volatile = ("train_seconds", "images_per_second", "phases", "checkpoint", "out")  # timings, paths
    assert {k: v for k, v in ours.items() if k not in volatile} == {
        k: v for k, v in theirs.items() if k not in volatile
    }
    assert (
        again["test_accuracy"] == ours["test_accuracy"] and (tmp_path / "api" / "best.safetensors").is_file()
    )
    with pytest.raises(cnnlab.CnnlabError, match="unknown TrainConfig field"):
        cnnlab.train(epoch=3)


def _pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(
    "kind, call, panels",
    [
        ("filters", lambda run: cnnlab.plot_filters(run), 16),
        ("samples", lambda run: cnnlab.plot_samples("mnist-sample"), 32),
        ("feature-maps", lambda run: cnnlab.plot_feature_maps(run, index=3), 16 + 32 + 64),
    ],
)
def test_plot_functions_return_the_figure_the_cli_saves(cli, run, tmp_path, kind, call, panels):
    from cnnlab.inside.plots import save

    figure = call(run)
    assert isinstance(figure, Figure) and figure.panels == panels
    assert figure._repr_png_().startswith(b"\x89PNG")  # what Jupyter shows inline
    args = (
        ["mnist-sample"]
        if kind == "samples"
        else [str(run)] + (["--index", "3"] if kind == "feature-maps" else [])
    )
    cli("plot", kind, *args, "--out", str(tmp_path / "cli.png"))
    save(figure, tmp_path / "api.png")
    assert np.array_equal(_pixels(tmp_path / "cli.png"), _pixels(tmp_path / "api.png"))


def test_other_plot_functions(run, tmp_path):
    assert cnnlab.plot_confusion(run).panels == 2
    assert cnnlab.plot_top_losses(run, count=5).panels == 5
    drawing = Image.new("L", (40, 40), 255)
    ImageDraw.Draw(drawing).line([(20, 5), (20, 35)], fill=0, width=4)  # a dark "1" on white paper
    assert cnnlab.plot_feature_maps(run, image=drawing, layer="layer.2").panels == 32
    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,test_loss,test_accuracy,val_loss,val_accuracy,images_per_second,seconds\n"
        "1,0.5,0.4,0.9,,,100,1\n"
    )
    assert cnnlab.plot_curves(tmp_path).panels == 2
    with pytest.raises(cnnlab.CnnlabError, match="unknown layer"):
        cnnlab.plot_feature_maps(run, layer="nope")


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's "Use it from Python" block, run as written except for a shorter training run."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Use it from Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "epochs=2" in code
    code = code.replace("epochs=2", "epochs=1, max_steps=2, limit_train=512")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "runs/py/best.safetensors").is_file() and (tmp_path / "feature-maps.png").is_file()
