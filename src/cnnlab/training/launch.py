"""`cnnlab train --nproc N`: the same command again under torchrun (single node, N processes).

It runs torchrun's own entry point in this process, so the launcher can return the exit code of the
first failed worker (130 after Ctrl-C, 3 after divergence, ...) instead of torchrun's generic 1 and
traceback. Equivalent to:
    python -m torch.distributed.run --standalone --nproc_per_node N -m cnnlab train <args minus --nproc>
"""

import os
from dataclasses import fields

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.training.config import TrainConfig
from cnnlab.training.flags import flags_for


def train_argv(args) -> list[str]:
    """The `cnnlab train` flags the user gave (None = not given), minus --nproc."""
    argv = flags_for({f.name: getattr(args, f.name, None) for f in fields(TrainConfig)})
    return argv + (["--json"] if args.json else [])


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask: taskset, cgroup cpusets), else the count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def check_nproc(n: int) -> None:
    """Refuse more processes than there are CPU cores (GPUs, with CUDA) to run them, before anything starts.

    DDP steps in lockstep: every all-reduce waits for the slowest process, so processes that share a core
    wait for each other's time slices (--nproc 100 on 2 cores made no progress in 120 s). torchrun starts
    exactly the N workers asked for, and so does cnnlab; it does not quietly start fewer, which would
    change the per-process batch and the augmentation streams of the run."""
    import torch

    cuda = torch.cuda.is_available()
    have = torch.cuda.device_count() if cuda else usable_cpus()
    if n > have and cuda:
        raise CnnlabError(
            _("--nproc {n}: this machine has {have} GPU(s); use --nproc {have} or fewer", n=n, have=have)
        )
    if n > have:
        raise CnnlabError(
            _(
                "--nproc {n}: this machine has {have} CPU core(s) available to this process; use --nproc {have} "
                "or fewer",
                n=n,
                have=have,
            )
        )


def launch(args) -> int:
    """Run N workers through torchrun's elastic agent; the first failure's exit code, else 0."""
    if "WORLD_SIZE" in os.environ:
        raise CnnlabError(_("--nproc starts torchrun itself; do not combine it with torchrun"))
    check_nproc(args.nproc)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun would pin every worker to 1 thread (and print a banner saying so); share the cores instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // args.nproc)))
    targs = parse_args(
        ["--standalone", f"--nproc-per-node={args.nproc}", "-m", "cnnlab", "train", *train_argv(args)]
    )
    try:
        run(targs)
    except ChildFailedError as e:
        _rank, failure = e.get_first_failure()
        code = failure.exitcode
        return code if code > 0 else 128 - code  # a negative code is the signal that killed the worker
    except SignalException as e:  # torchrun forwarded it; the workers already saved and reported
        return 128 + int(e.sigval)
    return 0
