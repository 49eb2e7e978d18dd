"""What a training run needs from its dataset beyond the tensors: folder options from the config, the
flip check for orientation-sensitive sets, class weights for `--balance`, the checkpoint fields that
say where a folder run's data lives, and the folder run's split.json / skipped.txt."""

from pathlib import Path

import torch

from cnnlab.data import Dataset, load_dataset
from cnnlab.data.augment import check_spec
from cnnlab.data.folder import FolderOptions, is_folder_dataset
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _


def is_folder(cfg) -> bool:
    """Does the run read a folder of your own images? The one answer for a run (its checks in validate.py,
    its start, the folder recipe): `--dataset folder` or an existing folder's path, unless the name is a
    built-in dataset's (a built-in name wins over a folder of that name in the current directory)."""
    from cnnlab.data import DATASETS

    return cfg.dataset not in DATASETS and is_folder_dataset(cfg.dataset)


def load_run_data(cfg, log, progress: bool) -> Dataset:
    """The run's dataset; folder datasets get the run's folder options and print their class table."""
    if not is_folder(cfg):
        data = load_dataset(cfg.dataset, cfg.data_dir, progress=progress)
    else:
        data = load_dataset(
            cfg.dataset, cfg.data_dir, progress=progress, options=FolderOptions.from_config(cfg), log=log
        )
    if data.orientation_sensitive:
        check_spec(cfg.augment, data.name, orientation_sensitive=True)
    return data


def folder_splits(data: Dataset):
    """(train_x, train_y, val_x, val_y) of a folder dataset (its own stratified split), else None."""
    return (data.train_x, data.train_y, data.val_x, data.val_y) if data.source is not None else None


def class_weights(cfg, train_y: torch.Tensor, num_classes: int, device=None) -> torch.Tensor | None:
    """--balance: weight_c = N / (C * n_c), so the average weight over the training images is 1."""
    if not getattr(cfg, "balance", False):
        return None
    counts = torch.bincount(train_y.cpu(), minlength=num_classes).double()
    if (counts == 0).any():
        empty = [str(i) for i in (counts == 0).nonzero().flatten().tolist()]
        raise CnnlabError(_("--balance: class(es) {names} have no training images", names=", ".join(empty)))
    return (counts.sum() / (num_classes * counts)).float().to(device)


def extra_meta(data: Dataset) -> dict:
    """Checkpoint fields of folder runs beyond the data's description: where the data lives."""
    meta: dict = {}
    fd = data.source
    if fd is not None:
        from cnnlab.data.folder_run import SPLIT_FILE

        meta["folder"] = {
            "root": str(fd.root),
            "options": fd.options,
            "split": SPLIT_FILE,
            "skipped": len(fd.skipped),
        }
    return meta


def save_run_files(out: Path, data: Dataset, log) -> None:
    if data.source is None:
        return
    from cnnlab.data.folder_run import run_files_note, write_run_files

    write_run_files(out, data.source)
    for line in run_files_note(out, data.source):
        log(line)
