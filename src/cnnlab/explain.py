"""`cnnlab explain TOPIC`: the chapter's worked numbers, recomputed step by step, on its inputs or yours.

Matrices are written row by row: rows separated by ";", values by "," or spaces, e.g. "1,2,3;4,5,6".
Every topic prints its steps; with --json it prints one object {"topic", "result", "steps", ...}.
Without values a topic uses the chapter's own numbers, and where the chapter's printed number differs
from the exact one, the output says so and shows why.
"""

import argparse
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from cnnlab import concepts as C
from cnnlab.activations import POOLS_AND_CONVS, size_formula, traced_layers
from cnnlab.errors import CnnlabError
from cnnlab.models import get_model
from cnnlab.summary import parse_input

# The chapter's 3x3 example: a diagonal +-1 filter against a patch that differs in one cell (top left).
CHAPTER_FILTER = "1,-1,-1; -1,1,-1; -1,-1,1"
CHAPTER_PATCH = "-1,-1,-1; -1,1,-1; -1,-1,1"
# The chapter's convolution and zero-padding figures (taken from "Deep Learning from Scratch", ch. 7).
CHAPTER_INPUT = "1,2,3,0; 0,1,2,3; 3,0,1,2; 2,3,0,1"
CHAPTER_KERNEL = "2,0,1; 0,1,2; 1,0,2"
CHAPTER_CONV = {0: [[15, 16], [6, 15]], 1: [[7, 12, 10, 2], [4, 15, 16, 10], [10, 6, 15, 6], [8, 10, 4, 3]]}
CHAPTER_POOL = "1,1,2,4; 5,6,7,8; 3,2,1,0; 1,2,3,4"  # cs231n's pooling figure, which the chapter links
CHAPTER_LOGITS = [0.37, 1.58]
CHAPTER_SOFTMAX = [0.2296, 0.7704]
CHAPTER_CE_TABLE = {(0.1, 0.9): (0.1053, 0.1), (0.7, 0.3): (2.3025, 0.7)}  # prediction -> printed (CE, L1)
CHAPTER_ACCURACY = "98.65785217285156"  # the chapter's "Accuracy of Test Data"


@dataclass
class Explanation:
    """The printed steps, the final result and any extra fields for --json."""

    topic: str
    steps: list[str] = field(default_factory=list)
    result: object = None
    extra: dict = field(default_factory=dict)

    def say(self, *lines: str) -> None:
        self.steps.extend(lines)

    def say_matrix(self, title: str, m: np.ndarray) -> None:
        cells = [[fmt(v) for v in row] for row in m]
        width = max(len(c) for row in cells for c in row)
        self.say(
            f"{title} ({m.shape[0]}x{m.shape[1]}):",
            *("  " + " ".join(c.rjust(width) for c in r) for r in cells),
        )

    def as_json(self) -> dict:
        return {"topic": self.topic, "result": self.result, "steps": self.steps, **self.extra}


# ---------------------------------------------------------------- parsing and printing


def parse_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CnnlabError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise CnnlabError(f"{text!r} is not a finite number")
    return value


def parse_vector(text: str) -> np.ndarray:
    """Numbers separated by commas or spaces, e.g. "0.1,0.9", as a 1-D array."""
    items = [t for t in re.split(r"[,\s]+", text) if t]
    if not items:
        raise CnnlabError(f"expected numbers, got {text!r}")
    return np.array([parse_number(t) for t in items])


def parse_matrix(text: str) -> np.ndarray:
    """Rows separated by ';', e.g. "1,2;3,4", as a 2-D array; every row must have the same length."""
    rows = [parse_vector(r) for r in text.split(";") if r.strip()]
    if not rows:
        raise CnnlabError(f'empty matrix {text!r}; write rows separated by ";", e.g. "1,2;3,4"')
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise CnnlabError(
                f"matrix {text!r} is ragged: row 1 has {len(rows[0])} values, row {i} has {len(row)}"
            )
    return np.stack(rows)


def fmt(x: float) -> str:
    """Integers without decimals (as in the chapter's conv figures), other numbers with up to 4 decimals."""
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:.4f}".rstrip("0")


def vec(v, digits: int = 6) -> str:
    return "[" + ", ".join(f"{x:.{digits}f}" for x in v) + "]"


def shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def products(a: np.ndarray, b: np.ndarray) -> str:
    """Sum of products written out, negative factors in brackets as the chapter writes them."""

    def term(v: float) -> str:
        return f"({fmt(v)})" if v < 0 else fmt(v)

    return " + ".join(f"{term(x)} x {term(y)}" for x, y in zip(a.ravel(), b.ravel()))


def values_or(args: argparse.Namespace, count: int, defaults: list[str], usage: str) -> list[str]:
    """The topic's positional values, or the chapter's defaults when none were given."""
    values = args.values or defaults
    if len(values) != count:
        raise CnnlabError(f"{args.topic} takes {usage} (got {len(values)} value(s): {' '.join(values)})")
    return values


def stride_of(args: argparse.Namespace, default: int) -> int:
    return default if args.stride is None else args.stride


# ---------------------------------------------------------------- convolution and pooling


def explain_match(args: argparse.Namespace, ex: Explanation) -> None:
    patch_text, filter_text = values_or(args, 2, [CHAPTER_PATCH, CHAPTER_FILTER], "PATCH FILTER")
    patch, filt = parse_matrix(patch_text), parse_matrix(filter_text)
    ex.result = C.match_score(patch, filt)  # also checks that the shapes agree
    ex.say_matrix("filter", filt)
    ex.say_matrix("image patch under the filter", patch)
    total = float((patch * filt).sum())
    ex.say(f"sum of products (patch x filter, cell by cell) = {products(patch, filt)} = {fmt(total)}")
    ex.say(f"match = 1/{filt.size} x {fmt(total)} = {ex.result:.4f}   (1.00 = the patch equals the filter)")
    if not args.values:
        ex.say("chapter: 0.77. Exact: 7/9 = 0.7778; the chapter cut it to two decimals (rounded: 0.78).")


def explain_conv(args: argparse.Namespace, ex: Explanation) -> None:
    x_text, k_text = values_or(args, 2, [CHAPTER_INPUT, CHAPTER_KERNEL], "MATRIX KERNEL")
    x, k = parse_matrix(x_text), parse_matrix(k_text)
    s, p = stride_of(args, 1), args.padding
    ex.say(f"input {shape_str(x.shape)}, kernel {shape_str(k.shape)}, stride {s}, padding {p}")
    for axis, name in enumerate(("height", "width")):
        i, kk = x.shape[axis], k.shape[axis]
        size = C.output_size(i, kk, s, p)  # raises the clear "kernel larger than padded input" error
        ex.say(f"output {name} = floor((I - K + 2P)/S) + 1 = floor(({i} - {kk} + 2*{p})/{s}) + 1 = {size}")
    xp = C.pad2d(x, p)
    if p:
        ex.say_matrix("zero-padded input", xp)
    out = C.conv2d(x[None], k[None, None], np.array([args.bias]), stride=s, padding=p)[0]
    bias = f" + {fmt(args.bias)}" if args.bias else ""
    for i, j in np.ndindex(*out.shape):
        window = xp[i * s : i * s + k.shape[0], j * s : j * s + k.shape[1]]
        ex.say(f"out[{i},{j}] = {products(window, k)}{bias} = {fmt(out[i, j])}")
    ex.say_matrix("feature map", out)
    if not args.values and s == 1 and args.bias == 0 and p in CHAPTER_CONV:
        same = np.array_equal(out, CHAPTER_CONV[p])
        ex.say(f"chapter's figure with padding {p}: {'matches' if same else 'DIFFERS'}")
    ex.result = out.tolist()


def explain_pool(args: argparse.Namespace, ex: Explanation) -> None:
    (text,) = values_or(args, 1, [CHAPTER_POOL], "MATRIX")
    x, k = parse_matrix(text), args.size
    s = stride_of(args, k)  # PyTorch's default: windows side by side, no overlap
    ex.say(f"input {shape_str(x.shape)}, window {k}x{k}, stride {s}")
    maxed, averaged = C.max_pool2d(x[None], k, s)[0], C.avg_pool2d(x[None], k, s)[0]
    for i, j in np.ndindex(*maxed.shape):
        w = x[i * s : i * s + k, j * s : j * s + k].ravel()
        average = f"{fmt(w.sum())}/{w.size} = {fmt(w.mean())}"
        ex.say(f"window ({i},{j}): {' '.join(map(fmt, w))} -> max {fmt(w.max())}, average {average}")
    ex.say_matrix("max pooling (keeps the strongest response of each window)", maxed)
    ex.say_matrix("average pooling (keeps the mean of each window)", averaged)
    ex.result = {"max": maxed.tolist(), "average": averaged.tolist()}


# ---------------------------------------------------------------- sizes and parameters of a model


def traced_model(name: str, shape_text: str, kinds: tuple) -> tuple[nn.Module, list]:
    """Build registered model `name` for input CxHxW and trace the `kinds` layers on a random input."""
    c, h, w = parse_input(shape_text)
    model = get_model(name, in_channels=c, input_size=h)  # an unknown name raises a CnnlabError
    try:
        return model, traced_layers(model, torch.randn(1, c, h, w), kinds)
    except RuntimeError as e:  # e.g. a kernel larger than a feature map deep in the network
        raise CnnlabError(f"{name} cannot run on a {shape_text} input: {str(e).splitlines()[0]}") from None


def walk_model(args: argparse.Namespace, ex: Explanation) -> None:
    """Every Conv/Pool layer in the order the forward pass calls it, with the formula for its size."""
    _, rows = traced_model(args.model, args.input, POOLS_AND_CONVS)
    ex.say(f"{args.model} on a {args.input} input, Conv/Pool layers in forward order:")
    width = max(len(name) for name, *_ in rows)
    for name, module, shape_in, shape_out in rows:
        (h_text, h), (w_text, w) = (size_formula(module, shape_in[1 + a], a) for a in (0, 1))
        formula = h_text if h_text == w_text else f"height: {h_text} | width: {w_text}"
        if (h, w) not in ((shape_out[1], shape_out[2]), (None, None)):
            formula += "  (formula disagrees with PyTorch!)"
        shapes = f"{shape_str(shape_in):>11} -> {shape_str(shape_out):<11}"
        ex.say(f"{name:<{width}}  {type(module).__name__:<17} {shapes} {formula}")
    last = rows[-1][3]
    ex.say(f"last feature map {shape_str(last)} = {math.prod(last)} values, flattened into the classifier")
    if args.model == "chapter-cnn" and args.input == "1x28x28":
        ex.say("= the chapter's nn.Linear(64*3*3, 100): 64 channels of 3x3")
    ex.result = list(last)
    ex.extra["layers"] = [
        {"layer": n, "type": type(m).__name__, "input": i, "output": o} for n, m, i, o in rows
    ]


def explain_output_size(args: argparse.Namespace, ex: Explanation) -> None:
    if args.model or not args.values:  # no numbers: the chapter's own walk, 28 -> ... -> 64x3x3
        args.model = args.model or "chapter-cnn"
        return walk_model(args, ex)
    if len(args.values) != 2:
        raise CnnlabError("output-size takes I K (image and kernel size), or --model NAME")
    i, k = (parse_number(v) for v in args.values)
    if not (i.is_integer() and k.is_integer()):
        raise CnnlabError(f"sizes must be whole numbers, got I={fmt(i)} K={fmt(k)}")
    i, k, s, p = int(i), int(k), stride_of(args, 1), args.padding
    ex.result = C.output_size(i, k, s, p)
    ex.say("output = floor((I - K + 2P) / S) + 1")
    ex.say(f"       = floor(({i} - {k} + 2*{p}) / {s}) + 1 = floor({i - k + 2 * p} / {s}) + 1 = {ex.result}")


def explain_parameters(args: argparse.Namespace, ex: Explanation) -> None:
    name = args.model or (args.values[0] if len(args.values) == 1 else None)
    if name is None:
        raise CnnlabError("parameters takes one MODEL name, e.g. chapter-cnn")
    model, convs = traced_model(name, args.input, (nn.Conv2d,))
    if args.layer:
        known = [n for n, *_ in convs]
        if args.layer not in known:
            raise CnnlabError(f"unknown layer {args.layer!r} in {name}; its conv layers: {', '.join(known)}")
        convs = [row for row in convs if row[0] == args.layer]
    ex.say(
        "a conv layer reuses one small F x C x K x K set of weights at every position (weight sharing)",
        "and each output looks at a K x K patch only; a dense layer joins every input to every output.",
    )
    rows = []
    for layer, m, shape_in, shape_out in convs:
        params = sum(p.numel() for p in m.parameters(recurse=False))
        n_in, n_out = math.prod(shape_in), math.prod(shape_out)
        dense = n_in * n_out + n_out  # one weight per (input, output) pair, one bias per output
        weights = f"{m.out_channels}x{m.in_channels // m.groups}x{shape_str(m.kernel_size)}"
        ex.say(
            f"{layer}: conv {weights} weights + {0 if m.bias is None else m.out_channels} biases = {params:,};"
            f" dense {shape_str(shape_in)} -> {shape_str(shape_out)} = {dense:,} ({dense / params:,.0f}x more)"
        )
        rows.append({"layer": layer, "params": params, "dense_params": dense})
    total = sum(p.numel() for p in model.parameters())
    ex.say(f"whole {name}: {total:,} parameters")
    ex.result, ex.extra["total_params"] = rows, total


# ---------------------------------------------------------------- probabilities and losses


def explain_softmax(args: argparse.Namespace, ex: Explanation) -> None:
    z = np.array([parse_number(v) for v in args.values] if args.values else CHAPTER_LOGITS)
    shifted = z - z.max()
    e = np.exp(shifted)
    ex.result = C.softmax(z).tolist()
    ex.say(
        f"scores z = {vec(z, 4)}",
        f"z - max(z) = {vec(shifted)} (max cancels in the fraction; it keeps exp from overflowing)",
        f"exp(z - max) = {vec(e)}, sum = {e.sum():.6f}",
        f"softmax = exp / sum = {vec(ex.result)}",
        f"rounded to 4 decimals: {vec(ex.result, 4)}",
    )
    if not args.values:
        lo, hi = C.softmax(np.array([0.375, 1.575]))[0], C.softmax(np.array([0.365, 1.585]))[0]
        gap = math.log(CHAPTER_SOFTMAX[1] / CHAPTER_SOFTMAX[0])
        ex.say(
            f"chapter: {CHAPTER_SOFTMAX}, 1 off in the 4th decimal: rounding, not another formula. Neither",
            "  rounding nor cutting 0.229701 gives 0.2296, but the logits are themselves printed rounded:",
            f"  logits that round to 0.37 and 1.58 give softmax[0] anywhere from {hi:.4f} to {lo:.4f};",
            f"  a gap z1 - z0 = ln(0.7704/0.2296) = {gap:.4f}, e.g. logits [0.37, {0.37 + gap:.4f}],",
            "  gives exactly the chapter's [0.2296, 0.7704].",
        )
        ex.extra["chapter"] = CHAPTER_SOFTMAX


def check_distribution(v: np.ndarray, what: str) -> None:
    if (v < 0).any() or abs(v.sum() - 1) > 1e-3:
        raise CnnlabError(f"{what} {vec(v, 4)} must be probabilities >= 0 that sum to 1 (sum {v.sum():.4f})")


def explain_cross_entropy(args: argparse.Namespace, ex: Explanation) -> None:
    p = parse_vector(args.target)
    preds = [parse_vector(t) for t in args.pred] if args.pred else [np.array(q) for q in CHAPTER_CE_TABLE]
    check_distribution(p, "target")
    rows = []
    for q in preds:
        if q.shape != p.shape:
            raise CnnlabError(f"prediction {vec(q, 4)} has {q.size} values but the target has {p.size}")
        check_distribution(q, "prediction")
        if ((q == 0) & (p > 0)).any():
            raise CnnlabError(
                f"prediction {vec(q, 4)} gives 0 to an outcome of the target: the loss is infinite"
            )
        rows.append(cross_entropy_row(ex, p, q))
    if not args.pred and np.array_equal(p, [0, 1]):
        chapter_table_note(ex, rows)
    ex.result = [r["cross_entropy"] for r in rows]
    ex.extra["table"] = rows


def cross_entropy_row(ex: Explanation, p: np.ndarray, q: np.ndarray) -> dict:
    ce, l1 = float(C.cross_entropy(p, q)), C.l1_loss(p, q)
    h, kl = float(C.entropy(p)), float(C.kl_divergence(p, q))
    logs = " + ".join(f"{fmt(a)} x ln {fmt(b)}" for a, b in zip(p, q))
    diffs = " + ".join(fmt(abs(a - b)) for a, b in zip(p, q))
    ex.say(
        f"target p = {vec(p, 2)}, prediction q = {vec(q, 2)}",
        f"  cross entropy H(p,q) = -sum p ln q = -({logs}) = {ce:.4f}",
        f"  L1 = mean |q - p| = ({diffs}) / {p.size} = {l1:.4f}",
        f"  H(p) = {h:.4f}, KL(p||q) = {kl:.4f}, H(p) + KL = {h + kl:.4f} = H(p,q) (gap {abs(h + kl - ce):.0e})",
    )
    return dict(
        target=p.tolist(), prediction=q.tolist(), cross_entropy=ce, l1=l1, entropy=h, kl_divergence=kl
    )


def chapter_table_note(ex: Explanation, rows: list[dict]) -> None:
    """Compare with the chapter's printed table and name the input its 2.3025 really belongs to."""
    ex.say("the chapter's table (cross entropy, L1):")
    ex.extra["discrepancies"] = []
    for row, (q, (ce_printed, l1_printed)) in zip(rows, CHAPTER_CE_TABLE.items()):
        agrees = abs(row["cross_entropy"] - ce_printed) < 1e-3
        verdict = "agrees (the chapter cuts, not rounds, to 4 decimals)" if agrees else "DISCREPANCY"
        exact = f"{row['cross_entropy']:.6f}, {row['l1']:.4f}"
        ex.say(f"  {list(q)}: printed {ce_printed}, {l1_printed}; exact {exact} -> {verdict}")
        if agrees:
            continue
        true_prob = round(math.exp(-ce_printed), 4)  # the probability on the true class giving that loss
        culprit = [round(1 - true_prob, 4), true_prob]
        ex.say(
            f"  {ce_printed} = -ln {true_prob} = {-math.log(true_prob):.6f} cut to 4 decimals:",
            f"  the loss of prediction {culprit}, not of {list(q)} (-ln {q[1]} = {row['cross_entropy']:.4f}).",
            f"  The L1 cell {l1_printed} does belong to {list(q)} ({culprit} would give L1"
            f" {C.l1_loss([0, 1], culprit):.1f}), so only the cross-entropy cell is wrong.",
        )
        found = dict(
            prediction=list(q), printed=ce_printed, exact=row["cross_entropy"], printed_is_loss_of=culprit
        )
        ex.extra["discrepancies"].append(found)
    ex.say("the chapter's point stands: a confident wrong answer costs far more in cross entropy than in L1.")


# ---------------------------------------------------------------- the chapter's evaluation


def explain_eval_drop(args: argparse.Namespace, ex: Explanation) -> None:
    n, batch = (int(parse_number(v)) for v in values_or(args, 2, ["10000", "256"], "TEST_SIZE BATCH_SIZE"))
    if n < 1 or batch < 1:
        raise CnnlabError(f"test size and batch size must be positive, got {n} and {batch}")
    counted, ex.result = n // batch * batch, n % batch
    ex.say(
        f"DataLoader(batch_size={batch}, drop_last=True) over {n:,} test images:",
        f"  {n} // {batch} = {n // batch} full batches = {counted:,} images counted",
        f"  {n} mod {batch} = {ex.result} images of the last, partial batch are silently dropped",
    )
    if not args.values:
        chapter_accuracy_note(ex, n, counted)
    ex.say(
        "cnnlab evaluates with drop_last=False and flatten(1), so every test image counts; the chapter",
        "needed drop_last because out.view(batch_size, -1) breaks on a smaller last batch.",
    )


def chapter_accuracy_note(ex: Explanation, n: int, counted: int) -> None:
    """Show from the printed float32 accuracy alone that the denominator was 9984, not 10000."""
    printed = torch.tensor(float(CHAPTER_ACCURACY))

    def hits(total: int) -> list[int]:  # correct counts c whose float32 100 * c / total equals the print
        correct = torch.arange(total + 1, dtype=torch.float32)
        return (100 * correct / total == printed).nonzero().flatten().tolist()

    over_counted, over_all = hits(counted), hits(n)
    c, missing = over_counted[0], n - counted
    ex.say(
        f"the chapter prints Accuracy {CHAPTER_ACCURACY}; in float32 that is 100 * c / {counted}",
        f"  for c in {over_counted}, and 100 * c / {n} for no c at all ({over_all}):",
        f"  only {counted:,} images were counted, {c:,} of them right.",
        f"  Over all {n:,} the accuracy lies between {100 * c / n:.2f}% and {100 * (c + missing) / n:.2f}%.",
        "(the train loader drops 60000 mod 256 = 96 images per epoch too, but reshuffles: different ones)",
    )
    ex.extra["chapter"] = {"printed": CHAPTER_ACCURACY, "correct": c, "counted": counted}


# ---------------------------------------------------------------- the command

TOPICS = {  # topic -> (function, its values, what it shows), for dispatch and --help
    "match": (explain_match, "[PATCH FILTER]", "how well a patch matches a filter (chapter: 0.77)"),
    "conv": (explain_conv, "[MATRIX KERNEL]", "every output cell (--stride, --padding, --bias)"),
    "output-size": (
        explain_output_size,
        "[I K]",
        "the size formula; --model NAME [--input CxHxW] walks a model",
    ),
    "pool": (explain_pool, "[MATRIX]", "max and average pooling (--size, --stride)"),
    "softmax": (explain_softmax, "[SCORE ...]", "scores to probabilities (chapter: 0.37 1.58)"),
    "cross-entropy": (explain_cross_entropy, "", "the chapter's table, or --target P --pred Q [--pred ...]"),
    "parameters": (explain_parameters, "MODEL", "conv vs dense parameters: weight sharing"),
    "eval-drop": (explain_eval_drop, "[TEST BATCH]", "the test images drop_last=True skips"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    topics = "\n".join(f"  {name + ' ' + values:<30}{what}" for name, (_, values, what) in TOPICS.items())
    parser.epilog = (
        f"topics:\n{topics}\n\nWithout values a topic uses the chapter's numbers. Matrices: rows separated"
        ' by ";",\nvalues by "," or spaces, e.g. "1,2,0;0,1,2;2,0,1" (a leading minus sign is fine).'
    )
    # Let values such as "-1,1;1,-1" count as values, not unknown options: argparse only treats plain
    # negative numbers that way. A private attribute, hence the guard; "--" before the values always works.
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = re.compile(r"^-\.?\d")
    parser.add_argument("topic", choices=list(TOPICS), metavar="TOPIC", help="one of the topics below")
    parser.add_argument("values", nargs="*", help="the topic's inputs: numbers, matrices or a model name")
    parser.add_argument("--stride", type=int, help="step of the filter/window (default 1; pool: --size)")
    parser.add_argument("--padding", type=int, default=0, help="zero padding for conv/output-size")
    parser.add_argument("--bias", type=float, default=0.0, help="bias added to every conv output cell")
    parser.add_argument("--size", type=int, default=2, help="pool window size")
    parser.add_argument("--model", help="registered model for output-size (size walk) or parameters")
    parser.add_argument("--input", default="1x28x28", help="input shape CxHxW for --model (default 1x28x28)")
    parser.add_argument("--layer", help="parameters: only this conv layer (a name from the size walk)")
    parser.add_argument("--target", default="0,1", help="cross-entropy target distribution (default 0,1)")
    parser.add_argument("--pred", action="append", help="cross-entropy prediction (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the steps")


def run(args: argparse.Namespace) -> int:
    ex = Explanation(args.topic)
    TOPICS[args.topic][0](args, ex)
    print(json.dumps(ex.as_json()) if args.json else "\n".join(ex.steps))
    return 0
