"""Transfer modes: probe leaves the body bit-identical, full unfreezes on schedule, lr-find restores the
weights; the fine-tune schedule and the per-class sample are pure functions checked directly."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from cnnlab.checkpoint import save_checkpoint
from cnnlab.models import get_model
from cnnlab.training import lr_find
from cnnlab.training.config import TrainConfig
from cnnlab.training.finetune import FineTune, one_cycle, per_class_subset
from cnnlab.training.step import TrainStep

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
KW = {"num_classes": 10, "in_channels": 1, "input_size": 28, "width": 0.25}


@pytest.fixture
def source(tmp_path):
    """A cnnlab run folder whose resnet18 was 'trained' on other classes (Fashion-MNIST's names), with
    non-trivial BatchNorm statistics so that any change to them would show."""
    torch.manual_seed(1)
    model = get_model("resnet18", **KW).train()
    with torch.no_grad():
        model(torch.randn(64, 1, 28, 28))  # running stats move away from 0/1
    meta = {
        "model": "resnet18",
        "model_kwargs": KW,
        "dataset": "fashion-mnist",
        "classes": FASHION,
        "mean": [0.286],
        "std": [0.353],
        "input_shape": [1, 28, 28],
    }
    (tmp_path / "src").mkdir()
    save_checkpoint(tmp_path / "src" / "last", model.eval(), meta)
    return tmp_path / "src"


def test_probe_leaves_body_and_bn_buffers_bit_identical_and_caches_features(
    cli, source, tmp_path, monkeypatch
):
    env = {"CNNLAB_CACHE": str(tmp_path / "cache")}
    args = ["train", "--model", "resnet18", "--width", "0.25", "--dataset", "mnist-sample"]
    args += ["--weights", str(source), "--finetune", "probe", "--train-per-class", "10", "--epochs", "3"]
    proc = cli(*args, "--out", str(tmp_path / "p1"), "--json", env=env)
    summary = json.loads(proc.stdout)
    assert (
        summary["epochs"] == 3 and "computed and cached" in proc.stderr and "no augmentation" in proc.stderr
    )
    before = load_file(str(source / "last.safetensors"))
    after = load_file(str(tmp_path / "p1" / "last.safetensors"))
    body = [k for k in before if not k.startswith("fc.")]
    assert any("running_var" in k for k in body)
    assert all(torch.equal(before[k], after[k]) for k in body)
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    again = cli(*args, "--out", str(tmp_path / "p2"), env=env)
    assert "train features (100, 128) from the cache" in again.stdout + again.stderr
    refused = cli(*args, "--out", str(tmp_path / "p3"), "--augment", "translate=2", check=False, env=env)
    assert refused.returncode == 2 and "cannot augment" in refused.stderr


def test_full_finetune_cli_new_head_and_records_weights(cli, tmp_path):
    kw = {**KW, "width": 1.0}
    meta = {
        "model": "chapter-cnn",
        "model_kwargs": kw,
        "dataset": "fashion-mnist",
        "classes": FASHION,
        "input_shape": [1, 28, 28],
    }
    save_checkpoint(
        tmp_path / "last", get_model("chapter-cnn", **kw), {**meta, "mean": [0.286], "std": [0.353]}
    )
    args = ["train", "--dataset", "mnist-sample", "--weights", str(tmp_path / "last.safetensors")]
    args += ["--train-per-class", "8", "--epochs", "2", "--batch-size", "40"]
    proc = cli(*args, "--out", str(tmp_path / "f"))
    assert "weights: new classifier fc_layer.2 for 10 classes" in proc.stdout + proc.stderr
    meta = json.loads((tmp_path / "f" / "last.json").read_text())
    assert meta["weights"]["kind"] == "cnnlab" and meta["weights"]["mean"] == [0.286]


def _setup(freeze_epochs=1):
    torch.manual_seed(0)
    model = get_model("resnet18", **KW).train()
    model.cnnlab_fresh = {"fc.weight", "fc.bias"}
    cfg = TrainConfig(model="resnet18", lr=1e-2, freeze_epochs=freeze_epochs)
    return model, cfg, FineTune(cfg, model, steps_per_epoch=3, total_steps=6)


def _step(model, tuned, step):
    tuned.set_step(step)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    tuned.optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    tuned.optimizer.step()
    tuned.scheduler.step()


def test_full_unfreezes_on_schedule():
    model, _, tuned = _setup()
    snap = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(3):  # the frozen epoch
        _step(model, tuned, step)
    now = model.state_dict()
    assert torch.equal(now["conv1.weight"], snap["conv1.weight"])
    assert torch.equal(now["layer3.1.conv2.weight"], snap["layer3.1.conv2.weight"])
    assert not torch.equal(now["fc.weight"], snap["fc.weight"])
    # the documented BatchNorm choice (fastai's train_bn): BN scale/shift and statistics do adapt
    assert not torch.equal(now["bn1.weight"], snap["bn1.weight"])
    assert not torch.equal(now["bn1.running_mean"], snap["bn1.running_mean"])
    _step(model, tuned, 3)
    assert not torch.equal(model.state_dict()["conv1.weight"], snap["conv1.weight"])


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_discriminative_rates_and_phases():
    _, cfg, tuned = _setup()
    lrs = [
        g["lr"] for g in tuned.optimizer.param_groups
    ]  # at step 0: frozen phase, all at --lr's cycle start
    assert all(abs(lr - lrs[-1]) < 1e-12 for lr in lrs)
    for _ in range(4):
        tuned.scheduler.step()
    lrs = [g["lr"] for g in tuned.optimizer.param_groups]  # unfrozen: earliest = head / lr_mult
    assert lrs[0] == pytest.approx(lrs[-1] / cfg.lr_mult) and lrs == sorted(lrs)
    assert lrs[-1] == pytest.approx(cfg.lr / 2 * one_cycle(1, 3, 0.3, 5.0))


def test_one_cycle_shape():
    assert one_cycle(0, 100, 0.3, 5.0) == pytest.approx(1 / 5)
    assert one_cycle(30, 100, 0.3, 5.0) == pytest.approx(1.0)
    assert one_cycle(100, 100, 0.3, 5.0) == pytest.approx(1e-5)
    vals = [one_cycle(s, 100, 0.3, 5.0) for s in range(101)]
    assert vals[:31] == sorted(vals[:31]) and vals[30:] == sorted(vals[30:], reverse=True)


def test_per_class_subset_is_stratified_and_seeded():
    y = torch.arange(1000) % 10
    x = torch.arange(1000).view(-1, 1, 1, 1)
    sx, sy = per_class_subset(x, y, 7, seed=3, num_classes=10)
    assert torch.bincount(sy).tolist() == [7] * 10 and torch.equal(sy, y[sx.flatten()])
    assert torch.equal(per_class_subset(x, y, 7, 3, 10)[0], sx)
    assert not torch.equal(per_class_subset(x, y, 7, 4, 10)[0], sx)


def test_lr_find_leaves_the_model_untouched_and_stops_on_divergence():
    torch.manual_seed(0)
    model = get_model("chapter-cnn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))

    def batches():
        while True:
            yield x, y

    rates = lr_find.sweep_rates(1e-5, 1e3, 60)
    result = lr_find.find(
        model, lambda m: TrainStep(m, torch.optim.SGD(m.parameters(), lr=1e-5)), batches(), rates
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert 3 <= len(result["lrs"]) < 60  # diverged before 1e3
    assert result["lrs"] == rates[: len(result["lrs"])]


def test_lr_find_suggestions_on_a_known_curve():
    lrs = lr_find.sweep_rates(1e-4, 1.0, 9)  # one step per half decade
    losses = [2.0, 1.99, 1.9, 1.5, 1.0, 0.8, 0.7, 1.5, 9.0]
    assert lr_find.steepest(lrs, losses) == lrs[3]  # largest drop per decade around index 3
    # fastai's valley: longest descent ends at 6 (length 7, start -1); -1 + int(7/3) + int(7/6) = 2
    assert lr_find.valley(lrs, losses) == lrs[2]


def test_lr_find_cli(cli, tmp_path):
    png = tmp_path / "lr.png"
    args = ["lr-find", "--dataset", "mnist-sample", "--limit-train", "640", "--batch-size", "32"]
    proc = cli(*args, "--num-steps", "20", "--end-lr", "1", "--plot", str(png), "--json")
    result = json.loads(proc.stdout)
    assert png.stat().st_size > 1000 and 1e-7 <= result["suggestion"] <= 1
    assert len(result["lrs"]) == len(result["losses"]) <= 20


def test_pretrained_imagenet_weights_bring_their_normalisation(monkeypatch, tmp_path):
    from cnnlab.data import Dataset
    from cnnlab.models import weights as W
    from cnnlab.training.start import build_model, checkpoint_meta

    kw = {"num_classes": 1000, "in_channels": 3, "input_size": 72, "width": 0.25}
    state = get_model("resnet18", **kw).state_dict()
    w = W.Weights(
        state, "x.pth", W.imagenet_classes(), W.imagenet_preprocess("resnet18"), "imagenet", "resnet18"
    )
    monkeypatch.setattr(W, "pretrained", lambda model, progress=True: w)
    x = torch.zeros(4, 3, 72, 72, dtype=torch.uint8)
    data = Dataset(
        "photos", x, torch.arange(4) % 2, x, torch.arange(4) % 2, ["cat", "dog"], (0.5,) * 3, (0.2,) * 3
    )
    cfg = TrainConfig(model="resnet18", width=0.25, pretrained=True)
    model = build_model(cfg, data)
    assert model.cnnlab_fresh == {"fc.weight", "fc.bias"}
    assert data.mean == tuple(W.IMAGENET_MEAN) and data.std == tuple(W.IMAGENET_STD)
    meta = checkpoint_meta(cfg, model, data, "fp32")
    assert (
        meta["mean"] == W.IMAGENET_MEAN
        and meta["weights"]["resize"] == 256
        and meta["weights"]["crop"] == 224
    )
    assert torch.equal(model.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])


def test_probe_without_weights_is_refused():
    from cnnlab.errors import CnnlabError
    from cnnlab.training.loop import train

    with pytest.raises(CnnlabError, match="--finetune probe .*pass --pretrained or --weights"):
        TrainConfig(finetune="probe")  # refused when the config is made
    cfg = TrainConfig(finetune="full")
    cfg.finetune = "probe"  # set after the checks: the probe refuses it too
    with pytest.raises(CnnlabError, match="needs weights"):
        train(cfg)


def test_probe_from_the_api_in_the_precision_asked_for(source, tmp_path, monkeypatch):
    """`cnnlab.train(finetune="probe")` is the probe (the API and the CLI call one function), and the
    checkpoint records the precision the run computed in (the run's own, not one written by hand)."""
    import cnnlab

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    common = dict(model="resnet18", width=0.25, dataset="mnist-sample", weights=str(source))
    common.update(finetune="probe", train_per_class=5, limit_test=64, epochs=2)
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        summary = cnnlab.train(**common, precision=precision, out=str(out))
        assert "feature_seconds" in summary and summary["epochs"] == 2  # the probe's summary
        for name in ("last.json", "best.json"):
            assert json.loads((out / name).read_text())["precision"] == precision


def test_classifier_rows_follow_the_class_names():
    """Weights for classes [cat, dog, 7] on a run for [seven, cat]: no new head; each output is the source's
    output for the class of the same name ('7' and 'seven' are one class)."""
    from cnnlab.models.adapt import class_map, load_into
    from cnnlab.models.weights import Weights

    torch.manual_seed(0)
    kw = {"in_channels": 1, "input_size": 28, "width": 0.5}
    source = get_model("fastnet", num_classes=3, **kw).eval()
    target = get_model("fastnet", num_classes=2, **kw).eval()
    w = Weights(source.state_dict(), "run", ["cat", "dog", "7"], {}, "cnnlab", "fastnet")
    fresh, notes = load_into(target, w, ["seven", "cat"], "fastnet")
    assert fresh == set() and "mapped to yours by name (seven=7, cat)" in notes[0]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(target(x), source(x)[:, [2, 0]])
    assert class_map(["a", "b"], ["a", "c"]) is None  # a class the weights do not know: a new head
    assert class_map(["1", "one"], ["one"]) is None  # ambiguous
