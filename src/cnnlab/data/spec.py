"""One description of the data: what every command needs to know about a run's images, worked out once.

`DataSpec` is decided when a run starts (from the dataset or folder, its `cnnlab.json` and the flags),
printed at the start of training, saved in every checkpoint, and read back by every command that takes a
run (eval, predict, serve, export, summary, plot, Grad-CAM, transfer, the page): class names in order,
channels, image size, how a new image is read (and why), mean/std, orientation sensitivity. No command
works any of these out again on its own.

How images are read (`preprocess`):

- "digit": handwriting (digits, characters), LeCun et al.'s recipe for MNIST: greyscale, light ink on a
  dark background (dark-on-light paper is inverted), cropped to the ink, scaled into a 20/28 box and
  centred by its centre of mass. Flips are refused (a mirrored 7 is no 7) and the page offers a
  drawing pad. Folder images are decoded this way too, so training and prediction see the same thing.
- "photo": a folder of photos: shorter side resized to the input size, centre crop (Keras, fastai, timm).
- "fit": the built-in Fashion-MNIST and CIFAR-10: fitted and centred on black (how they were made).

A folder is read as digits when its class names are digits in the usual spellings ("0".."9",
"zero".."nine", "영".."구") and its images are grey, or when its images look like handwriting (grey,
plain background, thin strokes); `--preprocess` and ROOT/cnnlab.json override. The decision and its
reason are part of the description (`why`), and the training log says them.
"""

import re
import string
from dataclasses import asdict, dataclass, field

from cnnlab.data.records import handwriting
from cnnlab.i18n import N_, _

PREPROCESS = ("digit", "photo", "fit")
CHOICES = ("auto", "digit", "photo")  # what --preprocess and cnnlab.json may say
DIGIT_LOOK_SHARE = 0.85  # a folder looks like handwriting when this share of its images does

_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "영": 0, "공": 0, "일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9,
}  # fmt: skip
# "7", "seven", "Seven", "digit_7", "digit 7", "class-7", "7_seven", "07"
_PREFIXED = re.compile(r"^(?:digit|num|number|class|label)?[\s_-]*0*(\d)$")
_PAIR = re.compile(r"^0*(\d)[\s_-]+([a-z가-힣]+)$")

# The reasons `why` holds (English in checkpoints, like every saved field; `why_text` says them in the
# current language). The last two are cnnlab.data.records' reasons for the built-in datasets.
WHY = (
    N_("--preprocess {value}"),
    N_("cnnlab.json says preprocess {value}"),
    N_("the class names are digits ({span}) and the images are grey"),
    N_("the images look like handwriting (grey, plain background, thin strokes: {share})"),
    N_("the class names are digits but the images are in colour (like house-number photos)"),
    N_("the images do not look like handwriting"),
    N_("as the checkpoint says"),
    N_("{name} is handwriting"),
    N_("{name}'s images were made fitted and centred"),
)
HOW = {
    "digit": N_("read as handwriting (ink centred like MNIST, flips refused)"),
    "photo": N_("read as photos (shorter side resized, centre crop)"),
    "fit": N_("fitted and centred"),
}


def translated(text: str, templates) -> str:
    """`text`, made in English from one of `templates` (str.format, named fields, no format specs), in the
    current language: the template is recognised, its field values taken from `text` and put into the
    template's translation; `text` as it is when no template makes it."""
    for template in templates:
        names, pattern = [], ""
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            pattern += re.escape(literal)
            if name is not None:
                pattern += f"(?P<{name}>.+?)" if name not in names else f"(?P={name})"
                names.append(name)
        if m := re.fullmatch(pattern, text, re.S):
            return _(template, **m.groupdict())
    return text


def why_text(why: str) -> str:
    """A reading's reason (`Reading.why`, `DataSpec.why`: English as saved) in the current language."""
    return translated(why, WHY)


def digit_value(name: str) -> int | None:
    """The digit a class name stands for ("7", "seven", "Seven", "digit_7", "7_seven", "칠"), else None."""
    text = str(name).strip().lower()
    if text in _WORDS:
        return _WORDS[text]
    if m := _PREFIXED.match(text):
        return int(m.group(1))
    if (m := _PAIR.match(text)) and _WORDS.get(m.group(2)) == int(m.group(1)):
        return int(m.group(1))
    return None


def digit_classes(classes) -> bool:
    """Every class name is a digit (in any of the usual spellings), no digit twice, at least two."""
    values = [digit_value(c) for c in classes]
    return len(values) >= 2 and None not in values and len(set(values)) == len(values)


def same_class(a: str, b: str) -> bool:
    """Two class names for the same class: equal ignoring case and spaces, or the same digit."""
    da, db = digit_value(a), digit_value(b)
    if da is not None or db is not None:
        return da == db
    return str(a).strip().lower() == str(b).strip().lower()


@dataclass(frozen=True)
class Reading:
    """How a folder's images are read, and why (one line a person can check)."""

    preprocess: str  # "digit" | "photo"
    why: str  # the reason, e.g. "the class names are digits (zero..nine) and the images are grey"
    orientation_sensitive: bool  # flips refused


def decide(
    classes, grey_share: float, digit_look_share: float, asked: str = "auto", marker: dict | None = None
) -> Reading:
    """Digit or photo for a folder: `asked` (--preprocess) first, then ROOT/cnnlab.json, then the class
    names (digits, and images grey), then the look of the images (`digit_look_share` of them handwriting)."""
    marker = marker or {}
    orient = marker.get("orientation_sensitive")
    if asked in ("digit", "photo"):
        kind, why = asked, WHY[0].format(value=asked)
    elif marker.get("preprocess", "auto") in ("digit", "photo"):
        kind, why = marker["preprocess"], WHY[1].format(value=repr(marker["preprocess"]))
    elif digit_classes(classes) and grey_share >= DIGIT_LOOK_SHARE:
        kind, why = "digit", WHY[2].format(span=_span(classes))
    elif digit_look_share >= DIGIT_LOOK_SHARE:
        kind, why = "digit", WHY[3].format(share=f"{digit_look_share:.0%}")
    elif digit_classes(classes):
        kind = "photo"
        why = WHY[4]
    else:
        kind, why = "photo", WHY[5]
    if orient is None:
        orient = kind == "digit"
    return Reading(kind, why, bool(orient))


def _span(classes) -> str:
    return f"{classes[0]}..{classes[-1]}" if len(classes) > 2 else ", ".join(classes)


@dataclass(frozen=True)
class DataSpec:
    """What a model's input is (see the module docstring); saved in checkpoints under "data"."""

    dataset: str  # registry name ("mnist", ...) or "folder"
    classes: tuple[str, ...]  # class names, index = label
    channels: int  # 1 (grey) or 3 (RGB)
    size: int  # the model sees size x size images
    preprocess: str  # "digit" | "photo" | "fit": how a new image is read
    why: str  # why it is read that way
    mean: tuple[float, ...]  # per-channel mean on the 0..1 scale (normalisation)
    std: tuple[float, ...]  # per-channel standard deviation
    orientation_sensitive: bool = False  # mirrored images are other classes: flips refused
    resize: int = 0  # weights with their own eval transform: shorter side to this, then the centre crop
    folder: dict | None = field(default=None, compare=False)  # folder runs: root, options, split file

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def describe(self) -> str:
        """One line for the training log: the classes, the input, how images are read and why."""
        names = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
        return _(
            "data: {n} classes ({names}); {c}x{size}x{size} {colour}; {how}, because {why}; mean {mean}, std {std}",
            n=len(self.classes),
            names=names,
            c=self.channels,
            size=self.size,
            colour=_("grey") if self.channels == 1 else "RGB",
            how=_(HOW[self.preprocess]),
            why=why_text(self.why),
            mean="/".join(f"{m:.3f}" for m in self.mean),
            std="/".join(f"{s:.3f}" for s in self.std),
        )

    def to_meta(self) -> dict:
        """The checkpoint fields: the whole description under "data", and the fields older cnnlab read."""
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d.pop("folder")
        meta = {
            "data": d,
            "dataset": self.dataset,
            "classes": list(self.classes),
            "mean": list(self.mean),
            "std": list(self.std),
            "input_shape": list(self.shape),
            "preprocess": self.preprocess,
            "orientation_sensitive": self.orientation_sensitive,
        }
        if self.resize:
            meta["resize"] = self.resize
        return meta

    @classmethod
    def from_meta(cls, meta: dict) -> "DataSpec":
        """The description a checkpoint's (validated) metadata holds; checkpoints from before "data"
        existed are read the way cnnlab read them then."""
        c, h, _w = meta["input_shape"]
        reading = reading_of(meta)
        return cls(
            dataset=meta["dataset"],
            classes=tuple(meta["classes"]),
            channels=c,
            size=h,
            preprocess=reading.preprocess,
            why=reading.why,
            mean=tuple(meta["mean"]),
            std=tuple(meta["std"]),
            orientation_sensitive=reading.orientation_sensitive,
            resize=int(meta.get("resize") or 0),
            folder=meta.get("folder"),
        )


def reading_of(meta: dict) -> Reading:
    """How a checkpoint's images were read; checkpoints from before "data" existed are read the way
    cnnlab read them then."""
    c = meta["input_shape"][0]
    saved = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    folder = meta.get("folder") if isinstance(meta.get("folder"), dict) else {}
    options = folder.get("options") if isinstance(folder.get("options"), dict) else {}
    kind = meta.get("preprocess") or saved.get("preprocess") or options.get("preprocess")
    if kind not in PREPROCESS:  # the oldest checkpoints: digits by dataset name, folders photos, else fitted
        digits = handwriting(meta.get("dataset"))
        kind = "digit" if digits else "photo" if folder else "fit"
    if kind == "photo" and "folder" not in meta:
        kind = "fit"  # before "fit" had its name, built-in Fashion-MNIST/CIFAR-10 said "photo"
    if kind == "digit" and c != 1:
        kind = "photo" if "folder" in meta else "fit"
    orient = bool(meta.get("orientation_sensitive", kind == "digit"))
    return Reading(kind, str(saved.get("why", WHY[6])), orient)
