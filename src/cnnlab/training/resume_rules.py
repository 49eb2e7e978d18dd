"""What may change when a run is resumed: settings that do not change the result (threads, eval batch
size, TensorBoard, ...) may differ; the run's length may grow where its schedule allows; anything else
must be what the run was started with, which is read from its resume state (`state.pt`), never from
`config.json` (written for people: it may be edited or missing). The state itself is checked field by
field first (`check_state`): a hand-edited or damaged field is one line naming it, exit 7.
"""

import math
from pathlib import Path

from cnnlab.errors import EXIT_BAD_CHECKPOINT, CnnlabError
from cnnlab.i18n import _
from cnnlab.training.config import TrainConfig

STATE = "state.pt"
STATE_FORMAT = "cnnlab-state/1"

# Config fields that may differ when resuming: they do not change what is computed.
RESUME_FREE = {
    "out",
    "resume",
    "overwrite",
    "checkpoint_every",
    "threads",
    "data_dir",
    "tensorboard",
    "eval_batch_size",
    "eval_every",
}
# Run length (--epochs, --max-steps) may grow on resume when the schedule does not depend on it
# (constant; step's /10 drops move to 1/3 and 2/3 of the new length); one-cycle and cosine are
# planned over the whole run, so extending them would raise a learning rate that already reached its end.
EXTENDABLE = ("constant", "step")
LENGTH = ("epochs", "max_steps")


def saved_run_config(out: Path) -> dict:
    """The settings a run was started with, from its resume state (config.json is for people to read:
    it may be edited or missing, and must not turn a resume into a default run). {} when there is none."""
    path = out / STATE
    if not path.is_file():
        return {}
    from cnnlab.checkpoint import load_state

    state = load_state(path)
    meta = state.get("meta") if isinstance(state, dict) else None
    config = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(config, dict):
        raise CnnlabError(
            _("{path}: not a cnnlab resume state ({format})", path=path, format=STATE_FORMAT),
            EXIT_BAD_CHECKPOINT,
        )
    return config


def check_same_config(saved: dict, cfg: TrainConfig, path: Path) -> None:
    now = cfg.to_dict()
    diff = [
        _(
            "--{flag} {value} (saved: {saved})",
            flag=k.replace("_", "-"),
            value=repr(now[k]),
            saved=repr(saved.get(k)),
        )
        for k in now
        if k not in RESUME_FREE and k not in LENGTH and _norm(saved.get(k)) != _norm(now[k])
    ]
    if diff:
        raise CnnlabError(
            _(
                "{path} was saved with other settings: {diff}; resume needs the same",
                path=path,
                diff=", ".join(diff),
            )
        )
    check_length(saved, now)


def _longer(new: int, old: int) -> bool | None:
    """True/False when a limit grows/shrinks (0 = no limit), None when unchanged."""
    if new == old:
        return None
    return new == 0 or (old != 0 and new > old)


def check_length(saved: dict, now: dict) -> None:
    """--epochs/--max-steps may grow on resume for schedules that do not depend on the run length."""
    for key in LENGTH:
        change = _longer(int(now[key]), int(saved.get(key) or 0))
        flag = "--" + key.replace("_", "-")
        if change is False:
            raise CnnlabError(
                _(
                    "{flag} {value}: the run was saved with {saved}; it cannot be shortened",
                    flag=flag,
                    value=now[key],
                    saved=saved.get(key),
                )
            )
        if change and now["schedule"] not in EXTENDABLE:
            raise CnnlabError(
                _(
                    "{flag} {value}: the run was saved with {saved}, and its {schedule} schedule is planned over "
                    "the whole run (its learning rate already fell towards its end); extending it would raise it "
                    "again. Start a new run with {flag} {value} instead",
                    flag=flag,
                    value=now[key],
                    saved=saved.get(key),
                    schedule=now["schedule"],
                )
            )


def extends(saved: dict, cfg: TrainConfig) -> bool:
    """True when this resume asks for a longer run than the one saved."""
    now = cfg.to_dict()
    return any(_longer(int(now[k]), int(saved.get(k) or 0)) for k in LENGTH)


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


# ---- the resume state itself, checked field by field before anything is loaded from it -------------------

# Progress field -> (type, smallest allowed value or None); see training/resume.py's Progress
PROGRESS = {
    "epoch": (int, 1),
    "batch": (int, 0),
    "step": (int, 0),
    "best": (float, None),
    "history": (list, None),
    "loss_sum": (float, None),
    "seen": (int, 0),
    "seconds": (float, 0),
    "finished": (bool, None),
}


def bad_state(path: Path, field: str, why: str) -> CnnlabError:
    return CnnlabError(
        _("{path}: resume state field {field} {why}", path=path, field=repr(field), why=why),
        EXIT_BAD_CHECKPOINT,
    )


def check_state(state: dict, path: Path) -> None:
    """Raise (exit 7) naming the first field of a hand-edited or damaged `state.pt` that training would
    choke on (a TypeError deep inside) or silently misuse (epoch -5 trains from a negative epoch)."""
    meta = state["meta"]
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise bad_state(path, "meta.config", _("must be an object (the run's settings)"))
    world = state["world"]
    if not _is(world, int) or world < 1:
        raise bad_state(path, "world", _("must be a positive whole number, got {value}", value=repr(world)))
    progress = state["progress"]
    if not isinstance(progress, dict):
        raise bad_state(path, "progress", _("must be an object"))
    if set(progress) != set(PROGRESS):
        odd = sorted(map(str, set(progress) ^ set(PROGRESS)))
        raise bad_state(
            path,
            "progress",
            _("must have exactly the fields {names} (odd: {odd})", names=", ".join(PROGRESS), odd=odd),
        )
    for name, (kind, low) in PROGRESS.items():
        value = progress[name]
        if not _is(value, kind):
            raise bad_state(
                path,
                f"progress.{name}",
                _("must be {kind}, got {value}", kind=kind.__name__, value=f"{value!r:.60}"),
            )
        if low is not None and not value >= low:  # `not >=`: NaN fails too
            raise bad_state(
                path, f"progress.{name}", _("must be >= {low}, got {value}", low=low, value=repr(value))
            )
    for i, row in enumerate(progress["history"]):
        if not isinstance(row, dict) or not _row_ok(row):
            raise bad_state(
                path, f"progress.history[{i}]", _("is not a metrics row: {row}", row=f"{row!r:.80}")
            )
    rng = state["rng"]
    if not isinstance(rng, list) or len(rng) != world:
        raise bad_state(path, "rng", _("must be a list of {n} random states (one per process)", n=world))
    for i, r in enumerate(rng):
        if not isinstance(r, dict) or not {"torch", "python", "numpy"} <= set(r):
            raise bad_state(path, f"rng[{i}]", _("must hold the torch, python and numpy random states"))
    for name in ("model", "optimizer", "scheduler"):
        if not isinstance(state[name], dict):
            raise bad_state(
                path, name, _("must be a state dict, got {kind}", kind=type(state[name]).__name__)
            )
    if state["ema"] is not None and not isinstance(state["ema"], dict):
        raise bad_state(
            path, "ema", _("must be a state dict or None, got {kind}", kind=type(state["ema"]).__name__)
        )


def _is(value, kind: type) -> bool:
    """isinstance where a bool is no number and an int is a fine float (finite)."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def _row_ok(row: dict) -> bool:
    """A metrics.csv row as the loop writes it: every column, numbers (val columns may be "")."""
    from cnnlab.training.metrics import METRICS

    if set(row) != set(METRICS) or not _is(row["epoch"], int):
        return False
    return all(_is(row[k], float) or (k.startswith("val_") and row[k] == "") for k in METRICS)
