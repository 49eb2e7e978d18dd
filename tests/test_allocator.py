"""cnnlab.training.process: freed step-sized blocks stay in the process instead of being faulted in again."""

import json
import os
import subprocess
import sys

import pytest

# Eight training steps of fastnet-bn at batch 256 (activations of 1-13 MB, allocated and freed every step),
# in a fresh process so malloc's thresholds start at glibc's defaults. Prints the minor page faults.
CHURN = """
import json, resource, sys
import torch
import torch.nn.functional as F
from cnnlab.models import get_model
if sys.argv[1] == "kept":
    from cnnlab.training.process import keep_freed_memory
    assert keep_freed_memory()
torch.manual_seed(0)
model = get_model("fastnet-bn")
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
F.cross_entropy(model(x), y).backward()  # the first step's one-off allocations are not counted
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""

glibc = pytest.mark.skipif(
    sys.platform != "linux" or not os.confstr("CS_GNU_LIBC_VERSION"), reason="mallopt is glibc's"
)


def faults(side: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHURN, side], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@glibc
def test_freed_blocks_are_reused_not_faulted_in_again():
    default, kept = faults("default"), faults("kept")
    # default: freed activations go back to the kernel and are faulted in again, every step
    assert default > 8 * 5_000
    # kept: the memory one step frees is reused by the next
    assert kept < default / 4


@glibc
def test_setting_twice_is_harmless():
    from cnnlab.training.process import keep_freed_memory

    assert keep_freed_memory() and keep_freed_memory()
