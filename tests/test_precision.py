"""--precision: hardware detection, the auto rule, bf16 autocast with fp32 master weights, fp32
checkpoints, evaluation in the training precision, and the chapter recipe staying fp32."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import cnnlab
from cnnlab.core.autocast import autocast
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model
from cnnlab.training.config import TrainConfig
from cnnlab.training.precision import cpu_flags, resolve
from cnnlab.training.step import compute_loss

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse2 avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
flags\t\t: fpu vme sse2 avx2 avx512f avx512_bf16 avx512_vnni
"""


def test_cpu_flags_parsing():
    assert {"avx512_bf16", "avx512f"} <= cpu_flags(CPUINFO)
    assert cpu_flags("processor : 0\n") == set()


@pytest.mark.parametrize(
    "precision, recipe, native, want",
    [
        ("fp32", "fast", True, "fp32"),  # an explicit choice is kept
        ("bf16", None, False, "bf16"),  # ... even without native hardware (emulated, slow, but asked for)
        ("auto", "fast", True, "bf16"),  # verified recipe on native hardware
        ("auto", "fast", False, "fp32"),  # no native bf16: fp32
        ("auto", "chapter", True, "fp32"),  # the chapter's maths stay fp32
        ("auto", None, True, "fp32"),  # hand-set flags: not verified
    ],
)
def test_resolve(precision, recipe, native, want):
    assert resolve(precision, recipe, torch.device("cpu"), native=native) == want


def test_precision_names_are_checked_in_one_place():
    """An unknown name is refused when the settings are made (exit 2, the choices listed), by the rule in
    training/validate.py: the only place in the package that lists the names."""
    with pytest.raises(CnnlabError, match="choose from: auto, fp32, bf16") as refused:
        TrainConfig(precision="fp16")
    assert refused.value.exit_code == 2
    src = Path(cnnlab.__file__).parent
    listed = [p.relative_to(src).as_posix() for p in src.rglob("*.py") if '"fp32", "bf16"' in p.read_text()]
    assert listed == ["training/validate.py"]


def test_bf16_step_keeps_fp32_master_weights_and_matches_fp32():
    """Under autocast the convolutions run in bf16, the loss and every weight and gradient stay fp32, and
    the logits agree with an fp32 forward pass (the reference) to bf16's ~3 significant digits."""
    torch.manual_seed(0)
    model = get_model("fastnet-bn", num_classes=10, in_channels=1, input_size=28)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    model.eval()
    with torch.no_grad():
        ref = model(x)
        with autocast("bf16"):
            low = model(x)
    assert low.dtype == torch.bfloat16 and ref.dtype == torch.float32
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()
    model.train()
    with autocast("bf16"):
        out = model(x)
    loss = compute_loss(model, out, y, 0.1, 1 / len(y))
    assert loss.dtype == torch.float32
    loss.backward()
    for p in model.parameters():
        assert p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)
    with autocast("fp32"):
        assert model(x).dtype == torch.float32


def test_train_bf16_end_to_end(cli, tmp_path):
    out = tmp_path / "b"
    proc = cli(
        "train", "--model", "fastnet", "--dataset", "mnist-sample", "--precision", "bf16", "--lr", "3e-3",
        "--epochs", "1", "--limit-train", "1024", "--out", str(out), "--json",
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["precision"] == "bf16" and summary["test_accuracy"] > 0.5
    assert json.loads((out / "config.json").read_text())["precision"] == "bf16"
    assert json.loads((out / "best.json").read_text())["precision"] == "bf16"
    tensors = load_file(out / "best.safetensors")
    assert tensors and all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point())
    # `cnnlab eval` evaluates the checkpoint the way it was trained: same precision, same accuracy
    ev = json.loads(cli("eval", str(out), "--json").stdout)
    assert ev["precision"] == "bf16"
    assert abs(ev["accuracy"] - summary["test_accuracy"]) <= 1e-3


def test_chapter_recipe_stays_fp32(cli, tmp_path):
    proc = cli(
        "train", "--recipe", "chapter", "--dataset", "mnist-sample", "--max-steps", "2", "--epochs", "1",
        "--out", str(tmp_path / "c"), "--json",
    )  # fmt: skip
    assert json.loads(proc.stdout)["precision"] == "fp32"


def test_bad_precision_is_one_line(cli, tmp_path):
    proc = cli(
        "train", "--dataset", "mnist-sample", "--precision", "fp16", "--out", str(tmp_path / "x"), check=False
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "cnnlab: error: --precision: unknown precision 'fp16'; did you mean bf16? choose from: auto, fp32, bf16"
    ]
