"""What may change when a run is resumed: settings that do not change the result (threads, eval batch
size, TensorBoard, ...) may differ; the run's length may grow where its schedule allows; anything else
must be what the run was started with, which is read from its resume state (`state.pt`), never from
`config.json` (written for people: it may be edited or missing).
"""

from pathlib import Path

from cnnlab.errors import EXIT_BAD_CHECKPOINT, CnnlabError
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
    config = state.get("meta", {}).get("config") if isinstance(state, dict) else None
    if not isinstance(config, dict):
        raise CnnlabError(f"{path}: not a cnnlab resume state ({STATE_FORMAT})", EXIT_BAD_CHECKPOINT)
    return config


def check_same_config(saved: dict, cfg: TrainConfig, path: Path) -> None:
    now = cfg.to_dict()
    diff = [
        f"--{k.replace('_', '-')} {now[k]!r} (saved: {saved.get(k)!r})"
        for k in now
        if k not in RESUME_FREE and k not in LENGTH and _norm(saved.get(k)) != _norm(now[k])
    ]
    if diff:
        raise CnnlabError(f"{path} was saved with other settings: {', '.join(diff)}; resume needs the same")
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
                f"{flag} {now[key]}: the run was saved with {saved.get(key)}; it cannot be shortened"
            )
        if change and now["schedule"] not in EXTENDABLE:
            raise CnnlabError(
                f"{flag} {now[key]}: the run was saved with {saved.get(key)}, and its {now['schedule']} "
                "schedule is planned over the whole run (its learning rate already fell towards its end); "
                f"extending it would raise it again. Start a new run with {flag} {now[key]} instead"
            )


def extends(saved: dict, cfg: TrainConfig) -> bool:
    """True when this resume asks for a longer run than the one saved."""
    now = cfg.to_dict()
    return any(_longer(int(now[k]), int(saved.get(k) or 0)) for k in LENGTH)


def _norm(v):
    return list(v) if isinstance(v, tuple) else v
