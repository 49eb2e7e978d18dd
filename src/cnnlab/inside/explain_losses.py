"""`cnnlab explain` topics on probabilities and losses: softmax, cross-entropy, and the chapter's evaluation."""

import argparse
import math

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.inside import concepts as C
from cnnlab.inside.explain_text import Explanation, fmt, parse_number, parse_vector, values_or, vec

CHAPTER_LOGITS = [0.37, 1.58]
CHAPTER_SOFTMAX = [0.2296, 0.7704]
CHAPTER_CE_TABLE = {(0.1, 0.9): (0.1053, 0.1), (0.7, 0.3): (2.3025, 0.7)}  # prediction -> printed (CE, L1)
CHAPTER_ACCURACY = "98.65785217285156"  # the chapter's "Accuracy of Test Data"


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
