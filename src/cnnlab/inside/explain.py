"""The chapter's worked numbers, recomputed step by step, on its inputs or yours: what `cnnlab explain
TOPIC` prints (the command: cnnlab.commands.explain) and `cnnlab.explain(...)` returns.

Matrices are written row by row: rows separated by ";", values by "," or spaces, e.g. "1,2,3;4,5,6".
Every topic prints its steps; with --json it prints one object {"topic", "result", "steps", ...}.
Without values a topic uses the chapter's own numbers, and where the chapter's printed number differs
from the exact one, the output says so and shows why.
"""

import math
from dataclasses import fields

import numpy as np
import torch
import torch.nn as nn

from cnnlab.errors import CnnlabError
from cnnlab.i18n import N_, _, using
from cnnlab.inside import concepts as C
from cnnlab.inside.activations import POOLS_AND_CONVS, size_formula, traced_layers
from cnnlab.inside.explain_losses import explain_cross_entropy, explain_eval_drop, explain_softmax
from cnnlab.inside.explain_text import (
    Explanation,
    Options,
    fmt,
    parse_matrix,
    parse_number,
    products,
    shape_str,
    stride_of,
    values_or,
)
from cnnlab.inside.summary import parse_input
from cnnlab.models import get_model, model_facts
from cnnlab.options import unknown_error

# The chapter's 3x3 example: a diagonal +-1 filter against a patch that differs in one cell (top left).
CHAPTER_FILTER = "1,-1,-1; -1,1,-1; -1,-1,1"
CHAPTER_PATCH = "-1,-1,-1; -1,1,-1; -1,-1,1"
# The chapter's convolution and zero-padding figures (taken from "Deep Learning from Scratch", ch. 7).
CHAPTER_INPUT = "1,2,3,0; 0,1,2,3; 3,0,1,2; 2,3,0,1"
CHAPTER_KERNEL = "2,0,1; 0,1,2; 1,0,2"
CHAPTER_CONV = {0: [[15, 16], [6, 15]], 1: [[7, 12, 10, 2], [4, 15, 16, 10], [10, 6, 15, 6], [8, 10, 4, 3]]}
CHAPTER_POOL = "1,1,2,4; 5,6,7,8; 3,2,1,0; 1,2,3,4"  # cs231n's pooling figure, which the chapter links


# ---------------------------------------------------------------- convolution and pooling


def explain_match(args: Options, ex: Explanation) -> None:
    patch_text, filter_text = values_or(args, 2, [CHAPTER_PATCH, CHAPTER_FILTER], "PATCH FILTER")
    patch, filt = parse_matrix(patch_text), parse_matrix(filter_text)
    ex.result = C.match_score(patch, filt)  # also checks that the shapes agree
    ex.say_matrix(_("filter"), filt)
    ex.say_matrix(_("image patch under the filter"), patch)
    total = float((patch * filt).sum())
    ex.say(
        _(
            "sum of products (patch x filter, cell by cell) = {products} = {total}",
            products=products(patch, filt),
            total=fmt(total),
        )
    )
    ex.say(
        _(
            "match = 1/{n} x {total} = {result:.4f}   (1.00 = the patch equals the filter)",
            n=filt.size,
            total=fmt(total),
            result=ex.result,
        )
    )
    if not args.values:
        ex.say(_("chapter: 0.77. Exact: 7/9 = 0.7778; the chapter cut it to two decimals (rounded: 0.78)."))


def explain_conv(args: Options, ex: Explanation) -> None:
    x_text, k_text = values_or(args, 2, [CHAPTER_INPUT, CHAPTER_KERNEL], "MATRIX KERNEL")
    x, k = parse_matrix(x_text), parse_matrix(k_text)
    s, p = stride_of(args, 1), args.padding
    ex.say(
        _(
            "input {x}, kernel {k}, stride {s}, padding {p}",
            x=shape_str(x.shape),
            k=shape_str(k.shape),
            s=s,
            p=p,
        )
    )
    for axis in (0, 1):
        i, kk = x.shape[axis], k.shape[axis]
        size = C.output_size(i, kk, s, p)  # raises the clear "kernel larger than padded input" error
        line = (
            _(
                "output height = floor((I - K + 2P)/S) + 1 = floor(({i} - {k} + 2*{p})/{s}) + 1 = {size}",
                i=i,
                k=kk,
                p=p,
                s=s,
                size=size,
            )
            if axis == 0
            else _(
                "output width = floor((I - K + 2P)/S) + 1 = floor(({i} - {k} + 2*{p})/{s}) + 1 = {size}",
                i=i,
                k=kk,
                p=p,
                s=s,
                size=size,
            )
        )
        ex.say(line)
    xp = C.pad2d(x, p)
    if p:
        ex.say_matrix(_("zero-padded input"), xp)
    out = C.conv2d(x[None], k[None, None], np.array([args.bias]), stride=s, padding=p)[0]
    bias = f" + {fmt(args.bias)}" if args.bias else ""
    for i, j in np.ndindex(*out.shape):
        window = xp[i * s : i * s + k.shape[0], j * s : j * s + k.shape[1]]
        ex.say(f"out[{i},{j}] = {products(window, k)}{bias} = {fmt(out[i, j])}")
    ex.say_matrix(_("feature map"), out)
    if not args.values and s == 1 and args.bias == 0 and p in CHAPTER_CONV:
        same = np.array_equal(out, CHAPTER_CONV[p])
        ex.say(
            _(
                "chapter's figure with padding {p}: {verdict}",
                p=p,
                verdict=_("matches") if same else _("DIFFERS"),
            )
        )
    ex.result = out.tolist()


def explain_pool(args: Options, ex: Explanation) -> None:
    (text,) = values_or(args, 1, [CHAPTER_POOL], "MATRIX")
    x, k = parse_matrix(text), args.size
    s = stride_of(args, k)  # PyTorch's default: windows side by side, no overlap
    ex.say(_("input {x}, window {k}x{k}, stride {s}", x=shape_str(x.shape), k=k, s=s))
    maxed, averaged = C.max_pool2d(x[None], k, s)[0], C.avg_pool2d(x[None], k, s)[0]
    for i, j in np.ndindex(*maxed.shape):
        w = x[i * s : i * s + k, j * s : j * s + k].ravel()
        average = f"{fmt(w.sum())}/{w.size} = {fmt(w.mean())}"
        ex.say(
            _(
                "window ({i},{j}): {values} -> max {max}, average {average}",
                i=i,
                j=j,
                values=" ".join(map(fmt, w)),
                max=fmt(w.max()),
                average=average,
            )
        )
    ex.say_matrix(_("max pooling (keeps the strongest response of each window)"), maxed)
    ex.say_matrix(_("average pooling (keeps the mean of each window)"), averaged)
    ex.result = {"max": maxed.tolist(), "average": averaged.tolist()}


# ---------------------------------------------------------------- sizes and parameters of a model


def traced_model(name: str, shape_text: str, kinds: tuple) -> tuple[nn.Module, list]:
    """Build registered model `name` for input CxHxW and trace the `kinds` layers on a random input."""
    c, h, w = parse_input(shape_text)
    model = get_model(name, in_channels=c, input_size=h)  # an unknown name raises a CnnlabError
    try:
        return model, traced_layers(model, torch.randn(1, c, h, w), kinds)
    except RuntimeError as e:  # e.g. a kernel larger than a feature map deep in the network
        error = str(e).splitlines()[0]
        raise CnnlabError(
            _("{name} cannot run on a {shape} input: {error}", name=name, shape=shape_text, error=error)
        ) from None


def walk_model(args: Options, ex: Explanation) -> None:
    """Every Conv/Pool layer in the order the forward pass calls it, with the formula for its size."""
    _model, rows = traced_model(args.model, args.input, POOLS_AND_CONVS)
    ex.say(
        _(
            "{model} on a {input} input, Conv/Pool layers in forward order:",
            model=args.model,
            input=args.input,
        )
    )
    width = max(len(row[0]) for row in rows)
    for name, module, shape_in, shape_out in rows:
        (h_text, h), (w_text, w) = (size_formula(module, shape_in[1 + a], a) for a in (0, 1))
        formula = h_text if h_text == w_text else _("height: {h} | width: {w}", h=h_text, w=w_text)
        if (h, w) not in ((shape_out[1], shape_out[2]), (None, None)):
            formula += "  " + _("(formula disagrees with PyTorch!)")
        shapes = f"{shape_str(shape_in):>11} -> {shape_str(shape_out):<11}"
        ex.say(f"{name:<{width}}  {type(module).__name__:<17} {shapes} {formula}")
    last = rows[-1][3]
    ex.say(
        _(
            "last feature map {shape} = {n} values, flattened into the classifier",
            shape=shape_str(last),
            n=math.prod(last),
        )
    )
    if model_facts(args.model).chapter and args.input == "1x28x28":
        ex.say(_("= the chapter's nn.Linear(64*3*3, 100): 64 channels of 3x3"))
    ex.result = list(last)
    ex.extra["layers"] = [
        {"layer": n, "type": type(m).__name__, "input": i, "output": o} for n, m, i, o in rows
    ]


def explain_output_size(args: Options, ex: Explanation) -> None:
    if args.model or not args.values:  # no numbers: the chapter's own walk, 28 -> ... -> 64x3x3
        args.model = args.model or "chapter-cnn"
        return walk_model(args, ex)
    if len(args.values) != 2:
        raise CnnlabError(_("output-size takes I K (image and kernel size), or --model NAME"))
    i, k = (parse_number(v) for v in args.values)
    if not (i.is_integer() and k.is_integer()):
        raise CnnlabError(_("sizes must be whole numbers, got I={i} K={k}", i=fmt(i), k=fmt(k)))
    i, k, s, p = int(i), int(k), stride_of(args, 1), args.padding
    ex.result = C.output_size(i, k, s, p)
    ex.say(_("output = floor((I - K + 2P) / S) + 1"))
    ex.say(f"       = floor(({i} - {k} + 2*{p}) / {s}) + 1 = floor({i - k + 2 * p} / {s}) + 1 = {ex.result}")


def times(ex: Explanation, dense: int, conv: int) -> str:
    """'N x more' or 'N x fewer' for the dense layer against the conv (never '0x more')."""
    big, small = max(dense, conv), max(min(dense, conv), 1)
    ratio = big / small
    text = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"
    return _("{n}x more", n=text) if dense >= conv else _("{n}x fewer", n=text)


def explain_parameters(args: Options, ex: Explanation) -> None:
    name = args.model or (args.values[0] if len(args.values) == 1 else None)
    if name is None:
        raise CnnlabError(_("parameters takes one MODEL name, e.g. chapter-cnn"))
    model, convs = traced_model(name, args.input, (nn.Conv2d,))
    if args.layer:
        known = [n for n, *_rest in convs]
        if args.layer not in known:
            raise unknown_error("layer", args.layer, known, "--layer")  # with "did you mean"
        convs = [row for row in convs if row[0] == args.layer]
    ex.say(
        *_(
            "a conv layer reuses one small F x C x K x K set of weights at every position (weight sharing)\n"
            "and each output looks at a K x K patch only; a dense layer joins every input to every output."
        ).splitlines()
    )
    rows = []
    for layer, m, shape_in, shape_out in convs:
        params = sum(p.numel() for p in m.parameters(recurse=False))
        n_in, n_out = math.prod(shape_in), math.prod(shape_out)
        dense = n_in * n_out + n_out  # one weight per (input, output) pair, one bias per output
        weights = f"{m.out_channels}x{m.in_channels // m.groups}x{shape_str(m.kernel_size)}"
        biases = 0 if m.bias is None else m.out_channels
        ex.say(
            _(
                "{layer}: conv {weights} weights + {biases} biases = {params:,}; dense {shape_in} -> {shape_out} = {dense:,} ({compare})",
                layer=layer,
                weights=weights,
                biases=biases,
                params=params,
                shape_in=shape_str(shape_in),
                shape_out=shape_str(shape_out),
                dense=dense,
                compare=times(ex, dense, params),
            )
        )
        rows.append({"layer": layer, "params": params, "dense_params": dense})
    total = sum(p.numel() for p in model.parameters())
    ex.say(_("whole {name}: {total:,} parameters", name=name, total=total))
    ex.result, ex.extra["total_params"] = rows, total


# ---------------------------------------------------------------- the command

TOPICS = {  # topic -> (function, its values, what it shows), for dispatch and --help
    "match": (explain_match, "[PATCH FILTER]", N_("how well a patch matches a filter (chapter: 0.77)")),
    "conv": (explain_conv, "[MATRIX KERNEL]", N_("every output cell (--stride, --padding, --bias)")),
    "output-size": (
        explain_output_size,
        "[I K]",
        N_("the size formula; --model NAME [--input CxHxW] walks a model"),
    ),
    "pool": (explain_pool, "[MATRIX]", N_("max and average pooling (--size, --stride)")),
    "softmax": (explain_softmax, "[SCORE ...]", N_("scores to probabilities (chapter: 0.37 1.58)")),
    "cross-entropy": (
        explain_cross_entropy,
        "",
        N_("the chapter's table, or --target P --pred Q [--pred ...]"),
    ),
    "parameters": (explain_parameters, "MODEL", N_("conv vs dense parameters: weight sharing")),
    "eval-drop": (explain_eval_drop, "[TEST BATCH]", N_("the test images drop_last=True skips")),
}


def explain_topic(topic: str, options: Options) -> Explanation:
    """The steps and result of `topic` with `options` (its values and settings; an unknown topic is an
    error naming the known ones)."""
    if topic not in TOPICS:
        raise unknown_error("topic", topic, list(TOPICS))
    options.topic = topic
    ex = Explanation(topic)
    TOPICS[topic][0](options, ex)
    return ex


def explain(topic: str, *values, lang: str | None = None, **options) -> dict:
    """What `cnnlab explain TOPIC VALUES... --json` prints: {"topic", "result", "steps", ...}, the steps in
    `lang` ("en" or "ko"; None: the current language). `options` are the command's flags by name, e.g.
    `explain("conv", padding=1)`, `explain("output-size", model="vgg16", input="3x224x224")`."""
    from cnnlab.options import check_command

    settings = sorted(f.name for f in fields(Options) if f.name not in ("topic", "values"))
    wrong = sorted(set(options) - set(settings))
    with using(lang):
        if topic not in TOPICS:
            raise unknown_error("topic", topic, list(TOPICS))
        if wrong:
            raise unknown_error("option", wrong[0], settings)
        chosen = Options(topic=topic, values=[str(v) for v in values], **options)
        check_command("explain", chosen)
        return explain_topic(topic, chosen).as_json()
