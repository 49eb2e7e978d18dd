"""Batched augmentation on tensors (placeholder until the speed work lands: only "none")."""

import torch

from cnnlab.errors import CnnlabError


def check_spec(spec: str) -> None:
    if spec != "none":
        raise CnnlabError(f"unknown --augment {spec!r}")


def augment_batch(x: torch.Tensor, spec: str, generator: torch.Generator) -> torch.Tensor:
    return x
