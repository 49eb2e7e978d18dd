"""Batched augmentation on tensors: whole batches at once, seeded by the generator the caller passes.

A spec is a comma-separated list of ``key[=value]`` terms, applied in this order:

- ``translate=R`` (alias ``crop=R``): pad by R pixels (reflect) and take a random crop of the original size,
  i.e. shift every image by its own (dy, dx) in [-R, R]^2. airbench's ``batch_crop``, done here with two
  ``gather`` calls instead of a loop over shifts.
- ``resized-crop=S`` (alias ``rrc=S``): Inception-style random resized crop on the whole batch: each image
  gets its own crop of S..100% of its area with aspect ratio 3/4..4/3, resized back to the input size
  (bilinear), all in one ``affine_grid`` + ``grid_sample`` call. For photos; S is typically 0.35-0.5.
- ``flip`` or ``flip=P``: mirror each image left-right with probability P (default 0.5). Refused for digit
  and character datasets (a mirrored 2 or 7 is not a 2 or 7): those whose record says ``handwriting``
  (``cnnlab.data.records``), and any dataset marked orientation-sensitive.
- ``erase=P``: random erasing (Zhong et al. 2017, "Random Erasing Data Augmentation") with probability P per
  image: a rectangle of 2%-33% of the area, aspect ratio 0.3-3.3, set to 0 (the mean after normalisation,
  torchvision's RandomErasing default).
- ``none``: nothing.

Labels are never touched: every function maps image i to image i, so ``y`` stays valid. All randomness is
drawn from the passed ``torch.Generator`` (train.py derives it from seed, step and rank), so a run is
reproducible and a resumed run sees the same augmentations.
"""

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from cnnlab.data.records import handwriting
from cnnlab.errors import CnnlabError
from cnnlab.i18n import _

_KEYS = ("translate", "crop", "resized-crop", "rrc", "flip", "erase")
_RRC_RATIO = (3 / 4, 4 / 3)  # torchvision RandomResizedCrop defaults
_ERASE_AREA = (0.02, 1 / 3)  # torchvision RandomErasing defaults
_ERASE_RATIO = (0.3, 3.3)


@lru_cache(maxsize=64)
def parse_spec(spec: str) -> dict[str, float]:
    """'translate=2,erase=0.25' -> {'translate': 2, 'erase': 0.25}; CnnlabError on anything else."""
    spec = (spec or "none").strip().lower()
    if spec == "none":
        return {}
    out: dict[str, float] = {}
    for term in (t.strip() for t in spec.split(",")):
        key, _eq, value = term.partition("=")
        key = key.strip()
        if key not in _KEYS:
            raise CnnlabError(
                _(
                    "--augment: unknown term {term}; use {keys} or none",
                    term=repr(term),
                    keys=", ".join(_KEYS),
                )
            )
        key = {"crop": "translate", "rrc": "resized-crop"}.get(key, key)
        if key in out:
            raise CnnlabError(_("--augment: {key} given twice in {spec}", key=repr(key), spec=repr(spec)))
        out[key] = _value(key, value.strip(), term)
    return out


def _value(key: str, text: str, term: str) -> float:
    if key == "flip" and not text:
        return 0.5
    try:
        v = float(text)
    except ValueError:
        raise CnnlabError(
            _("--augment: {term} needs a number, e.g. translate=2, flip=0.5, erase=0.25", term=repr(term))
        ) from None
    if key == "translate":
        if not 0 <= v <= 8 or v != int(v):  # the range first: int(nan) and int(inf) raise
            raise CnnlabError(
                _("--augment: translate must be a whole number of pixels 0..8, got {value}", value=text)
            )
        return int(v)
    if key == "resized-crop" and not 0.05 <= v <= 1:
        raise CnnlabError(
            _("--augment: resized-crop is the smallest area kept, in [0.05, 1], got {value}", value=text)
        )
    if not 0 <= v <= 1:
        raise CnnlabError(_("--augment: {key} is a probability in [0, 1], got {value}", key=key, value=text))
    return v


def check_spec(spec: str, dataset: str | None = None, orientation_sensitive: bool = False) -> None:
    """Validate a spec before training starts; flipping a digit/character dataset (or one marked
    orientation-sensitive) is refused."""
    terms = parse_spec(spec)
    if terms.get("flip") and (handwriting(dataset) or orientation_sensitive):
        raise CnnlabError(
            _(
                "--augment flip makes no sense for {dataset}: a mirrored digit or character is not one",
                dataset=dataset,
            )  # fmt: skip
        )


def augment_batch(x: torch.Tensor, spec: str, generator: torch.Generator) -> torch.Tensor:
    """Augment a normalised float batch N x C x H x W per `spec`; same shape, dtype, memory format, order."""
    terms = parse_spec(spec)
    if not terms:
        return x
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1
    if terms.get("resized-crop"):
        x = random_resized_crop(x, terms["resized-crop"], generator)
    if terms.get("translate"):
        x = random_translate(x, int(terms["translate"]), generator)
    if terms.get("flip"):
        x = random_flip(x, terms["flip"], generator)
    if terms.get("erase"):
        x = random_erase(x, terms["erase"], generator)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def random_translate(x: torch.Tensor, r: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own (dy, dx) in [-r, r]^2; the border is filled by reflection (airbench)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (r, r, r, r), mode="reflect" if r < min(h, w) else "replicate")
    shifts = torch.randint(0, 2 * r + 1, (n, 2), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device) + shifts[:, :1]).view(n, 1, h, 1).expand(n, c, h, w + 2 * r)
    cols = (torch.arange(w, device=x.device) + shifts[:, 1:]).view(n, 1, 1, w).expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def crop_boxes(n: int, min_area: float, generator: torch.Generator, device) -> torch.Tensor:
    """n x 4 (cy, cx, h, w) in units of the image (0..1): area fraction uniform in [min_area, 1], aspect
    ratio log-uniform in 3/4..4/3 (torchvision's RandomResizedCrop), clipped to the image, placed anywhere."""
    u = torch.rand(n, 4, generator=generator, device=device)
    area = min_area + u[:, 0] * (1 - min_area)
    lo, hi = math.log(_RRC_RATIO[0]), math.log(_RRC_RATIO[1])
    ratio = torch.exp(lo + u[:, 1] * (hi - lo))
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    cy = h / 2 + u[:, 2] * (1 - h)
    cx = w / 2 + u[:, 3] * (1 - w)
    return torch.stack([cy, cx, h, w], 1)


def random_resized_crop(x: torch.Tensor, min_area: float, generator: torch.Generator) -> torch.Tensor:
    """Each image: its own random crop (see crop_boxes), resized back to H x W, in one grid_sample."""
    n = len(x)
    cy, cx, h, w = crop_boxes(n, min_area, generator, x.device).to(x.dtype).unbind(1)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = w, 2 * cx - 1  # output x in [-1, 1] -> input x in the crop
    theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_flip(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability p (airbench's batch_flip_lr)."""
    mask = torch.rand(len(x), generator=generator, device=x.device) < p
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


def random_erase(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero one random rectangle in each selected image, all images at once via broadcast row/col masks."""
    n, _c, h, w = x.shape
    u = torch.rand(n, 5, generator=generator, device=x.device)
    area = h * w * (_ERASE_AREA[0] + u[:, 0] * (_ERASE_AREA[1] - _ERASE_AREA[0]))
    lo, hi = math.log(_ERASE_RATIO[0]), math.log(_ERASE_RATIO[1])
    ratio = torch.exp(lo + u[:, 1] * (hi - lo))  # log-uniform aspect ratio, as torchvision draws it
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    top = (u[:, 2] * (h - eh + 1)).floor()
    left = (u[:, 3] * (w - ew + 1)).floor()
    chosen = u[:, 4] < p
    ys = torch.arange(h, device=x.device).view(1, h)
    xs = torch.arange(w, device=x.device).view(1, w)
    in_rows = (ys >= top[:, None]) & (ys < (top + eh)[:, None]) & chosen[:, None]
    in_cols = (xs >= left[:, None]) & (xs < (left + ew)[:, None])
    mask = in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w)
    return x.masked_fill(mask, 0.0)
