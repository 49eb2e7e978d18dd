"""Datasets as whole uint8 tensors: N x C x H x W images, int64 labels, class names.

`load_dataset(name)` is the one entry point. What cnnlab knows about each built-in dataset (classes,
mean/std, reader, files and mirrors, handwriting or not) is its record in `records.py`; `sources.py` says
where files are looked for. A folder of your own images (`folder`, or any existing folder path) comes
from `folder.py`/`folder_cache.py` as tensors over a memory-mapped decode cache, so it need not fit in RAM.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.data import cifar, idx, sources
from cnnlab.data.records import DATASETS, DatasetRecord
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.options import unknown_error


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
    # folder datasets (and what every checkpoint records about how to prepare a new image)
    val_x: torch.Tensor | None = None  # validation images when the dataset has its own split, else None
    val_y: torch.Tensor | None = None  # their labels
    test_files: list[str] | None = None  # test image file names (folders), for "worst files" reports
    preprocess: str = "fit"  # how a new image is read: "digit", "photo" or "fit" (cnnlab.data.spec)
    orientation_sensitive: bool = False  # mirrored images are other classes: flips are refused
    source: Any = None  # folder datasets: the `folder_cache.FolderData` (root, split, skipped files)
    why: str = ""  # why the images are read as `preprocess`, in words

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def spec(self, size: int = 0, resize: int = 0):
        """The run's `DataSpec` (cnnlab.data.spec): this dataset's description; `size` is the model's
        input size when it differs from the stored images' (they are then resized batch by batch)."""
        from cnnlab.data.spec import DataSpec

        c, h, _ = self.shape
        return DataSpec(
            dataset=self.name,
            classes=tuple(self.classes),
            channels=c,
            size=size or h,
            preprocess=self.preprocess,
            why=self.why,
            mean=tuple(self.mean),
            std=tuple(self.std),
            orientation_sensitive=self.orientation_sensitive,
            resize=resize,
        )


# mnist-sample: the first 10,000 MNIST training images; the first 8,000 train, the last 2,000 are held out.
SAMPLE_TRAIN = 8000


def list_datasets() -> list[str]:
    """Names `load_dataset` accepts, sorted (e.g. "mnist", "mnist-sample", "cifar10")."""
    return sorted(DATASETS)


def load_dataset(
    name: str,
    data_dir: str | None = None,
    download: bool = True,
    progress: bool = True,
    options=None,
    log=None,
) -> Dataset:
    """Read dataset `name` fully into memory, validating every file. `folder` (with data_dir) or an
    existing folder path is a folder of images, read with `options` (a `folder.FolderOptions`);
    `log(text)` gets its per-class report."""
    if name not in DATASETS:
        from cnnlab.data.folder import FolderOptions, is_folder_dataset

        if is_folder_dataset(name):
            from cnnlab.data.folder_cache import load_folder, once_first_rank

            opts = options or FolderOptions()
            fd = once_first_rank(
                lambda first: load_folder(name, data_dir, opts, log if first else None, progress and first)
            )
            return from_folder(fd)
        choices = [*list_datasets(), _("folder (with --data-dir)"), _("a folder path")]
        raise unknown_error("dataset", name, choices)
    info = DATASETS[name]
    if info.kind == "bundled":
        x, y = _read_idx_pair(sources.BUNDLED, name, len(info.classes))
        parts = (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN], x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])
    else:
        folder = sources.locate(name, data_dir, download=download, progress=progress)
        from cnnlab.data.identity import check_files

        check_files(name, folder)  # e.g. Fashion-MNIST files given as MNIST: refused by their MD5s
        from cnnlab.data.decoded import cached  # the decode cache: a memory map instead of a gunzip

        parts = cached(name, folder, info.kind, lambda: _read_parts(folder, info))
    return Dataset(
        name,
        *parts,
        list(info.classes),
        info.mean,
        info.std,
        preprocess=info.preprocess,
        orientation_sensitive=info.handwriting,
        why=info.why,
    )


def from_folder(fd) -> Dataset:
    """Tensors over the folder's memory map (no copy: rows are read when a batch needs them)."""
    import warnings

    with warnings.catch_warnings():  # the map is read-only and nothing here writes to it
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(fd.x)
        y = torch.from_numpy(fd.y)
    a, b = fd.counts["train"], fd.counts["train"] + fd.counts["val"]
    return Dataset(
        "folder",
        x[:a],
        y[:a],
        x[b:],
        y[b:],
        list(fd.classes),
        fd.mean,
        fd.std,
        val_x=x[a:b] if b > a else None,
        val_y=y[a:b] if b > a else None,
        test_files=list(fd.files["test"]),
        preprocess=fd.preprocess,
        orientation_sensitive=fd.orientation_sensitive,
        source=fd,
        why=fd.why,
    )


def load_for_checkpoint(
    meta: dict,
    checkpoint: str | Path | None,
    name: str | None = None,
    data_dir: str | None = None,
    progress=True,
) -> Dataset:
    """The dataset a checkpoint was trained on, with its exact test split for folder runs (the run's
    split.json); `name` picks another dataset instead."""
    if name is None and "folder" in meta:
        from cnnlab.checkpoint import resolve
        from cnnlab.data.folder_cache import load_saved

        run_dir = resolve(checkpoint).parent if checkpoint is not None else None
        return from_folder(load_saved(meta, run_dir, data_dir, progress))
    return load_dataset(name or meta["dataset"], data_dir, progress=progress)


def _read_parts(folder: Path, info: DatasetRecord) -> tuple[torch.Tensor, ...]:
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
        raise CnnlabError(
            _(
                "{folder}: {prefix} has {images} images but {labels} labels",
                folder=folder,
                prefix=prefix,
                images=len(x),
                labels=len(y),
            )
        )
    return x, y


def _find(folder: Path, stem: str) -> Path:
    for name in sources.idx_names(f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise CnnlabError(_("{folder}: missing {stem}[.gz]", folder=folder, stem=stem))


def to_float(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 N x C x H x W -> normalised float32 in one fused pass per batch: (x/255 - mean)/std."""
    c, dev = x.shape[1], x.device  # constants on x's device: a GPU batch must not meet CPU tensors
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32, device=dev).view(1, c, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32, device=dev).view(
        1, c, 1, 1
    )
    return torch.addcmul(shift, x.float(), scale)
