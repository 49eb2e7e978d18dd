"""Image files -> uint8 arrays, the same way for training (folder datasets) and for `predict`/`serve`.

One function, `to_array`, makes every picture look alike to the network: EXIF orientation applied
(phone photos are stored sideways with a rotation tag); transparency composited on white paper;
palette, CMYK, 16-bit and 1-bit images converted with their real values (16-bit greys scaled by
1/257, not clipped); then greyscale or RGB; then the shorter side resized to `size` and the centre
cropped to size x size (what Keras, fastai and timm do for evaluation). JPEGs are decoded at a
reduced scale first when they are much larger than needed (libjpeg's DCT scaling, `Image.draft`),
which is several times faster for phone photos.

Handwriting (`digit=True`, see `cnnlab.data.spec`) is read with MNIST's own recipe instead (`digit_array`):
light ink on dark, cropped to the ink, scaled into a 20/28 box, centred by its centre of mass; the same
function prepares a drawing or photo of a digit for `predict` and `serve`, so training and prediction
see one thing.

Only regular files are opened (`open_regular`): a FIFO named `x.png` would block a plain open forever and a
device would never end; they fail like any unreadable file, and are skipped and listed.

`inspect` opens one file fully (a truncated or corrupt file fails here, not in epoch 3) and tells
whether it is greyscale, how big it is and whether it looks like handwriting. All of it runs in worker
processes: no torch here.
"""

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.i18n import N_, _

MAX_PIXELS = 40_000_000  # refuse decompression bombs (a tiny file that unpacks to gigabytes)
EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)  # fmt: skip
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})
# reasons kept in English in the inspect pass's cache and translated where they are shown (`reason(why)`)
NOT_REGULAR = N_("not a regular file (a FIFO, socket or device)")
A_FOLDER = N_("a folder, not a file")
NO_FILE = N_("no such file")
CANNOT_OPEN = N_("cannot open ({reason})")
TOO_LARGE = N_("too large (over {limit} pixels)")
TOO_LARGE_SIZE = N_("too large ({width}x{height}, over {limit} pixels)")
NOT_IMAGE = N_("not a readable image ({detail})")
BLANK = N_("blank: no ink found")
MISSING = N_("missing (it was there in training)")
REASONS = (NOT_REGULAR, A_FOLDER, NO_FILE, CANNOT_OPEN, TOO_LARGE, TOO_LARGE_SIZE, NOT_IMAGE, BLANK, MISSING)


class BadImage(Exception):
    """A file that is not a usable image; the message says why (one line), in the current language, and
    `english` keeps the English for what is stored (the inspect pass's cache, content keys)."""

    def __init__(self, msgid: str, **fields):
        self.english = msgid.format(**fields) if fields else msgid
        super().__init__(_(msgid, **fields))


def reason(why: str) -> str:
    """A reason kept in English (one of REASONS, its fields filled in) in the current language."""
    import re

    for msgid in REASONS:
        if "{" not in msgid:
            if why == msgid:
                return _(msgid)
            continue
        pattern = "".join(
            f"(?P<{part[1:-1]}>.*)" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{\w+\})", msgid)
        )
        found = re.fullmatch(pattern, why)
        if found:
            return _(msgid, **found.groupdict())
    return _(why)


@dataclass(frozen=True)
class Info:
    grey: bool  # every pixel has R == G == B (or the file is a greyscale format)
    short: int  # shorter side in pixels, after EXIF rotation
    near_grey: bool = True  # hardly any colour (a phone photo of ink on paper): may be read as grey
    digit_look: bool = False  # looks like handwriting: plain background, thin strokes (see `digit_look`)


def is_image_name(name: str) -> bool:
    """An image file name we read: a known extension, and not hidden (`.DS_Store`, AppleDouble `._x.jpg`)."""
    dot = name.rfind(".")
    return not name.startswith(".") and dot > 0 and name[dot:].lower() in EXTENSIONS


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading when it is a regular file (after links); else BadImage saying why.

    Opened with O_NONBLOCK and checked with fstat on the open descriptor: a FIFO's plain open waits for a
    writer forever, a device never ends, and a file swapped for one between a check and the open is
    caught all the same. A looping link fails here too ("Too many levels of symbolic links")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BadImage(NO_FILE) from None
    except OSError as e:
        raise BadImage(CANNOT_OPEN, reason=e.strerror or str(e)) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise BadImage(CANNOT_OPEN, reason=e.strerror or str(e)) from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise BadImage(A_FOLDER if stat.S_ISDIR(mode) else NOT_REGULAR)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def open_file(path: str | Path, size: int = 0) -> Image.Image:
    """Open and fully decode one image, EXIF rotation applied; `size` > 0 lets a large JPEG decode at a
    reduced scale that still leaves its shorter side >= size. Raises BadImage."""
    with open_regular(path) as f:
        return _open(f, size)


def _open(f: BinaryIO, size: int) -> Image.Image:
    try:
        with warnings.catch_warnings():  # Pillow's warnings (odd EXIF, palette transparency) are noise here
            warnings.simplefilter("ignore")
            img = Image.open(f)
            if img.width * img.height > MAX_PIXELS:
                raise BadImage(TOO_LARGE_SIZE, width=img.width, height=img.height, limit=f"{MAX_PIXELS:,}")
            if size and img.format == "JPEG" and img.mode in ("RGB", "L"):
                img.draft(img.mode, (size, size))
            img.load()
            # the orientation tag lives in EXIF data (JPEG, PNG eXIf, WebP) or TIFF tags; looking for it
            # in files that have neither costs ~15% of a small PNG's decode
            if "exif" in img.info or img.format in ("TIFF", "MPO"):
                img = ImageOps.exif_transpose(img)
            return img
    except BadImage:
        raise
    except FileNotFoundError:
        raise BadImage(NO_FILE) from None
    except Image.DecompressionBombError:
        raise BadImage(TOO_LARGE, limit=f"{MAX_PIXELS:,}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        detail = str(e).splitlines()[0][:80] if str(e) else ""
        raise BadImage(NOT_IMAGE, detail=type(e).__name__ + (": " + detail if detail else "")) from None


def _high_bit_depth(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float greys -> 8-bit L with their real scale (Pillow's convert clips)."""
    a = np.asarray(img)
    if img.mode == "F":
        a = a * 255.0 if a.size and float(np.nanmax(a)) <= 1.0 else a
    elif img.mode.startswith("I;16") or (a.size and int(a.max()) > 255):
        a = a.astype(np.float64) / 257.0  # 65535 -> 255
    return Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), "L")


def normalise_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode -> "L" (channels 1) or "RGB" (channels 3); alpha composited on white."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ALPHA_MODES:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if img.mode == "I" or img.mode.startswith("I;16") or img.mode == "F":
        img = _high_bit_depth(img)
    return img.convert("L" if channels == 1 else "RGB")


def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Shorter side -> size (antialiased), centre crop to size x size."""
    if img.size == (size, size):
        return img
    return ImageOps.fit(img, (size, size), method=Image.BICUBIC, centering=(0.5, 0.5))


def to_array(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """channels x size x size uint8 for a decoded image (see module docstring)."""
    img = fit_square(normalise_mode(img, channels), size)
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def decode(path: str | Path, size: int, channels: int, digit: bool = False) -> np.ndarray:
    """channels x size x size uint8 for one file; `digit`: MNIST's recipe (one channel)."""
    if digit:
        return digit_array(open_file(path), size)[None]
    return to_array(open_file(path, size), size, channels)


def inspect(path: str | Path) -> Info:
    """Decode once; greyscale by content (an RGB file whose pixels are all grey counts as grey)."""
    img = open_file(path)
    short = min(img.size)
    small = img if max(img.size) <= 64 else _thumbnail(img, 64)  # the look needs no more pixels
    if img.mode in GREY_MODES or img.mode in ("P", "PA") and _grey_palette(img):
        return Info(True, short, True, digit_look(grey_array(small)))
    rgb = np.asarray(normalise_mode(img, 3))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    near = grey or colour_spread(np.asarray(normalise_mode(small, 3))) < NEAR_GREY
    return Info(grey, short, near, near and digit_look(grey_array(small)))


# ---- handwriting: how it looks, and MNIST's recipe ------------------------------------------------------

NEAR_GREY = 25.0  # colour_spread below which a colour file is taken as grey (ink on paper under any light)
INK = 25.0  # the least contrast (0..255) between ink and paper that counts as ink at all


def colour_spread(rgb: np.ndarray) -> float:
    """How colourful an H x W x 3 image is, whatever the light: the channels are first balanced to the
    same mean (grey-world white balance: a phone photo of paper under warm light becomes grey), then the
    95th percentile of max - min over R, G, B per pixel. Measured on 300 MNIST digits each: grey 0,
    dark ink on warm-lit paper (JPEG) at most 14, coloured digits on coloured backgrounds 45 to 560."""
    f = rgb.astype(np.float32).reshape(-1, 3)
    means = f.mean(0)
    f = f * (means.mean() / np.maximum(means, 1.0))
    return float(np.percentile(f.max(1) - f.min(1), 95)) if len(f) else 0.0


def grey_array(img: Image.Image) -> np.ndarray:
    """Greyscale float32 0..255 of any image: transparency on white paper, 16-bit and float greys scaled
    by their bit depth (Pillow's convert("L") clips them, turning a 16-bit scan white)."""
    return np.asarray(normalise_mode(img, 1), dtype=np.float32)


def border_pixels(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def ink_of(grey: np.ndarray) -> np.ndarray:
    """Ink = bright on dark, background flattened to 0. The border's median tells the paper: light paper
    is inverted. The background is what the border shows (the whole image's median would be ink when a
    bold digit covers more than half of it); subtracting it flattens paper texture and JPEG noise."""
    ink = 255.0 - grey if np.median(border_pixels(grey)) > 127 else grey
    return np.clip(ink - np.median(border_pixels(ink)), 0, None)


def digit_look(grey: np.ndarray) -> bool:
    """Does a greyscale image look like handwriting? A plain background (the border varies by under a
    fifth of the ink's contrast), and thin strokes: the stroke width (2 x area / perimeter of the ink)
    under a quarter of the ink's extent, and ink on under 35% of the image. Measured on 2,000 test images
    each: MNIST 99.3% pass (inverted too), Fashion-MNIST 37%, 200-px photos of digits on paper 100%."""
    if min(grey.shape) < 8:
        return False
    bg = np.median(border_pixels(grey))
    contrast = np.abs(grey - bg)
    top = float(contrast.max())
    if top < INK or np.percentile(np.abs(border_pixels(grey) - bg), 90) > 0.2 * top:
        return False
    mask = contrast > 0.5 * top
    area = int(mask.sum())
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    perimeter = max(area - int(inner.sum()), 1)
    ys, xs = np.nonzero(mask)
    extent = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    return (2 * area / perimeter) / extent < 0.25 and area / mask.size < 0.35


def digit_array(img: Image.Image, size: int = 28) -> np.ndarray:
    """size x size uint8 by MNIST's recipe (LeCun et al.): ink cropped, scaled to fit a box of 20/28 of the
    side keeping its aspect ratio (anti-aliased), pasted so its centre of mass sits at the centre.
    Raises BadImage for a blank image (no ink)."""
    box = max(1, round(size * 20 / 28))
    ink = ink_of(grey_array(img))
    if ink.size == 0 or ink.max() < INK:
        raise BadImage(BLANK)
    ys, xs = np.nonzero(ink > 0.2 * ink.max())
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    crop = crop * (255.0 / crop.max())
    h, w = crop.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((nw, nh), Image.LANCZOS), np.float32)
    canvas = np.zeros((size, size), dtype=np.float32)
    total = max(float(small.sum()), 1e-6)
    cy, cx = (np.indices(small.shape) * small).reshape(2, -1).sum(1) / total
    top = int(np.clip(round(size / 2 - cy), 0, size - nh))
    left = int(np.clip(round(size / 2 - cx), 0, size - nw))
    canvas[top : top + nh, left : left + nw] = small
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _thumbnail(img: Image.Image, side: int) -> Image.Image:
    """The whole image (aspect kept) in at most side x side, as L or RGB."""
    small = normalise_mode(img, 1 if img.mode in GREY_MODES else 3)
    small.thumbnail((side, side), Image.BILINEAR)
    return small


def _grey_palette(img: Image.Image) -> bool:
    pal = img.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


# --- worker-process entry points (module-level so ProcessPoolExecutor can pickle them) ---


def inspect_chunk(paths: list[str]) -> list[tuple[Info, str]]:
    """[(Info, error message or "")] for each path."""
    out = []
    for p in paths:
        try:
            out.append((inspect(p), ""))
        except BadImage as e:
            out.append((Info(False, 0, False, False), e.english))
    return out


def decode_chunk(
    npy: str, start: int, paths: list[str], size: int, channels: int, digit: bool = False
) -> list[tuple[int, str]]:
    """Decode paths into rows start.. of the memory-mapped .npy array; returns [(row, error)] failures."""
    arr = np.load(npy, mmap_mode="r+")
    failed = []
    for i, p in enumerate(paths):
        try:
            arr[start + i] = decode(p, size, channels, digit)
        except BadImage as e:
            failed.append((start + i, e.english))
    arr.flush()
    del arr
    return failed
