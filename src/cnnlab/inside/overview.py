"""The network at a glance, CNN-Explainer style, for ANY registered model: every layer in call order with
what went in and what came out, for one image.

`trace_units` decides what a column is from the model's structure alone:
- a leaf layer (Conv2d, ReLU, MaxPool2d, BatchNorm2d, Linear, ...) is one column;
- an `nn.Sequential` is opened up, so `chapter-cnn`'s `layer` and `fc_layer` show every layer;
- any other module with children (a ResNet BasicBlock, a GoogLeNet Inception or BasicConv2d) is ONE
  column: a deep model shows its stages and blocks instead of sixty convolutions.
Identity and Dropout (identity at test time) are left out. A flatten that a model does in `forward`
(`out.flatten(1)`, no module) becomes its own column where a 4-D output meets a Linear layer, and a
softmax column closes the list: the chapter's flatten and softmax are part of the picture.
When more than `MAX_COLUMNS` columns remain (VGG16-BN), element-wise layers (ReLU, BatchNorm) are folded
into the column before them, and if that is not enough (ResNet-101/152) the blocks of a stage become
one column per stage.

The inputs are recorded by forward PRE-hooks and cloned, outputs by forward hooks and cloned: with
`ReLU(inplace=True)` the conv's output tensor is overwritten by the ReLU later in the same pass.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn

from cnnlab.inside.hooks import hooked

MAX_COLUMNS = 24
SKIPPED = (nn.Identity, nn.Dropout, nn.Dropout2d)
ELEMENTWISE = (nn.ReLU, nn.BatchNorm2d, nn.LeakyReLU, nn.GELU, nn.SiLU)
KINDS = {  # module type -> the column's kind, which picks the page's detail view
    nn.Conv2d: "conv",
    nn.ReLU: "relu",
    nn.MaxPool2d: "maxpool",
    nn.AvgPool2d: "avgpool",
    nn.AdaptiveAvgPool2d: "avgpool",
    nn.AdaptiveMaxPool2d: "maxpool",
    nn.BatchNorm2d: "batchnorm",
    nn.Linear: "linear",
    nn.Flatten: "flatten",
}


@dataclass
class Unit:
    """One column of the overview: a layer (or block) and the tensors of one image through it."""

    name: str  # named_modules() name, "flatten" / "softmax" for the synthetic columns
    kind: str  # conv, relu, maxpool, avgpool, batchnorm, linear, flatten, softmax, block, other
    type: str  # the module's class name, e.g. "Conv2d", "BasicBlock"
    module: nn.Module | None  # None for the synthetic flatten and softmax columns
    input: torch.Tensor  # what went in, without the batch dimension (C x H x W or a vector)
    output: torch.Tensor  # what came out
    shown: torch.Tensor | None = None  # what the overview draws, if not `output` (a folded conv+BN+ReLU)

    @property
    def links(self) -> str:
        """Which input maps feed an output map: "same" (map i -> map i) or "all" (every one)."""
        return "same" if self.kind in ("relu", "maxpool", "avgpool", "batchnorm") else "all"


def kind_of(module: nn.Module) -> str:
    for cls, kind in KINDS.items():
        if isinstance(module, cls):
            return kind
    return "block" if any(True for _child in module.children()) else "other"


def unit_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that become columns (see the module docstring), in definition order."""
    found: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, SKIPPED):
                continue
            if isinstance(child, nn.Sequential):
                visit(full, child)
            else:
                found.append((full, child))

    visit("", model)
    return found


def trace_units(model: nn.Module, x: torch.Tensor) -> list[Unit]:
    """Run `model` (eval mode, no grad) on ONE normalised image C x H x W; return its columns in call
    order, with a flatten column where needed and a closing softmax column."""
    calls: list[list] = []  # [name, module, input, output] per call, in call order
    pending: dict[int, list] = {}

    def pre(name, mod, inputs):
        entry = [name, mod, inputs[0].detach()[0].clone(), None]
        pending[id(mod)] = entry
        calls.append(entry)

    def post(_name, mod, _inputs, output):
        if isinstance(output, torch.Tensor) and id(mod) in pending:
            pending.pop(id(mod))[3] = output.detach()[0].clone()

    with hooked(model, unit_modules(model), after=post, before=pre), torch.no_grad():
        logits = model(x.unsqueeze(0))
    if isinstance(logits, tuple):  # GoogLeNet in train mode; eval returns a tensor, but be safe
        logits = logits[0]
    units: list[Unit] = []
    for name, mod, inp, out in calls:
        if out is None:
            continue
        kind = kind_of(mod)
        if kind == "linear" and units and units[-1].output.dim() == 3 and inp.dim() == 1:
            prev = units[-1].output
            units.append(Unit("flatten", "flatten", "flatten", None, prev, prev.reshape(-1)))
        units.append(Unit(name, kind, type(mod).__name__, mod, inp, out))
    z = logits.detach()[0]
    units.append(Unit("softmax", "softmax", "softmax", None, z, z.softmax(0)))
    if len(units) > MAX_COLUMNS:
        units = fold(units)
    return stages(units) if len(units) > MAX_COLUMNS else units


def fold(units: list[Unit]) -> list[Unit]:
    """Fold element-wise layers into the column before them (conv + BN + ReLU as one column)."""
    folded: list[Unit] = []
    for u in units:
        if folded and u.module is not None and isinstance(u.module, ELEMENTWISE):
            last = folded[-1]
            # the first layer keeps its own module, input and output, so its detail view (a conv's
            # sum of products) still adds up; the column shows what leaves the group
            name, kind, typ = f"{last.name}+{u.name}", last.kind, f"{last.type}+{u.type}"
            folded[-1] = Unit(name, kind, typ, last.module, last.input, last.output, u.output)
        else:
            folded.append(u)
    return folded


def stages(units: list[Unit]) -> list[Unit]:
    """Merge runs of blocks of one stage (ResNet-152's 36 blocks of `layer3`) into one column each:
    the stage's input, its last block's output, named after the stage ("layer3", 36 x Bottleneck)."""
    grouped: list[Unit] = []
    run: list[Unit] = []

    def flush() -> None:
        if len(run) == 1:
            grouped.append(run[0])
        elif run:
            parent = run[0].name.rpartition(".")[0]
            typ = f"{len(run)} x {run[0].type}"
            grouped.append(Unit(parent, "block", typ, None, run[0].input, run[-1].output))
        run.clear()

    for u in units:
        parent = u.name.rpartition(".")[0]
        if u.kind == "block" and parent and (not run or run[0].name.rpartition(".")[0] == parent):
            run.append(u)
            continue
        flush()
        if u.kind == "block" and parent:
            run.append(u)
        else:
            grouped.append(u)
    flush()
    return grouped
