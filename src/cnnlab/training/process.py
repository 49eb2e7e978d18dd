"""What every command that trains sets once for its process: torch's threads, and freed tensor memory kept
inside the process instead of being handed back to the kernel after every step (`set_up`).

PyTorch's CPU tensors come from plain malloc. A training step allocates and frees activations of 1-15 MB;
glibc serves blocks that big with mmap, or trims them off the top of the heap, and gives them back to the
kernel when they are freed, so the next step faults the same memory in again, zero-filled page by page.
120 steps of fastnet-bn (batch 256, bf16) took 1.29 million minor page faults and 3.2 s of system time that
way; with the two thresholds below, 21,000 faults, 0.07 s, 32% less CPU time and 1.47x the images/s
(`python benchmarks/allocator.py`, BENCHMARKS.md).
This is what PyTorch's CPU performance guides get by swapping in a caching allocator (jemalloc, tcmalloc);
mallopt does it without a new dependency or an LD_PRELOAD.

The cost: memory a step frees stays with the process for the next step (up to 1 GiB at the top of the heap)
instead of going back to the OS between steps. On a C library other than glibc (macOS, Windows, musl)
this does nothing.
"""

import ctypes
import os

# mallopt parameters from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's largest allowed mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): blocks up to 32 MB come
# from the heap; larger ones (whole datasets, big eval batches) are still mapped and unmapped.
MMAP_THRESHOLD = 32 * 1024 * 1024
# keep up to 1 GiB of freed memory at the top of the heap instead of trimming it after every step
TRIM_THRESHOLD = 1024 * 1024 * 1024

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they were set."""
    global _done
    if _done:
        return True
    try:
        # os.confstr answers instantly; platform.libc_ver() would scan the Python binary
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    except (OSError, ValueError, AttributeError):  # not glibc: no such confstr name or library
        return False
    _done = ok
    return ok


def set_up(threads: int = 0) -> None:
    """torch's intra-op threads (0 = PyTorch's default), then keep_freed_memory(): the first thing `train`,
    `--finetune probe`, `lr-find` and `bench` do."""
    if threads:
        import torch  # lazy: this module stays importable without torch

        torch.set_num_threads(threads)
    keep_freed_memory()
