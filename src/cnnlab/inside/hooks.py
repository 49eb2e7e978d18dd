"""Watching a model run: forward hooks on some of its layers, in eval mode, undone afterwards.

Every look inside (`summary`'s layer table, the overview's columns, feature maps, Grad-CAM, the probe's
features) is the same four moves: hook these layers, switch to eval mode (BatchNorm's running statistics,
no dropout), run, then remove the hooks and restore the train/eval mode -- also when the pass fails, so
the model is left exactly as it was. `hooked` does them once; the caller picks the grad mode (no_grad,
inference_mode, or enable_grad for Grad-CAM) and runs the forward pass inside the block.
"""

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch.nn as nn

Before = Callable[[str, nn.Module, tuple], object]  # (name, module, inputs) -> None, or new inputs
After = Callable[[str, nn.Module, tuple, object], object]  # (name, module, inputs, output) -> None or output


@contextmanager
def hooked(
    model: nn.Module,
    layers: Iterable[tuple[str, nn.Module]],
    after: After | None = None,
    before: Before | None = None,
    eval_mode: bool = True,
) -> Iterator[nn.Module]:
    """Within the block `before(name, module, inputs)` runs as each of `layers` (name, module) is called
    and `after(name, module, inputs, output)` once it returned (what they return replaces the inputs or
    the output, as PyTorch's hooks do); `model` is in eval mode (unless `eval_mode=False`). On leaving,
    the hooks are removed and the mode restored, whatever happened inside."""
    handles = []
    try:
        for name, module in layers:
            if before is not None:
                handles.append(module.register_forward_pre_hook(lambda m, a, n=name: before(n, m, a)))
            if after is not None:
                handles.append(module.register_forward_hook(lambda m, a, o, n=name: after(n, m, a, o)))
        was_training = model.training
        if eval_mode:
            model.eval()
        try:
            yield model
        finally:
            model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()


def of_kind(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> list[tuple[str, nn.Module]]:
    """(name, module) of every module of one of `kinds`, in definition order (named_modules())."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]
