"""Where a run's wall time goes, measured from the moment the process started (`--profile-startup`).

`process_age()` reads the process's start time from /proc (Linux), so the time Python and torch take to
import before any cnnlab code runs is counted too; elsewhere it falls back to the time since this module
was imported. `Phases` records the process age at named points of a run; `split()` turns the points into
durations (what `cnnlab train --profile-startup` prints and `--json` reports under "phases").
"""

import os
import time

from cnnlab.i18n import N_

_IMPORTED = time.monotonic()
# the phases' names as `--profile-startup` prints them (the --json keys stay these English names)
PHASE_NAMES = {
    "start-up": N_("start-up"),
    "data": N_("data"),
    "setup": N_("setup"),
    "training": N_("training"),
    "evaluation+checkpoints": N_("evaluation+checkpoints"),
    "curves": N_("curves"),
}


def _boot_age_of_process() -> float | None:
    """Seconds since this process was started, from /proc/self/stat and /proc/uptime; None if unknown."""
    try:
        with open("/proc/self/stat") as f:
            # field 22 (after the command name, which may hold spaces, in parentheses) = start in clock ticks
            start_ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_AGE_AT_IMPORT = _boot_age_of_process()


def process_age() -> float:
    """Seconds since the process started (to /proc's 10 ms resolution)."""
    base = _AGE_AT_IMPORT if _AGE_AT_IMPORT is not None else 0.0
    return base + time.monotonic() - _IMPORTED


class Phases:
    """Named points in a run; each point's duration is the time since the previous one."""

    def __init__(self):
        self.points: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        self.points.append((name, process_age()))

    def split(self) -> dict[str, float]:
        out, before = {}, 0.0
        for name, at in self.points:
            out[name] = round(at - before, 3)
            before = at
        return out

    def fit_split(self, rows: list[dict]) -> dict[str, float]:
        """split(), with the last phase (the epoch loop) divided by the epochs' own `seconds` (training)
        into training and the rest (evaluation on the test set after each epoch, checkpoints)."""
        out = self.split()
        name, fit = next(reversed(out.items()))
        out.pop(name)
        out["training"] = round(sum(r["seconds"] for r in rows), 3)
        out["evaluation+checkpoints"] = round(fit - out["training"], 3)
        return out

    def since_last(self) -> float:
        """Seconds since the last mark (for a phase after the summary was reported)."""
        return round(process_age() - self.points[-1][1], 3)


def describe(split: dict[str, float]) -> str:
    """One line: 'start-up 2.31 s, data 0.05 s, ... = 6.80 s from process start'."""
    from cnnlab.i18n import _

    parts = ", ".join(f"{_(PHASE_NAMES.get(name, name))} {s:.2f} s" for name, s in split.items())
    return _("time from process start: {parts} = {total:.2f} s", parts=parts, total=sum(split.values()))
