"""Datasets: bundled sample, source order, real files when ../shared is present, CIFAR safety."""

import pickle

import numpy as np
import pytest
import torch

from cnnlab.data import cifar, load_dataset, to_float
from cnnlab.errors import CnnlabError


def test_bundled_sample():
    d = load_dataset("mnist-sample")
    assert d.train_x.shape == (8000, 1, 28, 28) and d.test_x.shape == (2000, 1, 28, 28)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert d.train_y[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert d.classes == [str(i) for i in range(10)]


def test_unknown_dataset_lists_names():
    with pytest.raises(CnnlabError, match="choose from: .*mnist-sample"):
        load_dataset("imagenet")


def test_to_float_matches_formula():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    want = (x.double() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(to_float(x, mean, std).double(), want, atol=1e-5)


# images per class in the published test sets (MNIST's are uneven; Fashion-MNIST has 1,000 of each)
TEST_LABEL_COUNTS = {
    "mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    "fashion-mnist": [1000] * 10,
}


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_datasets(shared_data, name):
    d = load_dataset(name, str(shared_data / name), download=False)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.test_y, minlength=10).tolist() == TEST_LABEL_COUNTS[name]
    assert abs(d.train_x.float().mean().item() / 255 - d.mean[0]) < 1e-3


def test_source_order_env_then_cache(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))  # holds mnist/ as a subfolder
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "empty-cache"))
    assert len(load_dataset("mnist", download=False).test_y) == 10000


def test_data_dir_missing_files(tmp_path):
    with pytest.raises(CnnlabError, match="--data-dir .* not found"):
        load_dataset("mnist", str(tmp_path))


def _cifar_batch(n=3) -> dict:
    return {b"data": np.random.randint(0, 256, (n, 3072), dtype=np.uint8), b"labels": [0, 5, 9][:n]}


def test_cifar_batches_read(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in cifar.TRAIN_BATCHES + cifar.TEST_BATCHES:
        (folder / name).write_bytes(pickle.dumps(_cifar_batch(), protocol=2))
    x, y = cifar.read_split(tmp_path, cifar.TRAIN_BATCHES)
    assert x.shape == (15, 3, 32, 32) and y.tolist() == [0, 5, 9] * 5


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/cnnlab-cifar-pwned", "w"))


def test_cifar_refuses_code(tmp_path):
    target = tmp_path / "evil"
    target.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(CnnlabError, match="refusing"):
        cifar.parse_batch(target.read_bytes(), "evil")


def test_torchvision_layout_and_dotted_idx_names(tmp_path):
    """Files the chapter's torchvision code already downloaded: DIR/MNIST/raw/, raw or .gz, and IDX names
    spelled with a dot (train-images.idx3-ubyte)."""
    import gzip
    import shutil

    from cnnlab.data import sources

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    bundled = sources.BUNDLED
    for split in ("train", "t10k"):
        for kind, magic in (("images", "idx3"), ("labels", "idx1")):
            src = bundled / f"mnist-sample-{kind}-{magic}-ubyte.gz"
            if split == "train":  # raw (gunzipped), torchvision's own names
                with gzip.open(src) as f, open(raw / f"{split}-{kind}-{magic}-ubyte", "wb") as out:
                    shutil.copyfileobj(f, out)
            else:  # gzipped, dotted names
                shutil.copy(src, raw / f"{split}-{kind}.{magic}-ubyte.gz")
    d = load_dataset("mnist", str(tmp_path), download=False)
    assert d.train_x.shape == d.test_x.shape == (10000, 1, 28, 28)
    assert torch.equal(d.train_x, d.test_x) and d.preprocess == "digit"
    assert sources.locate("mnist", str(tmp_path), download=False) == raw
