"""What a training run tells people: text, a progress bar, and optionally TensorBoard scalars."""

import sys
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

SCALARS = ("train_loss", "test_loss", "test_accuracy", "val_loss", "val_accuracy", "images_per_second")


class Logger:
    """Human text: a tqdm bar on a terminal, one line per epoch otherwise; stderr under --json.
    Only rank 0 is `enabled`; the others stay silent."""

    def __init__(self, enabled: bool, json_mode: bool):
        self.enabled = enabled
        self.stream = sys.stderr if json_mode else sys.stdout
        self.bar_ok = enabled and self.stream.isatty()
        self.tb = None  # a SummaryWriter under --tensorboard

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(msg, file=self.stream, flush=True)

    def bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, file=self.stream, disable=not self.bar_ok)

    def open_tensorboard(self, folder: Path) -> None:
        """--tensorboard: checked before training so a missing package costs no training time."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise CnnlabError(
                _("--tensorboard needs the tensorboard package: pip install tensorboard")
            ) from None
        if self.enabled:
            self.tb = SummaryWriter(str(folder))

    def scalars(self, row: dict) -> None:
        """One point per metric per epoch; flushed so `tensorboard --logdir` shows it at once."""
        if self.tb is None:
            return
        for name in SCALARS:
            if row.get(name) not in ("", None):
                self.tb.add_scalar(name, float(row[name]), row["epoch"])
        self.tb.flush()
