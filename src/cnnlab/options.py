"""Option values checked before any work starts: typed rules (type, range, allowed names) that report
every problem at once, one line each, and "did you mean ...?" for misspelt names.

`TrainConfig` uses these rules for its fields (`cnnlab.training.validate`); `COMMAND_RULES` holds the
options of the other commands, checked by the CLI before a command runs (`check_command`). Messages are
in the current language (cnnlab.i18n), the kind of name ("model", `Rule.what`) included.
"""

import difflib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cnnlab.errors import CnnlabError
from cnnlab.i18n import N_, _

BIG = 2**31 - 1  # counts above this are typos (and overflow PyTorch's int32 paths)


def did_you_mean(word: object, names: Iterable[str]) -> str | None:
    """The closest of `names` to `word` ignoring case (difflib ratio >= 0.7: "resnt18" -> "resnet18",
    but no far-fetched "alexnet" -> "googlenet"), or None."""
    by_lower = {str(n).lower(): str(n) for n in names}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[close[0]] if close else None


def unknown(what: str, value: object, names: Sequence[str], flag: str | None = None) -> str:
    """ "unknown model 'resnt18'; did you mean resnet18? choose from: ..." (prefixed with the flag)."""
    guess = did_you_mean(value, names)
    head = f"{flag}: " if flag else ""
    fields = dict(what=_(what), value=repr(value), names=", ".join(map(str, names)))
    if guess:
        return head + _(
            "unknown {what} {value}; did you mean {guess}? choose from: {names}", guess=guess, **fields
        )
    return head + _("unknown {what} {value}; choose from: {names}", **fields)


def unknown_error(what: str, value: object, names: Sequence[str], flag: str | None = None) -> CnnlabError:
    return CnnlabError(unknown(what, value, names, flag))


def show(value: object) -> str:
    """A value as the user would have typed it after the flag."""
    if isinstance(value, (tuple, list)):
        return " ".join(show(v) for v in value) if value else "[]"
    return repr(value) if isinstance(value, str) or value is None else str(value)


@dataclass(frozen=True)
class Rule:
    kind: type  # int, float, bool or str
    low: float | None = None  # smallest allowed value (numbers)
    high: float | None = None  # largest allowed value (numbers)
    low_open: bool = False  # the value must be strictly above `low`
    high_open: bool = False  # the value must be strictly below `high`
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None  # allowed names (or a function)
    what: str = N_("value")  # what a name is, for "unknown model ..." messages (a message: translated)
    optional: bool = False  # None is allowed (= not set)
    size: int = 0  # a list of values, each checked by the rule: > 0 exactly this many, -1 any number
    empty_ok: bool = False  # text: "" is allowed (= not set)

    def names(self) -> list[str]:
        return list(self.choices() if callable(self.choices) else self.choices or [])

    def allowed(self) -> str:
        """What is allowed, in words: "a whole number >= 1", "a number in [0, 1)", ..."""
        if self.kind is bool:
            return _("true or false")
        if self.kind is str:
            if self.choices:
                return _("one of: {names}", names=", ".join(self.names()))
            return _("a non-empty text without NUL bytes")
        whole = self.kind is int
        lo, hi = (
            self.low,
            None if self.high == BIG else self.high,
        )  # BIG only stops overflow: not worth saying
        if lo is not None and hi is not None:
            if whole and not (self.low_open or self.high_open):
                return _("a whole number from {low} to {high}", low=_num(lo), high=_num(hi))
            interval = (
                f"{'(' if self.low_open else '['}{_num(lo)}, {_num(hi)}{')' if self.high_open else ']'}"
            )
            if whole:
                return _("a whole number in {interval}", interval=interval)
            return _("a finite number in {interval}", interval=interval)
        if lo is not None:
            if whole:
                if self.low_open:
                    return _("a whole number > {low}", low=_num(lo))
                return _("a whole number >= {low}", low=_num(lo))
            if self.low_open:
                return _("a finite number > {low}", low=_num(lo))
            return _("a finite number >= {low}", low=_num(lo))
        if hi is not None:
            if whole:
                if self.high_open:
                    return _("a whole number < {high}", high=_num(hi))
                return _("a whole number <= {high}", high=_num(hi))
            if self.high_open:
                return _("a finite number < {high}", high=_num(hi))
            return _("a finite number <= {high}", high=_num(hi))
        return _("a whole number") if whole else _("a finite number")

    def check(self, flag: str, value: object) -> tuple[object, str | None]:
        """(the value normalised, e.g. 1 -> 1.0 for a float, or the problem as one line)."""
        if value is None and self.optional:
            return None, None
        if self.size:
            if not isinstance(value, (list, tuple)) or (self.size > 0 and len(value) != self.size):
                fields = dict(flag=flag, value=show(value), allowed=self.allowed())
                if self.size > 0:
                    return value, _(
                        "{flag} {value}: must be {n} values, each {allowed}", n=self.size, **fields
                    )
                return value, _("{flag} {value}: must be a list, each {allowed}", **fields)
            one = Rule(**{**self.__dict__, "size": 0, "optional": False})
            checked = [one.check(flag, v) for v in value]
            if any(problem for _v, problem in checked):
                return value, _("{flag} {value}: each value must be {allowed}", **self._fields(flag, value))
            values = [v for v, _problem in checked]
            return (tuple(values) if self.size > 0 else values), None  # fixed size (betas): a tuple
        if self.kind is str and self.choices is not None and isinstance(value, str):
            names = self.names()
            return value, (None if value in names else unknown(self.what, value, names, flag))
        value, ok = _typed(self.kind, value)
        if ok and self.kind in (int, float):
            ok = _in_range(self, value)
        if ok and self.kind is str:
            ok = (
                bool(value.strip()) or (self.empty_ok and not value)
            ) and "\0" not in value  # no NUL in a path
        return value, (None if ok else _("{flag} {value}: must be {allowed}", **self._fields(flag, value)))

    def _fields(self, flag: str, value: object) -> dict:
        return dict(flag=flag, value=show(value), allowed=self.allowed())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _typed(kind: type, value: object) -> tuple[object, bool]:
    """(value, True) if it is a `kind` (an int is a fine float; a bool is no number)."""
    if isinstance(value, bool) or kind is bool:
        return value, kind is bool and isinstance(value, bool)
    if kind is float and isinstance(value, int):
        return float(value), True
    return value, isinstance(value, kind)


def _in_range(rule: Rule, x: float) -> bool:
    if isinstance(x, float) and not math.isfinite(x):
        return False
    if rule.low is not None and (x < rule.low or (rule.low_open and x == rule.low)):
        return False
    return rule.high is None or not (x > rule.high or (rule.high_open and x == rule.high))


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def problems(rules: dict[str, Rule], values: dict) -> tuple[dict, dict[str, str]]:
    """Check every value that has a rule; (normalised values, {name: the problem in one line})."""
    fixed, found = dict(values), {}
    for name, rule in rules.items():
        if name in values:
            fixed[name], problem = rule.check(flag_of(name), values[name])
            if problem:
                found[name] = problem
    return fixed, found


def raise_problems(found: Iterable[str]) -> None:
    """One CnnlabError (exit 2) with one line per problem, if there are any."""
    lines = list(found)
    if lines:
        raise CnnlabError("\n".join(lines), exit_code=2)


# Options of the commands other than `train` (whose options are TrainConfig's fields), by argparse dest.
# A dest a command does not have is skipped, so the table may name options other lanes add.
COMMAND_RULES: dict[str, dict[str, Rule]] = {
    "train": {"nproc": Rule(int, 1, 1024)},
    "predict": {"top": Rule(int, 1, BIG)},
    "eval": {"batch_size": Rule(int, 1, BIG)},
    "plot": {"index": Rule(int, 0, BIG), "max_channels": Rule(int, 1, 4096)},
    "serve": {
        "port": Rule(int, 0, 65535),
        "max_upload_mb": Rule(float, 0, 1024, low_open=True),
        "torch_threads": Rule(int, 1, 1024),
        "request_timeout": Rule(float, 0, 86400, low_open=True),
    },
    "export": {"opset": Rule(int, 7, 100, optional=True), "tolerance": Rule(float, 0)},
    "bench": {
        "batch_size": Rule(int, 1, 65536),
        "classes": Rule(int, 1, 1_000_000),
        "warmup": Rule(int, 0, 10_000),
        "repeats": Rule(int, 1, 10_000),
        "threads": Rule(int, 0, 1024),
    },
    "summary": {"width": Rule(float, 0, 64, low_open=True)},
    "models": {"width": Rule(float, 0, 64, low_open=True)},
    "explain": {
        "stride": Rule(int, 1, 1024, optional=True),
        "padding": Rule(int, 0, 1024),
        "size": Rule(int, 1, 1024),
        "bias": Rule(float),
    },
}


def check_command(command: str, args) -> None:
    """Check the parsed options of `command` against COMMAND_RULES; CnnlabError (exit 2) with all problems."""
    values = {k: v for k, v in vars(args).items() if k in COMMAND_RULES.get(command, {})}
    _fixed, found = problems(
        COMMAND_RULES.get(command, {}), {k: v for k, v in values.items() if v is not None}
    )
    raise_problems(found.values())
