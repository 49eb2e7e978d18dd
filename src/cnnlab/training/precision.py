"""`--precision auto|fp32|bf16`: the number format of the forward and backward passes.

bf16 runs under `torch.autocast` (matrix multiplies and convolutions in bfloat16, reductions and the loss
in float32) while the weights, their gradients, the optimiser state and the checkpoints stay float32
("master weights", Micikevicius et al. 2018). bfloat16 keeps float32's exponent range, so no loss scaling
is needed (unlike float16).

`auto` chooses bf16 only where it is both fast and known to be safe:
- fast: the hardware computes bf16 natively. On CPUs that is AVX-512-BF16 or AMX (`avx512_bf16` /
  `amx_bf16` in /proc/cpuinfo, or PyTorch's own `get_cpu_capability()` reporting AMX); without them
  oneDNN emulates bf16 and is slower than fp32. On CUDA, `torch.cuda.is_bf16_supported()` (Ampere+).
- safe: the run uses a recipe whose accuracy was verified in bf16 (`BF16_VERIFIED` in
  cnnlab.training.recipes). The chapter's experiment and hand-set flags stay fp32 unless asked.

The context that applies the choice is `cnnlab.core.autocast.autocast` (eval, bench and serve use it too).
"""

from functools import lru_cache
from pathlib import Path

import torch

NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first CPU in a /proc/cpuinfo text (all CPUs of a machine share them)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@lru_cache(maxsize=1)
def cpu_native_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX-512-BF16 or AMX)."""
    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux: ask PyTorch's dispatcher, which only knows about AMX
        flags = set()
    if flags & set(NATIVE_CPU_FLAGS):
        return True
    return "AMX" in torch.backends.cpu.get_cpu_capability().upper()


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_native_bf16()
    return False


def resolve(precision: str, recipe: str | None, device: torch.device, native: bool | None = None) -> str:
    """'fp32' or 'bf16' for a run: an explicit choice is kept; `auto` gives bf16 only on native hardware
    and for a recipe verified in bf16 (`native` overrides the hardware check, for tests). `precision` is a
    TrainConfig's, whose names were checked when it was made (training/validate.py: PRECISIONS)."""
    if precision != "auto":
        return precision
    from cnnlab.training.recipes import BF16_VERIFIED

    native = native_bf16(device) if native is None else native
    return "bf16" if native and recipe in BF16_VERIFIED else "fp32"
