"""Slower training steps for the tests that stop a run mid-epoch, made from the test side (no test hook in
the package): a `sitecustomize` module on PYTHONPATH, which Python imports at start-up in every process
that gets this environment -- the `cnnlab` command, and the workers torchrun starts for `--nproc` --
wraps `TrainStep.__call__` (training/step.py, the one step every run takes) with a sleep after it."""

import os
from pathlib import Path

SITE = '''"""Written by tests/slow_steps.py: every training step sleeps {seconds} s after it ran."""
import time

from cnnlab.training import step as _step

_step_call = _step.TrainStep.__call__


def _slow_call(self, *args, **kwargs):
    loss = _step_call(self, *args, **kwargs)
    time.sleep({seconds})
    return loss


_step.TrainStep.__call__ = _slow_call
'''


def slow_steps(folder: Path, seconds: float) -> dict[str, str]:
    """The environment (PYTHONPATH) under which every training step of a `cnnlab` process takes at least
    `seconds` longer; `folder` (made if needed) receives the sitecustomize module."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITE.format(seconds=seconds))
    path = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}
