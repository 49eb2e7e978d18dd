"""Adding a model family or a dataset is one place (docs/extending.md): a family with published weights is
one new file in models/, a dataset one record in data/records.py; everything else picks them up."""

import filecmp
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_predict_eval import write_idx

from cnnlab.data import DATASETS, list_datasets, load_dataset
from cnnlab.data.augment import check_spec
from cnnlab.data.records import DatasetRecord, FileSpec
from cnnlab.data.sources import fetch
from cnnlab.data.spec import reading_of
from cnnlab.errors import CnnlabError

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# A whole family file, as a newcomer would write it: the network, its registration, its weights' facts.
FAMILY = '''"""tinynet: a family written by tests/test_extending.py, with published weights."""

import torch
import torch.nn as nn

from cnnlab.models import register_model
from cnnlab.models.published import Pretrained


class TinyNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, input_size=28, width=1.0):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.body = nn.Conv2d(4, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        x = torch.relu(self.body(torch.relu(self.stem(x))))
        return self.head(self.pool(x).flatten(1))


@register_model(
    "tinynet",
    gradcam_layer="stem",  # not the last conv: only the registration can say it
    weights=Pretrained(
        "FILE",
        "URL",
        mean=(0.25, 0.5, 0.75),
        std=(0.2, 0.3, 0.4),
        resize=40,
        crop=32,
        classes=("fish", "cat", "dog"),
    ),
)
def tinynet(**kwargs):
    return TinyNet(**kwargs)
'''
CLASSES = ("cat", "dog", "fish")  # the folder's, sorted: the weights' rows are mapped by name
COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fish": (40, 40, 200)}


def published_file(root: Path) -> str:
    """TinyNet's weights (3 input channels, 3 classes) saved as torch.save does, named torch.hub's way."""
    g = torch.Generator().manual_seed(0)
    shapes = {"stem": (4, 3, 3, 3), "body": (8, 4, 3, 3), "head": (3, 8)}
    state = {}
    for name, shape in shapes.items():
        state[f"{name}.weight"] = torch.randn(shape, generator=g) * 0.3
        state[f"{name}.bias"] = torch.zeros(shape[0])
    buf = io.BytesIO()
    torch.save(state, buf)
    file = f"tinynet-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.pth"
    (root / file).write_bytes(buf.getvalue())
    return file


def package_with(tmp_path: Path, name: str, text: str) -> Path:
    """A copy of the cnnlab package with one more file in models/; returns the folder for PYTHONPATH."""
    pkg = tmp_path / "pkg"
    shutil.copytree(SRC, pkg / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "cnnlab" / "models" / name).write_text(text)
    return pkg


def changed_files(copy: Path, original: Path) -> list[str]:
    """Files of `copy` that are new or differ from `original` (paths relative to copy)."""
    out = []
    for path in sorted(p for p in copy.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(copy)
        if not (original / rel).is_file() or not filecmp.cmp(path, original / rel, shallow=False):
            out.append(str(rel))
    return out


def photo_folder(root: Path, per_class: int = 12) -> Path:
    """A tiny photo folder: each class a colour with noise, 48x48 RGB PNGs."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = np.clip(np.array(colour) + rng.normal(0, 30, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


def test_a_model_family_with_weights_is_one_new_file(tmp_path, server):
    """A copy of the package plus one family file: `cnnlab models` lists it, `--pretrained` downloads its
    weights from the URL it declares (hash-checked) and trains from them with its normalisation and its
    classes mapped by name, predict uses its eval transform, Grad-CAM its declared layer."""
    www, url = server
    file = published_file(www)
    pkg = package_with(
        tmp_path, "tinynet.py", FAMILY.replace('"FILE"', repr(file)).replace('"URL"', repr(url))
    )
    assert changed_files(pkg / "cnnlab", SRC) == ["models/tinynet.py"]  # no other file touched
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_WEIGHTS_URL"}
    env |= {
        "PYTHONPATH": str(pkg),
        "CNNLAB_CACHE": str(tmp_path / "cache"),
        "TORCH_HOME": str(tmp_path / "t"),
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    listed = json.loads(run("-m", "cnnlab", "models", "--json").stdout)
    row = next(r for r in listed["models"] if r["name"] == "tinynet")
    c, k = listed["input_shape"][0], listed["classes"]
    assert row["params"] == (4 * c * 9 + 4) + (8 * 4 * 9 + 8) + (8 * k + k)

    folder = photo_folder(tmp_path / "pets")
    out = tmp_path / "run"
    run("-m", "cnnlab", "train", "--dataset", str(folder), "--model", "tinynet", "--pretrained",
        "--max-steps", "3", "--out", str(out))  # fmt: skip
    assert (tmp_path / "cache" / "weights" / file).is_file()  # downloaded from the family's own URL
    meta = json.loads((out / "best.json").read_text())
    assert meta["model"] == "tinynet" and meta["weights"]["kind"] == "imagenet"
    assert meta["mean"] == [0.25, 0.5, 0.75] and meta["std"] == [0.2, 0.3, 0.4]  # the weights' normalisation
    notes = " ".join(meta["weights"]["notes"])
    assert "classifier head kept: its 3 classes mapped to yours by name" in notes

    image = folder / "dog" / "0.png"
    predicted = run("-m", "cnnlab", "predict", "tinynet", "--pretrained", str(image), "--json").stdout
    pred = json.loads(predicted)[0]
    assert pred["label"] in CLASSES and len(pred["probabilities"]) == 3  # the weights' own classes
    code = f"""if True:
        import json, cnnlab
        from cnnlab.inside.gradcam import gradcam_for
        from cnnlab.models.adapt import model_from_weights
        print(json.dumps({{
            "package": cnnlab.__file__,
            "layer": gradcam_for({str(out)!r}, {str(image)!r}).layer,
            "input_shape": model_from_weights("tinynet", True, None, None)[1]["input_shape"],
        }}))"""
    found = json.loads(run("-c", code).stdout)
    assert found["package"] == str(pkg / "cnnlab" / "__init__.py")  # the copy ran, not the checkout
    assert found["layer"] == "stem"  # the declared layer (the last conv called would be "body")
    assert found["input_shape"] == [3, 32, 32]  # predicting from the weights alone: their crop


def kana(www: Path, url: str, monkeypatch, tmp_path: Path) -> DatasetRecord:
    """A new handwriting dataset "toy-kana" (3 classes, MNIST's IDX format) served on the local mirror,
    added as one record (what a newcomer adds to data/records.py); an empty cache."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 15)):
        write_idx(www / "kana", prefix, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 3)
    files = tuple(
        FileSpec(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted((www / "kana").iterdir())
    )
    record = DatasetRecord(
        "toy-kana",
        "Toy-Kana",
        ("a", "i", "u"),
        (0.2,),
        (0.3,),
        "idx",
        handwriting=True,
        files=files,
        mirrors=(url + "kana/",),
    )
    monkeypatch.setitem(DATASETS, "toy-kana", record)
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    return record


def test_a_dataset_record_is_all_a_new_dataset_needs(tmp_path, server, monkeypatch):
    """One record: the dataset is in load_dataset's list, downloads from its mirror with its MD5s, is read
    as handwriting (flips refused, the description says so, old checkpoints too), and its files given as
    another dataset's are named for what they are."""
    record = kana(*server, monkeypatch, tmp_path)

    assert "toy-kana" in list_datasets()
    data = load_dataset("toy-kana", progress=False)  # downloaded: nothing was in the cache
    assert data.classes == ["a", "i", "u"] and len(data.train_y) == 60 and len(data.test_y) == 15
    description = data.spec().describe()
    assert "3 classes (a, i, u)" in description and "read as handwriting" in description
    assert "because toy-kana is handwriting" in description and data.orientation_sensitive
    with pytest.raises(CnnlabError, match="flip makes no sense for toy-kana"):
        check_spec("flip,translate=2", "toy-kana")
    old = {"dataset": "toy-kana", "input_shape": [1, 28, 28]}  # a checkpoint from before "data" was saved
    assert reading_of(old).preprocess == "digit" and reading_of(old).orientation_sensitive
    with pytest.raises(CnnlabError, match="these are the Toy-Kana files, not MNIST"):
        load_dataset("mnist", str(tmp_path / "cache" / "toy-kana"), download=False)
    # a file on its mirror that is not the one its record names is refused by the record's MD5
    wrong = replace(record, files=(replace(record.files[0], md5="0" * 32),))
    monkeypatch.setitem(DATASETS, "toy-kana", wrong)
    with pytest.raises(CnnlabError, match="checksum mismatch"):
        fetch("toy-kana", tmp_path / "fresh", progress=False)


def test_train_takes_a_new_dataset_by_name(tmp_path, server, monkeypatch, capsys):
    """Through the run start (the API, as the CLI's flags): the record's name is a valid --dataset, its
    description is printed and saved, its handwriting reading is in the checkpoint."""
    import cnnlab

    kana(*server, monkeypatch, tmp_path)
    cnnlab.train(dataset="toy-kana", model="fastnet", max_steps=2, batch_size=16, out=str(tmp_path / "r"))
    assert "read as handwriting" in capsys.readouterr().out
    meta = json.loads((tmp_path / "r" / "best.json").read_text())
    assert meta["dataset"] == "toy-kana" and meta["classes"] == ["a", "i", "u"]
    assert meta["preprocess"] == "digit" and meta["orientation_sensitive"] and meta["mean"] == [0.2]
