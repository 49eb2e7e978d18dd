"""What a run records: config.json, the metrics.csv rows, which epoch is the best, early-stopping
bookkeeping, the curves picture and the final summary that `cnnlab train` prints (and `--json` returns).
The loop and the probe (training/transfer.py) both record through these."""

import csv
import json
from pathlib import Path

METRICS = [
    "epoch",
    "train_loss",
    "test_loss",
    "test_accuracy",
    "val_loss",
    "val_accuracy",
    "images_per_second",
    "seconds",
]


def save_config(out: Path, cfg) -> None:
    """The run's settings as config.json (for people: resuming reads the resume state, not this)."""
    from cnnlab.core.files import atomic_write_text

    atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")


def selection_score(row: dict, validated: bool) -> float:
    """The number model selection maximises over epochs (best.safetensors): the validation accuracy, never
    the test set's; without a validation split every epoch beats the one before, so the last is "best"."""
    return row["val_accuracy"] if validated else row["epoch"]


def stale_epochs(history: list[dict]) -> int:
    """Epochs since the best validation accuracy (0 when there is no validation split)."""
    vals = [r["val_accuracy"] for r in history if r["val_accuracy"] != ""]
    return len(vals) - 1 - max(range(len(vals)), key=vals.__getitem__) if vals else 0


def append_metrics(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRICS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def summarize(cfg, data, history, seconds, out) -> dict:
    """The run's result: the accuracy of the checkpoint it names (best.safetensors, chosen on validation
    when there is a split, else the last epoch) and, separately, the last epoch's."""
    last = history[-1] if history else {}
    imgs = sum(r["images_per_second"] * r["seconds"] for r in history)
    best = _best_metrics(out) or last
    summary = {
        "model": cfg.model,
        "dataset": data.name,
        "checkpoint": str(out / "best.safetensors"),
        "checkpoint_epoch": best.get("epoch"),
        "test_accuracy": _num(best.get("test_accuracy")),
        "val_accuracy": _num(best.get("val_accuracy")),
        "last_epoch": last.get("epoch"),
        "last_test_accuracy": _num(last.get("test_accuracy")),
        "test_images": len(data.test_y),
        "epochs": len(history),
        "train_seconds": round(seconds, 2),
        "images_per_second": round(imgs / max(sum(r["seconds"] for r in history), 1e-9), 1),
        "out": str(out),
    }
    return summary


def draw_curves(out: Path, log) -> None:
    from cnnlab.inside.plots import curves_figure, save  # lazy: matplotlib only when a run ends

    save(curves_figure(out / "metrics.csv"), out / "curves.png")
    from cnnlab.i18n import _

    log(_("curves: {path}", path=out / "curves.png"))


def _best_metrics(out: Path) -> dict | None:
    """The metrics row stored with best.safetensors (its epoch's numbers)."""
    try:
        return json.loads((out / "best.json").read_text()).get("metrics") or None
    except (OSError, ValueError, AttributeError, RecursionError):
        return None


def _num(x):
    """Accuracies are ratios of counts: 6 decimals hold them exactly for up to a million images."""
    return round(float(x), 6) if isinstance(x, (int, float)) else None
