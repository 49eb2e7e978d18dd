"""The test split alone, for `cnnlab eval`: an offline evaluation needs only the test files (10,000
MNIST images), not the 60,000 training images it never looks at."""

from pathlib import Path

import torch

from cnnlab.data import DATASETS, Dataset, cifar, load_dataset, sources
from cnnlab.data.identity import check_files


def load_test_split(name: str, data_dir: str | None = None, progress: bool = True) -> Dataset:
    """A Dataset whose test tensors are filled and whose training tensors are empty (0 images)."""
    info = DATASETS.get(name)
    if info is None or info.kind not in ("idx", "cifar"):
        return load_dataset(name, data_dir, progress=progress)  # bundled, image folders, ...: as they are
    only = (
        ("cifar-10-python.tar.gz",)
        if info.kind == "cifar"
        else tuple(f.name for f in info.files if f.name.startswith("t10k"))
    )
    folder = sources.locate(name, data_dir, progress=progress, only=only)
    check_files(name, folder, tuple(f for f in info.files if f.name in only))
    if info.kind == "cifar":
        test_x, test_y = cifar.read_split(folder, cifar.TEST_BATCHES)
    else:
        from cnnlab.data import _read_idx_pair

        test_x, test_y = _read_idx_pair(Path(folder), "t10k", len(info.classes))
    empty_x = torch.empty((0, *test_x.shape[1:]), dtype=torch.uint8)
    return Dataset(
        name,
        empty_x,
        torch.empty(0, dtype=torch.int64),
        test_x,
        test_y,
        list(info.classes),
        info.mean,
        info.std,
    )
