"""The number format a forward pass runs in, for every command that runs a model (train, eval, bench,
serve): bf16 autocast -- matrix multiplies and convolutions in bfloat16, reductions and the loss in
float32 -- or plain fp32. Which one a run uses is decided by `cnnlab.training.precision.resolve` and
saved with the run; this is only the context that applies it.
"""

import contextlib

import torch


def autocast(precision: str, device: torch.device | str = "cpu"):
    """The context the forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision != "bf16":
        return contextlib.nullcontext()
    kind = device if isinstance(device, str) else device.type
    return torch.autocast(kind, dtype=torch.bfloat16)
