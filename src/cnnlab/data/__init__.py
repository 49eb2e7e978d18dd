"""Datasets as whole uint8 tensors in memory: N x C x H x W images, int64 labels, class names.

`load_dataset(name)` is the one entry point; see `sources.py` for where files are looked for.
"""

from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data import cifar, idx, sources
from cnnlab.errors import CnnlabError


@dataclass
class Dataset:
    name: str  # registry name, e.g. "mnist"
    train_x: torch.Tensor  # N x C x H x W uint8
    train_y: torch.Tensor  # N int64
    test_x: torch.Tensor  # M x C x H x W uint8
    test_y: torch.Tensor  # M int64
    classes: list[str]  # class names, index = label
    mean: tuple[float, ...]  # per-channel mean of the training images, on the 0..1 scale
    std: tuple[float, ...]  # per-channel standard deviation, same scale

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


@dataclass(frozen=True)
class Info:
    classes: tuple[str, ...]  # label names
    mean: tuple[float, ...]  # normalisation constants (the usual published values)
    std: tuple[float, ...]
    kind: str  # "idx", "cifar" or "bundled"


DIGITS = tuple(str(i) for i in range(10))
DATASETS: dict[str, Info] = {
    "mnist": Info(DIGITS, (0.1307,), (0.3081,), "idx"),
    "mnist-sample": Info(DIGITS, (0.1307,), (0.3081,), "bundled"),
    "fashion-mnist": Info(
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        (0.2860,),
        (0.3530,),
        "idx",
    ),
    "kmnist": Info(("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), (0.1918,), (0.3483,), "idx"),
    "cifar10": Info(
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "cifar",
    ),
}

# mnist-sample: the first 10,000 MNIST training images; the first 8,000 train, the last 2,000 are held out.
SAMPLE_TRAIN = 8000


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def load_dataset(
    name: str, data_dir: str | None = None, download: bool = True, progress: bool = True
) -> Dataset:
    """Read dataset `name` fully into memory, validating every file."""
    if name not in DATASETS:
        raise CnnlabError(f"unknown dataset {name!r}; choose from: {', '.join(list_datasets())}")
    info = DATASETS[name]
    if info.kind == "bundled":
        x, y = _read_idx_pair(sources.BUNDLED, "mnist-sample", len(info.classes))
        parts = (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN], x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])
    else:
        folder = sources.locate(name, data_dir, download=download, progress=progress)
        from cnnlab.data.decoded import cached  # the decode cache: a memory map instead of a gunzip

        parts = cached(name, folder, info.kind, lambda: _read_parts(folder, info))
    return Dataset(name, *parts, list(info.classes), info.mean, info.std)


def _read_parts(folder: Path, info: Info) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y) decoded and validated from the dataset's files in `folder`."""
    if info.kind == "cifar":
        return (
            *cifar.read_split(folder, cifar.TRAIN_BATCHES),
            *cifar.read_split(folder, cifar.TEST_BATCHES),
        )
    return (
        *_read_idx_pair(folder, "train", len(info.classes)),
        *_read_idx_pair(folder, "t10k", len(info.classes)),
    )


def _read_idx_pair(folder: Path, prefix: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = idx.read_images(_find(folder, f"{prefix}-images-idx3-ubyte"))
    y = idx.read_labels(_find(folder, f"{prefix}-labels-idx1-ubyte"), num_classes)
    if len(x) != len(y):
        raise CnnlabError(f"{folder}: {prefix} has {len(x)} images but {len(y)} labels")
    return x, y


def _find(folder: Path, stem: str) -> Path:
    for p in (folder / f"{stem}.gz", folder / stem):
        if p.is_file():
            return p
    raise CnnlabError(f"{folder}: missing {stem}[.gz]")


def to_float(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 N x C x H x W -> normalised float32 in one fused pass per batch: (x/255 - mean)/std."""
    c, dev = x.shape[1], x.device  # constants on x's device: a GPU batch must not meet CPU tensors
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32, device=dev).view(1, c, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32, device=dev).view(
        1, c, 1, 1
    )
    return torch.addcmul(shift, x.float(), scale)
