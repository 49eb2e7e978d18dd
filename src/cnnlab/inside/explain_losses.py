"""`cnnlab explain` topics on probabilities and losses: softmax, cross-entropy, and the chapter's evaluation."""

import math

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.inside import concepts as C
from cnnlab.inside.explain_text import Explanation, Options, fmt, parse_number, parse_vector, values_or, vec

CHAPTER_LOGITS = [0.37, 1.58]
CHAPTER_SOFTMAX = [0.2296, 0.7704]
CHAPTER_CE_TABLE = {(0.1, 0.9): (0.1053, 0.1), (0.7, 0.3): (2.3025, 0.7)}  # prediction -> printed (CE, L1)
CHAPTER_ACCURACY = "98.65785217285156"  # the chapter's "Accuracy of Test Data"


# ---------------------------------------------------------------- probabilities and losses


def explain_softmax(args: Options, ex: Explanation) -> None:
    z = np.array([parse_number(v) for v in args.values] if args.values else CHAPTER_LOGITS)
    shifted = z - z.max()
    e = np.exp(shifted)
    ex.result = C.softmax(z).tolist()
    ex.say(
        _("scores z = {z}", z=vec(z, 4)),
        _(
            "z - max(z) = {shifted} (max cancels in the fraction; it keeps exp from overflowing)",
            shifted=vec(shifted),
        ),
        _("exp(z - max) = {e}, sum = {sum:.6f}", e=vec(e), sum=e.sum()),
        _("softmax = exp / sum = {p}", p=vec(ex.result)),
        _("rounded to 4 decimals: {p}", p=vec(ex.result, 4)),
    )
    if not args.values:
        lo, hi = C.softmax(np.array([0.375, 1.575]))[0], C.softmax(np.array([0.365, 1.585]))[0]
        gap = math.log(CHAPTER_SOFTMAX[1] / CHAPTER_SOFTMAX[0])
        note = _(
            (
                "chapter: {chapter}, 1 off in the 4th decimal: rounding, not another formula. Neither\n"
                "  rounding nor cutting 0.229701 gives 0.2296, but the logits are themselves printed rounded:\n"
                "  logits that round to 0.37 and 1.58 give softmax[0] anywhere from {hi:.4f} to {lo:.4f};\n"
                "  a gap z1 - z0 = ln(0.7704/0.2296) = {gap:.4f}, e.g. logits [0.37, {z1:.4f}],\n"
                "  gives exactly the chapter's [0.2296, 0.7704]."
            ),
            chapter=CHAPTER_SOFTMAX,
            hi=hi,
            lo=lo,
            gap=gap,
            z1=0.37 + gap,
        )
        ex.say(*note.splitlines())
        ex.extra["chapter"] = CHAPTER_SOFTMAX


def check_distribution(v: np.ndarray, what: str) -> None:
    if (v < 0).any() or abs(v.sum() - 1) > 1e-3:
        raise CnnlabError(
            _(
                "{what} {v} must be probabilities >= 0 that sum to 1 (sum {sum:.4f})",
                what=what,
                v=vec(v, 4),
                sum=v.sum(),
            )
        )


def explain_cross_entropy(args: Options, ex: Explanation) -> None:
    p = parse_vector(args.target)
    preds = [parse_vector(t) for t in args.pred] if args.pred else [np.array(q) for q in CHAPTER_CE_TABLE]
    check_distribution(p, _("target"))
    rows = []
    for q in preds:
        if q.shape != p.shape:
            raise CnnlabError(
                _("prediction {q} has {n} values but the target has {m}", q=vec(q, 4), n=q.size, m=p.size)
            )
        check_distribution(q, _("prediction"))
        if ((q == 0) & (p > 0)).any():
            raise CnnlabError(
                _("prediction {q} gives 0 to an outcome of the target: the loss is infinite", q=vec(q, 4))
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
        _("target p = {p}, prediction q = {q}", p=vec(p, 2), q=vec(q, 2)),
        _("  cross entropy H(p,q) = -sum p ln q = -({logs}) = {ce:.4f}", logs=logs, ce=ce),
        _("  L1 = mean |q - p| = ({diffs}) / {n} = {l1:.4f}", diffs=diffs, n=p.size, l1=l1),
        _(
            "  H(p) = {h:.4f}, KL(p||q) = {kl:.4f}, H(p) + KL = {sum:.4f} = H(p,q) (gap {gap:.0e})",
            h=h,
            kl=kl,
            sum=h + kl,
            gap=abs(h + kl - ce),
        ),
    )
    return dict(
        target=p.tolist(), prediction=q.tolist(), cross_entropy=ce, l1=l1, entropy=h, kl_divergence=kl
    )


def chapter_table_note(ex: Explanation, rows: list[dict]) -> None:
    """Compare with the chapter's printed table and name the input its 2.3025 really belongs to."""
    ex.say(_("the chapter's table (cross entropy, L1):"))
    ex.extra["discrepancies"] = []
    for row, (q, (ce_printed, l1_printed)) in zip(rows, CHAPTER_CE_TABLE.items()):
        agrees = abs(row["cross_entropy"] - ce_printed) < 1e-3
        verdict = _("agrees (the chapter cuts, not rounds, to 4 decimals)") if agrees else _("DISCREPANCY")
        exact = f"{row['cross_entropy']:.6f}, {row['l1']:.4f}"
        ex.say(
            _(
                "  {q}: printed {ce}, {l1}; exact {exact} -> {verdict}",
                q=list(q),
                ce=ce_printed,
                l1=l1_printed,
                exact=exact,
                verdict=verdict,
            )
        )
        if agrees:
            continue
        true_prob = round(math.exp(-ce_printed), 4)  # the probability on the true class giving that loss
        culprit = [round(1 - true_prob, 4), true_prob]
        why = _(
            (
                "  {printed} = -ln {true_prob} = {loss:.6f} cut to 4 decimals:\n"
                "  the loss of prediction {culprit}, not of {q} (-ln {q1} = {exact:.4f}).\n"
                "  The L1 cell {l1} does belong to {q} ({culprit} would give L1 {culprit_l1:.1f}), so only the cross-entropy cell is wrong."
            ),
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
    ex.say(
        _("the chapter's point stands: a confident wrong answer costs far more in cross entropy than in L1.")
    )


# ---------------------------------------------------------------- the chapter's evaluation


def explain_eval_drop(args: Options, ex: Explanation) -> None:
    n, batch = (int(parse_number(v)) for v in values_or(args, 2, ["10000", "256"], "TEST_SIZE BATCH_SIZE"))
    if n < 1 or batch < 1:
        raise CnnlabError(
            _("test size and batch size must be positive, got {n} and {batch}", n=n, batch=batch)
        )
    counted, ex.result = n // batch * batch, n % batch
    ex.say(
        *_(
            (
                "DataLoader(batch_size={batch}, drop_last=True) over {n:,} test images:\n"
                "  {n} // {batch} = {full} full batches = {counted:,} images counted\n"
                "  {n} mod {batch} = {rest} images of the last, partial batch are silently dropped"
            ),
            n=n,
            batch=batch,
            full=n // batch,
            counted=counted,
            rest=ex.result,
        ).splitlines()
    )
    if not args.values:
        chapter_accuracy_note(ex, n, counted)
    ex.say(
        *_(
            "cnnlab evaluates with drop_last=False and flatten(1), so every test image counts; the chapter\n"
            "needed drop_last because out.view(batch_size, -1) breaks on a smaller last batch."
        ).splitlines()
    )


def chapter_accuracy_note(ex: Explanation, n: int, counted: int) -> None:
    """Show from the printed float32 accuracy alone that the denominator was 9984, not 10000."""
    printed = torch.tensor(float(CHAPTER_ACCURACY))

    def hits(total: int) -> list[int]:  # correct counts c whose float32 100 * c / total equals the print
        correct = torch.arange(total + 1, dtype=torch.float32)
        return (100 * correct / total == printed).nonzero().flatten().tolist()

    over_counted, over_all = hits(counted), hits(n)
    c, missing = over_counted[0], n - counted
    note = _(
        (
            "the chapter prints Accuracy {printed}; in float32 that is 100 * c / {counted}\n"
            "  for c in {over_counted}, and 100 * c / {n} for no c at all ({over_all}):\n"
            "  only {counted:,} images were counted, {c:,} of them right.\n"
            "  Over all {n:,} the accuracy lies between {lo:.2f}% and {hi:.2f}%.\n"
            "(the train loader drops 60000 mod 256 = 96 images per epoch too, but reshuffles: different ones)"
        ),
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
