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
        ex.t("explain.softmax_z", z=vec(z, 4)),
        ex.t("explain.softmax_shift", shifted=vec(shifted)),
        ex.t("explain.softmax_exp", e=vec(e), sum=e.sum()),
        ex.t("explain.softmax_div", p=vec(ex.result)),
        ex.t("explain.softmax_round", p=vec(ex.result, 4)),
    )
    if not args.values:
        lo, hi = C.softmax(np.array([0.375, 1.575]))[0], C.softmax(np.array([0.365, 1.585]))[0]
        gap = math.log(CHAPTER_SOFTMAX[1] / CHAPTER_SOFTMAX[0])
        note = ex.t("explain.softmax_chapter", chapter=CHAPTER_SOFTMAX, hi=hi, lo=lo, gap=gap, z1=0.37 + gap)
        ex.say(*note.splitlines())
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
        ex.t("explain.ce_pq", p=vec(p, 2), q=vec(q, 2)),
        ex.t("explain.ce", logs=logs, ce=ce),
        ex.t("explain.l1", diffs=diffs, n=p.size, l1=l1),
        ex.t("explain.ce_kl", h=h, kl=kl, sum=h + kl, gap=abs(h + kl - ce)),
    )
    return dict(
        target=p.tolist(), prediction=q.tolist(), cross_entropy=ce, l1=l1, entropy=h, kl_divergence=kl
    )


def chapter_table_note(ex: Explanation, rows: list[dict]) -> None:
    """Compare with the chapter's printed table and name the input its 2.3025 really belongs to."""
    ex.say(ex.t("explain.ce_table"))
    ex.extra["discrepancies"] = []
    for row, (q, (ce_printed, l1_printed)) in zip(rows, CHAPTER_CE_TABLE.items()):
        agrees = abs(row["cross_entropy"] - ce_printed) < 1e-3
        verdict = ex.t("explain.ce_agrees" if agrees else "explain.ce_discrepancy")
        exact = f"{row['cross_entropy']:.6f}, {row['l1']:.4f}"
        ex.say(ex.t("explain.ce_row", q=list(q), ce=ce_printed, l1=l1_printed, exact=exact, verdict=verdict))
        if agrees:
            continue
        true_prob = round(math.exp(-ce_printed), 4)  # the probability on the true class giving that loss
        culprit = [round(1 - true_prob, 4), true_prob]
        why = ex.t(
            "explain.ce_culprit",
            printed=ce_printed,
            true_prob=true_prob,
            loss=-math.log(true_prob),
            culprit=culprit,
            q=list(q),
            q1=q[1],
            exact=row["cross_entropy"],
            l1=l1_printed,
            culprit_l1=C.l1_loss([0, 1], culprit),
        )
        ex.say(*why.splitlines())
        found = dict(
            prediction=list(q), printed=ce_printed, exact=row["cross_entropy"], printed_is_loss_of=culprit
        )
        ex.extra["discrepancies"].append(found)
    ex.say(ex.t("explain.ce_point"))


# ---------------------------------------------------------------- the chapter's evaluation


def explain_eval_drop(args: argparse.Namespace, ex: Explanation) -> None:
    n, batch = (int(parse_number(v)) for v in values_or(args, 2, ["10000", "256"], "TEST_SIZE BATCH_SIZE"))
    if n < 1 or batch < 1:
        raise CnnlabError(f"test size and batch size must be positive, got {n} and {batch}")
    counted, ex.result = n // batch * batch, n % batch
    ex.say(
        *ex.t("explain.drop", n=n, batch=batch, full=n // batch, counted=counted, rest=ex.result).splitlines()
    )
    if not args.values:
        chapter_accuracy_note(ex, n, counted)
    ex.say(*ex.t("explain.drop_fix").splitlines())


def chapter_accuracy_note(ex: Explanation, n: int, counted: int) -> None:
    """Show from the printed float32 accuracy alone that the denominator was 9984, not 10000."""
    printed = torch.tensor(float(CHAPTER_ACCURACY))

    def hits(total: int) -> list[int]:  # correct counts c whose float32 100 * c / total equals the print
        correct = torch.arange(total + 1, dtype=torch.float32)
        return (100 * correct / total == printed).nonzero().flatten().tolist()

    over_counted, over_all = hits(counted), hits(n)
    c, missing = over_counted[0], n - counted
    note = ex.t(
        "explain.drop_accuracy",
        printed=CHAPTER_ACCURACY,
        counted=counted,
        over_counted=over_counted,
        n=n,
        over_all=over_all,
        c=c,
        lo=100 * c / n,
        hi=100 * (c + missing) / n,
    )
    ex.say(*note.splitlines())
    ex.extra["chapter"] = {"printed": CHAPTER_ACCURACY, "correct": c, "counted": counted}
