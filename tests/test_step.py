"""One training step (training/step.py) for train, the probe's head, lr-find and bench: it equals a plain
PyTorch step, weights GoogLeNet's aux heads by 0.3, and is the step every caller takes (counted); the best
epoch is chosen by one rule; `loss.backward()` is written once."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import get_model
from cnnlab.training.metrics import selection_score
from cnnlab.training.step import TrainStep, compute_loss

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"


def test_a_step_is_plain_pytorchs_forward_loss_backward_step():
    """Reference: the chapter's own step (mean cross-entropy, zero_grad, backward, Adam) on a copy."""
    torch.manual_seed(0)
    ours = get_model("chapter-cnn", width=0.5)
    ref = get_model("chapter-cnn", width=0.5)
    ref.load_state_dict(ours.state_dict())
    step = TrainStep(ours, torch.optim.Adam(ours.parameters(), 1e-3))
    opt = torch.optim.Adam(ref.parameters(), 1e-3)
    for _ in range(3):
        x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
        loss = step(x, y)
        ref_loss = F.cross_entropy(ref(x), y)
        opt.zero_grad()
        ref_loss.backward()
        opt.step()
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_googlenet_aux_heads_weigh_0_3_each():
    torch.manual_seed(0)
    model = get_model("googlenet", width=0.25).train()
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 3
    want = sum(w * F.cross_entropy(o, y) for w, o in zip((1.0, 0.3, 0.3), out))  # Szegedy et al. 2014
    assert compute_loss(model, out, y, 0.0, 1 / len(y)).item() == pytest.approx(want.item(), rel=1e-5)


def test_best_epoch_is_chosen_on_validation_else_the_last():
    rows = [{"epoch": 1, "val_accuracy": 0.9}, {"epoch": 2, "val_accuracy": 0.8}]
    assert max(rows, key=lambda r: selection_score(r, True))["epoch"] == 1
    assert max(rows, key=lambda r: selection_score(r, False))["epoch"] == 2


def test_every_caller_takes_its_steps_through_trainstep(monkeypatch, tmp_path):
    """train, lr-find's sweep and bench call TrainStep (the probe's head: tests/test_transfer.py, which
    runs the probe through the same function): a caller with its own step would not be counted."""
    import cnnlab
    from cnnlab import bench
    from cnnlab.training import lr_find, step

    counted: list[int] = []
    real = step.TrainStep.__call__

    def counting(self, x, y, scale=None):
        counted.append(len(y))
        return real(self, x, y, scale)

    monkeypatch.setattr(step.TrainStep, "__call__", counting)
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    settings = dict(dataset="mnist-sample", limit_train=64, limit_test=32, batch_size=32, epochs=1)
    cnnlab.train(**settings, model="fastnet", width=0.25, out=str(tmp_path / "run"))
    assert counted == [32, 32]
    counted.clear()
    model = get_model("fastnet", width=0.25)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    lr_find.find(
        model, lambda m: TrainStep(m, torch.optim.SGD(m.parameters(), 1e-3)), iter([(x, y)] * 3), [1e-3] * 3
    )
    assert counted == [8, 8, 8]
    counted.clear()
    opts = bench.BenchOptions(batch_size=4, warmup=0, repeats=1, precision="fp32")
    row = bench.bench_model("fastnet", (1, 28, 28), opts, peak=1.0)
    assert row["train_images_per_second"] > 0 and counted == [4, 4]  # the flop count, then the timed step


def test_loss_backward_is_written_once():
    """The one step: training/ and bench.py call `.backward()` in training/step.py only."""
    files = [*sorted((SRC / "training").glob("*.py")), SRC / "bench.py"]
    found = [f.relative_to(SRC).as_posix() for f in files for _ in re.findall(r"\.backward\(", f.read_text())]
    assert found == ["training/step.py"]
