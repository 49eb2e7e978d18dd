"""Worked explanations as data: the `Options` a topic reads, the `Explanation` record it fills, and
parsing/printing of the user's numbers.

Matrices are written row by row: rows separated by ";", values by "," or spaces, e.g. "1,2,3;4,5,6".
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _, _n


@dataclass
class Options:
    """What a topic reads: its values and the options of `cnnlab explain` (the command's flags take their
    defaults from here; `explain(topic, *values, **options)` takes them by name)."""

    topic: str = ""  # the topic being explained (for messages)
    values: list[str] = field(default_factory=list)  # the topic's inputs: numbers, matrices or a model name
    stride: int | None = None  # step of the filter/window (None: 1; pool: --size)
    padding: int = 0  # zero padding for conv/output-size
    bias: float = 0.0  # bias added to every conv output cell
    size: int = 2  # pool window size
    model: str | None = None  # registered model for output-size (size walk) or parameters
    input: str = "1x28x28"  # input shape CxHxW for --model
    layer: str | None = None  # parameters: only this conv layer
    target: str = "0,1"  # cross-entropy target distribution
    pred: list[str] | None = None  # cross-entropy predictions


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
        raise CnnlabError(_("{text} is not a number", text=repr(text))) from None
    if not math.isfinite(value):
        raise CnnlabError(_("{text} is not a finite number", text=repr(text)))
    return value


def parse_vector(text: str) -> np.ndarray:
    """Numbers separated by commas or spaces, e.g. "0.1,0.9", as a 1-D array."""
    items = [t for t in re.split(r"[,\s]+", text) if t]
    if not items:
        raise CnnlabError(_("expected numbers, got {text}", text=repr(text)))
    return np.array([parse_number(t) for t in items])


def parse_matrix(text: str) -> np.ndarray:
    """Rows separated by ';', e.g. "1,2;3,4", as a 2-D array; every row must have the same length."""
    rows = [parse_vector(r) for r in text.split(";") if r.strip()]
    if not rows:
        raise CnnlabError(
            _('empty matrix {text}; write rows separated by ";", e.g. "1,2;3,4"', text=repr(text))
        )
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise CnnlabError(
                _(
                    "matrix {text} is ragged: row 1 has {first} values, row {i} has {n}",
                    text=repr(text),
                    first=len(rows[0]),
                    i=i,
                    n=len(row),
                )
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


def values_or(args: Options, count: int, defaults: list[str], usage: str) -> list[str]:
    """The topic's positional values, or the chapter's defaults when none were given."""
    values = args.values or defaults
    if len(values) != count:
        raise CnnlabError(
            _n(
                "{topic} takes {usage} (got {n} value: {values})",
                "{topic} takes {usage} (got {n} values: {values})",
                len(values),
                topic=args.topic,
                usage=usage,
                values=" ".join(values),
            )
        )
    return values


def stride_of(args: Options, default: int) -> int:
    return default if args.stride is None else args.stride
