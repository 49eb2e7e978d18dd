"""Layer tables (Keras/torchinfo style) and params/MACs per model: what `cnnlab summary` and `cnnlab models`
print (the commands: cnnlab.commands.summary, .models) and `cnnlab.summary(...)` returns.

One real forward pass of a zero tensor (batch 1, eval mode, no grad) with a pre- and a post-hook on every
leaf module records each layer's input and output shape. For every Conv2d and Max/AvgPool2d the output size
is also computed from the layer's hyper-parameters with the chapter's formula floor((I - K + 2P)/S) + 1
(`cnnlab.core.sizes.output_size`, dilation and ceil_mode included; adaptive pools give their configured
size) and compared with the real shape: a difference is reported as a bug. When the formula says a map
shrinks below 1 pixel, the pre-hook stops the pass with a CnnlabError naming that layer, before PyTorch
fails somewhere less helpful; `check_input` runs exactly this for training code.

What is counted:
- params: every parameter of the model (trainable: requires_grad). Layers the eval pass does not run
  (GoogLeNet's aux heads) are in the total and reported separately as params_not_run.
- macs: multiply-adds of one sample in eval mode, Conv2d (output elements x in_channels/groups x kH x kW)
  and Linear (in_features x out_features per row) only; BatchNorm, activations, pooling, residual
  additions and concatenations are not counted (they are a few percent at most).
- activation memory: bytes of every leaf layer's output for one sample, as if nothing were in-place.

`cnnlab summary` runs on CPU; `cnnlab models` builds every model on the meta device, where PyTorch's
shape functions stand in for the arithmetic, so even the ImageNet forms list instantly.
"""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from cnnlab.core.sizes import layer_geometry
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _, _n, columns, pad, using
from cnnlab.inside.hooks import hooked
from cnnlab.models import get_model, list_models

Shape = tuple[int, ...]
DEFAULT_INPUT = "1x28x28"


@dataclass
class Layer:
    name: str
    type: str
    output_shape: list[int]  # without the batch dimension
    params: int
    macs: int


@dataclass
class Summary:
    input_shape: Shape
    layers: list[Layer] = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    macs: int = 0
    activation_bytes: int = 0
    params_not_run: int = 0
    checked: int = 0  # conv/pool layers whose formula shape was compared with the real one
    mismatches: list[str] = field(default_factory=list)
    model: str = field(default="", repr=False)  # name shown above the table (not part of to_json)
    lang: str | None = field(default=None, repr=False)  # language of the printed table (None: the current)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("layers", "model", "lang")}
        out["input_shape"] = list(self.input_shape)
        out["layers"] = [asdict(layer) for layer in self.layers]
        return out

    def __str__(self) -> str:  # print(summary) gives `cnnlab summary`'s table
        with using(self.lang):
            return format_table(self.model or "model", self)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython/Jupyter show the table too
        printer.text(str(self))


def parse_input(text: str) -> Shape:
    """'3x32x32' -> (3, 32, 32); a run folder or checkpoint -> the input shape it was trained on (e.g. a
    model trained on a folder of your photos at --image-size 96: `--input runs/photos`)."""
    if ("/" in text or text.endswith((".json", ".safetensors"))) and Path(text).exists():
        from cnnlab.checkpoint import read_meta, resolve

        c, h, w = read_meta(resolve(text))["input_shape"]
        return int(c), int(h), int(w)
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise CnnlabError(
            _("--input must be CxHxW with positive integers, e.g. 1x28x28; got {text}", text=repr(text))
        )
    c, h, w = (int(p) for p in parts)
    return c, h, w


def formula_shape(module: nn.Module, in_shape: Shape) -> Shape | None:
    """Output C x H x W of a conv/pool layer from its hyper-parameters; None for other layers.

    Raises CnnlabError (from `output_size`) when the map would shrink below 1 pixel."""
    geometry = layer_geometry(module)
    return None if geometry is None else geometry.shape(in_shape)


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out[0].numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return out[0].numel() * module.in_features
    return 0


def _describe(module: nn.Module) -> str:
    keys = ("kernel_size", "stride", "padding", "dilation")
    return ", ".join(f"{k} {getattr(module, k)}" for k in keys if hasattr(module, k))


def summarize(model: nn.Module, input_shape: Shape) -> Summary:
    """Run one zero sample through `model` (on its own device, eval mode) and tabulate its leaf layers."""
    summary = Summary(tuple(input_shape))
    pending: dict[str, Shape | None] = {}  # leaf name -> formula output shape
    current = [_("(model input)")]

    def pre_hook(name: str, module: nn.Module, args: tuple) -> None:
        current[0] = name
        in_shape = tuple(args[0].shape[1:]) if args and isinstance(args[0], torch.Tensor) else ()
        try:
            expected = formula_shape(module, in_shape) if len(in_shape) == 3 else None
        except CnnlabError as e:
            size = "x".join(map(str, in_shape))
            raise CnnlabError(
                _(
                    "input {input} is too small for {model}: the feature map shrinks to zero at layer {layer} "
                    "({kind}, {geometry}) on its {size} input ({error})",
                    input="x".join(map(str, input_shape)),
                    model=type(model).__name__,
                    layer=repr(name),
                    kind=type(module).__name__,
                    geometry=_describe(module),
                    size=size,
                    error=e,
                )
            ) from None
        pending[name] = expected

    def post_hook(name: str, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        expected = pending.pop(name)
        out = out[0] if isinstance(out, (tuple, list)) else out  # e.g. MaxPool2d(return_indices=True)
        real = tuple(out.shape[1:])
        if expected is not None:
            summary.checked += 1
            if expected != real:
                summary.mismatches.append(
                    _(
                        "layer {layer}: formula gives {formula}, forward gave {real}",
                        layer=repr(name),
                        formula=list(expected),
                        real=list(real),
                    )
                )
        params = sum(p.numel() for p in module.parameters(recurse=False))
        summary.layers.append(Layer(name, type(module).__name__, list(real), params, _macs(module, out)))
        summary.activation_bytes += out.numel() // out.shape[0] * out.element_size()

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(m.children())]
    device = next(model.parameters(), torch.empty(0)).device
    try:
        with hooked(model, leaves, after=post_hook, before=pre_hook), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CnnlabError(
            _(
                "forward pass of a {input} input failed at layer {layer}: {error}",
                input="x".join(map(str, input_shape)),
                layer=repr(current[0]),
                error=first,
            )
        ) from None

    ran = {layer.name for layer in summary.layers}
    summary.params = sum(p.numel() for p in model.parameters())
    summary.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    summary.params_not_run = sum(
        p.numel() for n, m in leaves if n not in ran for p in m.parameters(recurse=False)
    )
    summary.macs = sum(layer.macs for layer in summary.layers)
    return summary


def check_input(model: nn.Module, input_shape: Shape) -> Summary:
    """Raise CnnlabError naming the layer where `input_shape` (C, H, W) shrinks to zero; call before training.

    Adaptive pools are checked against their configured size, so an ImageNet-form net that pools a 2x2 map
    to 7x7 is not a false alarm. Returns the summary (with any formula mismatches) when the input fits."""
    return summarize(model, input_shape)


def build(
    name: str, input_shape: Shape, classes: int = 10, width: float = 1.0, device: str = "cpu"
) -> nn.Module:
    """Build registry model `name` for `input_shape`; the form follows input_size = min(H, W)."""
    c, h, w = input_shape
    kwargs = dict(num_classes=classes, in_channels=c, input_size=min(h, w), width=width)
    with torch.device(device):
        try:
            return get_model(name, **kwargs)
        except CnnlabError as e:
            if name not in list_models():
                raise
            # A model that sizes its FC layer from input_size (chapter-cnn) fails while being built: build it
            # at its default size so the forward pass can name the layer where the map shrinks to zero.
            try:
                model = get_model(name, **{**kwargs, "input_size": 28})
            except CnnlabError:
                raise e from None
            check_input(model, input_shape)
            raise e from None


def _human_bytes(n: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = min(len(units) - 1, int(math.log(max(n, 1), 1024)))
    return f"{n / 1024**i:.2f} {units[i]}"


def format_table(name: str, s: Summary) -> str:
    rows = [
        (f"{layer.name} ({layer.type})", " x ".join(map(str, layer.output_shape)), layer.params, layer.macs)
        for layer in s.layers
    ]
    titles = _("Layer (type)"), _("Output shape"), _("Params"), _("MACs")
    w0 = max([columns(titles[0])] + [len(r[0]) for r in rows])
    w1 = max([columns(titles[1])] + [len(r[1]) for r in rows])
    head = (
        f"{pad(titles[0], w0)}  {pad(titles[1], w1)}  {pad(titles[2], 12, True)}  {pad(titles[3], 15, True)}"
    )
    lines = [
        _("{model} on {input}", model=name, input="x".join(map(str, s.input_shape))),
        head,
        "-" * columns(head),
    ]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {p:>12,}  {m:>15,}" for a, b, p, m in rows]
    lines += [
        "-" * columns(head),
        _("Total params: {n:,}", n=s.params),
        _("Trainable params: {n:,}", n=s.trainable),
    ]
    if s.params_not_run:
        lines.append(_("Params not run in eval (e.g. GoogLeNet aux heads): {n:,}", n=s.params_not_run))
    lines.append(_("Multiply-adds (MACs, conv + linear, one sample): {n:,}", n=s.macs))
    lines.append(
        _("Activation memory (leaf outputs, one sample): {size}", size=_human_bytes(s.activation_bytes))
    )
    if s.mismatches:
        verdict = _n("{n} MISMATCH", "{n} MISMATCHES", len(s.mismatches))
    else:
        verdict = _("all match")
    lines.append(
        _(
            "Formula floor((I-K+2P)/S)+1 vs forward pass: {n} conv/pool layers checked, {verdict}",
            n=s.checked,
            verdict=verdict,
        )
    )
    return "\n".join(lines)


def memory_needed(name: str, shape: Shape, classes: int = 10, width: float = 1.0) -> int:
    """Bytes that building `name` and running one `shape` sample through it take at least, on the meta device
    (nothing allocated): weights, input, and 4x the largest layer output (input and output of a layer, plus
    a residual or a concatenation's branches, are alive at once)."""
    model = build(name, shape, classes, width, device="meta")
    largest = max((math.prod(layer.output_shape) for layer in summarize(model, shape).layers), default=0)
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return weights + 4 * (math.prod(shape) + 4 * largest)  # float32


def available_memory() -> int | None:
    """Bytes of memory this machine can give a process now (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def check_memory(name: str, shape: Shape, classes: int, width: float) -> None:
    """Refuse (exit 2) a summary that cannot fit in memory before allocating any (1x99999x99999: ~19 TiB)."""
    need, have = memory_needed(name, shape, classes, width), available_memory()
    if have is not None and need > have:
        raise CnnlabError(
            _(
                "--input {shape}: {name} would need at least {need} of memory for its weights and one sample's "
                "activations; {have} is available. Use a smaller --input (`cnnlab models --input ...` counts "
                "params and MACs without allocating)",
                shape="x".join(map(str, shape)),
                name=name,
                need=_human_bytes(need),
                have=_human_bytes(have),
            )
        )


def summary_of(
    model: str | nn.Module,
    input_shape: str | tuple[int, int, int] = DEFAULT_INPUT,
    classes: int = 10,
    width: float = 1.0,
    device: str = "cpu",
) -> tuple[Summary, dict]:
    """The layer table of a registry name (built for `input_shape`, `classes`, `width` on `device`), a run
    folder or checkpoint (its own model on its own input: the other arguments are not used) or any module,
    with `.model` set to the title above the table; and what `cnnlab summary --json` says about the model
    beside the table ({"model", "classes", "width"}, and "checkpoint" for a run)."""
    from cnnlab.checkpoint import run_model

    if not isinstance(model, str):
        result = summarize(model, _shape(input_shape))
        result.model = type(model).__name__
        return result, {"model": result.model}
    run = run_model(model)
    if run is not None:  # a trained run: its own model, built as it was, on its own input
        name, shape = run["model"], run["shape"]
        result = summarize(get_model(name, **run["kwargs"]), shape)
        result.model = f"{name} ({run['source']})"
        about = {
            "model": name,
            "classes": len(run["classes"]),
            "width": run["width"],
            "checkpoint": run["source"],
        }
        return result, about
    shape = _shape(input_shape)
    if device != "meta":  # measured on the meta device: nothing allocated yet
        check_memory(model, shape, classes, width)
    result = summarize(build(model, shape, classes, width, device=device), shape)
    result.model = model
    return result, {"model": model, "classes": classes, "width": width}


def _shape(input_shape: str | tuple[int, int, int]) -> Shape:
    shape = parse_input(input_shape) if isinstance(input_shape, str) else tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise CnnlabError(
            _("input_shape must be C x H x W with positive sizes, got {value}", value=repr(input_shape))
        )
    return shape


def model_row(name: str, shape: Shape, classes: int, width: float) -> dict:
    """{name, params, macs} of one registry model on the meta device, or {name, error} if the input does not fit."""
    try:
        s = summarize(build(name, shape, classes, width, device="meta"), shape)
    except CnnlabError as e:
        return {"name": name, "error": str(e)}
    return {"name": name, "params": s.params, "macs": s.macs}


def model_table(input_shape: str = DEFAULT_INPUT, classes: int = 10, width: float = 1.0) -> dict:
    """What `cnnlab models --json` prints: params and MACs of every registered model for one input."""
    shape = parse_input(input_shape)
    rows = [model_row(name, shape, classes, width) for name in list_models()]
    return {"input_shape": list(shape), "classes": classes, "width": width, "models": rows}
