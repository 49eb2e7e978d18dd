"""`cnnlab export`: an ONNX round trip for every model family, through the real CLI, at small size."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import MNIST_META, untrained_checkpoint

import cnnlab.export as export
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model, list_models

# one small member per family: the families share their code, so one each covers the exporter's cases
# (plain convs, BatchNorm + residual adds, Inception concatenations, adaptive pooling, space-to-depth)
FAMILIES = {
    "chapter-cnn": 0.25,
    "vgg11-bn": 0.125,
    "resnet18": 0.125,
    "googlenet": 0.125,
    "fastnet-bn": 0.25,
    "s2dnet": 1.0,
}


def make_checkpoint(folder, name: str, width: float):
    return untrained_checkpoint(folder / name, name, width)


def test_every_registered_model_belongs_to_a_tested_family():
    prefixes = ("chapter-cnn", "vgg", "resnet", "googlenet", "fastnet", "s2dnet")
    untested = [m for m in list_models() if not m.startswith(prefixes)]
    assert not untested, f"add a family of {untested} to FAMILIES in this file"


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_round_trip(cli, tmp_path, name):
    ckpt = make_checkpoint(tmp_path, name, FAMILIES[name])
    out = tmp_path / f"{name}.onnx"
    if name == "chapter-cnn":  # the human-readable report, once (each export costs seconds)
        r = cli("export", str(ckpt), str(out), timeout=300)
        assert "max abs diff" in r.stdout and "predictions agree on 64/64" in r.stdout
        assert r.stderr == ""  # the exporter's progress lines and warnings are kept out of the way
    else:
        report = json.loads(cli("export", str(ckpt), str(out), "--json", timeout=300).stdout)
        assert report["max_abs_diff"] <= report["tolerance"] == export.TOLERANCE
        assert report["checked_on"] == "64 mnist-sample test images" and report["predictions_agree"] == 64

    model = onnx.load(out)
    onnx.checker.check_model(model)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # symbolic: any batch size
    meta = json.loads({p.key: p.value for p in model.metadata_props}["cnnlab"])
    assert meta["classes"] == MNIST_META["classes"] and meta["mean"] == MNIST_META["mean"]

    # a batch size the export never saw, against the PyTorch model
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 1, 28, 28)
    (logits,) = session.run(None, {"input": x.numpy()})
    torch.manual_seed(0)
    reference = get_model(name, num_classes=10, in_channels=1, input_size=28, width=FAMILIES[name]).eval()
    with torch.inference_mode():
        np.testing.assert_allclose(logits, reference(x).numpy(), atol=1e-4)


def test_missing_checkpoint_is_one_line(cli, tmp_path):
    r = cli("export", str(tmp_path / "nope"), str(tmp_path / "m.onnx"), check=False, timeout=120)
    assert r.returncode not in (0, 1) and r.stderr.startswith("cnnlab: error:")
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.onnx").exists()


def test_a_diff_over_the_tolerance_fails(tmp_path, monkeypatch):
    """The decision alone (a real mismatch cannot be produced on demand): export stubbed, diff forced."""
    ckpt = make_checkpoint(tmp_path, "chapter-cnn", 0.25)
    out = tmp_path / "m.onnx"
    monkeypatch.setattr(export, "export_onnx", lambda model, meta, path, opset: path.write_bytes(b"x") or 18)
    monkeypatch.setattr(export, "compare", lambda *a: (0.5, 60))
    with pytest.raises(CnnlabError, match=r"max abs diff 0\.5 > tolerance 0\.001"):
        export.export_checkpoint(str(ckpt), out, tolerance=1e-3)
