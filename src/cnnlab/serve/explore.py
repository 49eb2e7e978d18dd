"""The page's "see inside" answers for one prepared image: the CNN-Explainer overview (every column's maps
as one PNG sprite, shapes, how maps connect), the numbers of one unit for a detail view, and Grad-CAM
heat maps as transparent PNGs to lay over the input.

All three run hooked forward passes, so they use the predictor's private probe copy under its lock
(see `Predictor`): a hook on the shared model would record other requests' activations.
"""

import numpy as np
import torch

from cnnlab.data import to_float
from cnnlab.errors import CnnlabError
from cnnlab.i18n import DEFAULT, using
from cnnlab.inside.detail import detail, numbers
from cnnlab.inside.gradcam import gradcam
from cnnlab.inside.overview import Unit, trace_units
from cnnlab.serve.inference import Predictor, RequestError, png_data_url, sprite

MAX_TILES = 32  # maps shown per overview column (CNN Explainer shows every one of TinyVGG's 10)
MAX_OVERVIEW_PIXELS = 400_000  # all sprites of one answer together
MAX_VECTOR = 1024  # values of a 1-D column (flatten, linear) sent as numbers for the strip

# Grad-CAM colours: transparent where there is no evidence, through purple and orange to yellow.
_STOPS = np.array([0.0, 0.35, 0.7, 1.0])
_RGB = np.array([[40, 0, 90], [150, 20, 160], [245, 100, 20], [255, 230, 40]], dtype=np.float32)


def heat_rgba(cam: np.ndarray) -> np.ndarray:
    """H x W values in [0, 1] -> H x W x 4 uint8: colour by value, opacity rising with the value."""
    v = np.clip(cam, 0, 1)
    rgb = np.stack([np.interp(v, _STOPS, _RGB[:, i]) for i in range(3)], axis=-1)
    alpha = np.clip(v * 1.4, 0, 1) * 210
    return np.concatenate([rgb, alpha[..., None]], axis=-1).astype(np.uint8)


def column_json(index: int, unit: Unit, share: int) -> dict:
    out = unit.output if unit.shown is None else unit.shown
    col = {
        "index": index,
        "name": unit.name,
        "kind": unit.kind,
        "type": unit.type,
        "shape": list(out.shape),
        "links": unit.links,
    }
    if out.dim() == 3:
        f, h, w = out.shape
        shown = max(1, min(f, MAX_TILES, share // max(1, h * w)))
        img, cols, rows = sprite(out[:shown].float().numpy())
        col.update(shown=shown, cols=cols, rows=rows, tile=[h, w], png=png_data_url(img))
    else:
        col.update(shown=min(out.numel(), MAX_VECTOR), values=numbers(out.reshape(-1)[:MAX_VECTOR]))
    return col


class Explorer:
    """Overview, detail and Grad-CAM answers for one served checkpoint."""

    def __init__(self, predictor: Predictor):
        self.p = predictor

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        return to_float(x.unsqueeze(0), self.p.meta["mean"], self.p.meta["std"])[0]

    def units(self, x: torch.Tensor) -> list[Unit]:
        with self.p._probe_lock:
            return trace_units(self.p._probe, self._normalised(x))

    def overview(self, x: torch.Tensor) -> list[dict]:
        units = self.units(x)
        share = MAX_OVERVIEW_PIXELS // max(1, sum(u.output.dim() == 3 for u in units))
        return [column_json(i, u, share) for i, u in enumerate(units)]

    def detail(self, x: torch.Tensor, column: int, unit: int) -> dict:
        units = self.units(x)
        if not 0 <= column < len(units):
            raise RequestError(400, f"column {column} is outside 0..{len(units) - 1}")
        try:
            with using(DEFAULT):  # the API's JSON error bodies are English whatever the server's language
                answer = detail(units[column], unit)
        except CnnlabError as e:
            raise RequestError(400, str(e)) from None
        return {"column": column, **answer}

    def gradcam(self, x: torch.Tensor, classes: list[int] | None, layer: str | None = None) -> dict:
        n = len(self.p.meta["classes"])
        for c in classes or []:
            if not 0 <= c < n:
                raise RequestError(400, f"gradcam class {c} is outside 0..{n - 1}")
        with self.p._probe_lock:
            try:
                with using(DEFAULT):  # an English JSON error body, as above
                    cams, probs, used = gradcam(self.p._probe, self._normalised(x), classes, layer)
            except CnnlabError as e:
                raise RequestError(400, str(e)) from None
        targets = classes or [int(probs.argmax())]
        return {
            "layer": used,
            "maps": [
                {"class": c, "label": self.p.meta["classes"][c], "png": png_data_url(_rgba(cam))}
                for c, cam in zip(targets, cams.numpy())
            ],
        }


def _rgba(cam: np.ndarray):
    from PIL import Image

    return Image.fromarray(heat_rgba(cam), "RGBA")


def explore_extras(explorer: Explorer, overview: bool, gradcam: bool, classes: list[int], layer: str | None):
    """The `extras(x)` callback of `Predictor.__call__` for `/api/predict?overview=1&gradcam=1`."""
    if not (overview or gradcam or classes):
        return None

    def extras(x: torch.Tensor) -> dict:
        out: dict = {}
        if overview:
            out["overview"] = explorer.overview(x)
        if gradcam or classes:
            out["gradcam"] = explorer.gradcam(x, classes or None, layer)
        return out

    return extras
