"""One epoch of the chapter's experiment in PyTorch Lightning; run by benchmarks/peers.py inside Lightning's
own venv (it imports neither cnnlab nor numpy). Prints {"images_per_second": ...} as its last line."""

import argparse
import gzip
import json
import struct
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (MNIST's format: magic, dims, then uint8 data) as a uint8 tensor."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).view(*dims)


class CNN(nn.Module):  # the chapter's net, as in benchmarks/chapter_vs_cnnlab.py
    def __init__(self):
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        )  # fmt: skip
        self.fc_layer = nn.Sequential(nn.Linear(64 * 3 * 3, 100), nn.ReLU(), nn.Linear(100, 10))

    def forward(self, x):
        return self.fc_layer(self.layer(x).flatten(1))


class Chapter(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = CNN()
        self.loss = nn.CrossEntropyLoss()

    def training_step(self, batch, _):
        x, y = batch
        return self.loss(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-4)  # the chapter's optimiser


class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--batches", type=int, default=234)
    args = p.parse_args()
    root = Path(args.data_dir)
    find = lambda stem: next(root.rglob(f"{stem}*.gz"))  # noqa: E731
    x = read_idx(find("train-images")).unsqueeze(1).float().div(255)[: args.batches * 256]
    y = read_idx(find("train-labels")).long()[: args.batches * 256]
    loader = DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True, num_workers=0)
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, precision=args.precision, max_epochs=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
    )  # fmt: skip
    torch.manual_seed(0)
    trainer.fit(Chapter(), loader)
    print(json.dumps({"images_per_second": len(y) / timer.seconds}))


if __name__ == "__main__":
    main()
