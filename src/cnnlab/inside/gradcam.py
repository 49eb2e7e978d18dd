"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies, for any model.

For a target layer with activations A (K maps of h x w) and a class score y_c (the logit, before softmax):
    weights  alpha_k = mean over the map of dy_c / dA_k      (how much map k matters for class c)
    cam      = ReLU(sum_k alpha_k A_k)                       (only evidence FOR the class)
then the h x w cam is upsampled (bilinear) to the input size and divided by its maximum, so 1 is the
strongest evidence and 0 none. A is recorded by a forward hook on the target layer; nothing in the model
changes. The hook returns a clone of the output, so an in-place ReLU that follows (chapter-cnn) cannot
overwrite the recorded A and autograd still sees a clean graph.

Default target layer, the last convolutional stage, as each model's registration declares it
(`register_model(..., gradcam_layer=...)`; `--layer` overrides): ResNet `layer4[-1]`, VGG and fastnet the
last Conv2d of `features`, GoogLeNet `inception5b`, chapter-cnn `layer.5`; for a model that declares none
(or was not built by the registry) the last Conv2d the forward pass calls.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.inside.hooks import hooked, of_kind


def _last_conv_name(model: nn.Module, x: torch.Tensor) -> str:
    called: list[str] = []
    with hooked(model, of_kind(model, (nn.Conv2d,)), after=lambda n, m, i, o: called.append(n)):
        with torch.no_grad():
            model(x)
    if not called:
        raise CnnlabError(_("{model} has no Conv2d layer: Grad-CAM needs one", model=type(model).__name__))
    return called[-1]


def default_layer(model: nn.Module, x: torch.Tensor | None = None) -> str:
    """The model's default target layer name (see the module docstring). `x`: one sample batch for
    models whose last conv is found by running them (1 x C x H x W)."""
    from cnnlab.models import facts_of

    facts = facts_of(model)
    declared = facts.layer_for(model) if facts is not None else None
    if declared:
        return declared
    if x is None:
        raise CnnlabError(_("default_layer needs a sample input for this model"))
    was_training = model.training
    model.eval()
    try:
        return _last_conv_name(model, x)
    finally:
        model.train(was_training)


def gradcam(
    model: nn.Module, x: torch.Tensor, classes: list[int] | None = None, layer: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Grad-CAM heat maps of ONE normalised image x (C x H x W).

    Returns (cams: len(classes) x H x W in [0, 1], probabilities, target layer name). `classes`
    defaults to the predicted class. The model is left as it was (mode, hooks, gradients)."""
    batch = x.detach().unsqueeze(0).clone().requires_grad_(True)  # so A is in the graph even if the
    # weights are frozen (requires_grad False)
    modules = dict(model.named_modules())
    layer = layer or default_layer(model, batch.detach())
    if layer not in modules or layer == "":
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        raise CnnlabError(
            _(
                "unknown layer {layer}; conv layers of this model: {names}",
                layer=repr(layer),
                names=", ".join(convs),
            )
        )
    recorded: list[torch.Tensor] = []

    def keep(_name, _mod, _inp, out):
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise CnnlabError(
                _("layer {layer} does not output feature maps (N x C x H x W)", layer=repr(layer))
            )
        recorded.append(out)
        return out.clone()  # downstream in-place ops modify the clone, not the recorded A

    with hooked(model, [(layer, modules[layer])], after=keep):
        with torch.enable_grad():
            logits = model(batch)
            if isinstance(logits, tuple):
                logits = logits[0]
            probs = logits.detach()[0].softmax(0)
            targets = [int(probs.argmax())] if classes is None else list(classes)
            for c in targets:
                if not 0 <= c < logits.shape[1]:
                    raise CnnlabError(_("class {c} is outside 0..{last}", c=c, last=logits.shape[1] - 1))
            acts = recorded[-1]  # the last call, should a module be called twice
            cams = []
            for c in targets:
                (grad,) = torch.autograd.grad(logits[0, c], acts, retain_graph=True)
                weights = grad[0].mean(dim=(1, 2))  # alpha_k
                cams.append(F.relu((weights[:, None, None] * acts[0]).sum(0)).detach())
    stacked = torch.stack(cams)[:, None]
    up = F.interpolate(stacked, size=x.shape[1:], mode="bilinear", align_corners=False)[:, 0]
    peak = up.amax(dim=(1, 2), keepdim=True)
    return up / torch.where(peak > 0, peak, torch.ones_like(peak)), probs, layer  # an all-zero cam stays 0


@dataclass
class GradCam:
    """Grad-CAM of one image through one checkpoint (what `gradcam_for` returns)."""

    image: torch.Tensor  # the model's uint8 C x H x W input, preprocessed like `cnnlab predict`
    maps: torch.Tensor  # K x H x W heat maps in [0, 1], one per class in `classes`
    classes: list[str]  # the class names the maps are for
    probabilities: list[float]  # the model's probability of each of those classes
    layer: str  # the target layer


def gradcam_for(
    checkpoint, image, classes: list[str | int] | None = None, layer: str | None = None, top: int = 3
) -> GradCam:
    """Grad-CAM from a checkpoint (run folder or file, or a `(model, meta)` pair) and an image (a path,
    bytes or a PIL image): maps for `classes` (names or indices), by default the `top` most likely.

    >>> cam = gradcam_for("runs/demo", "my_digit.png", classes=["7", "1"])   # doctest: +SKIP
    """
    from PIL import Image

    from cnnlab.checkpoint import load_checkpoint
    from cnnlab.data import to_float
    from cnnlab.prediction import open_image, prepare

    model, meta = checkpoint if isinstance(checkpoint, tuple) else load_checkpoint(checkpoint)
    img = (
        image
        if isinstance(image, Image.Image)
        else open_image(image, "image" if isinstance(image, bytes) else str(image))
    )
    x_uint8 = prepare(img, meta)
    x = to_float(x_uint8[None], meta["mean"], meta["std"])[0]
    names = list(meta["classes"])
    if classes:
        wanted = [class_index(c, names) for c in classes]
    else:
        if top < 1:
            raise CnnlabError(_("top must be at least 1, got {top}", top=top))
        _maps, probs, _layer = gradcam(model, x, None, layer)
        wanted = probs.topk(min(top, len(names))).indices.tolist()
    maps, probs, used = gradcam(model, x, wanted, layer)
    return GradCam(x_uint8, maps, [names[c] for c in wanted], [float(probs[c]) for c in wanted], used)


def class_index(name: str | int, classes: list[str]) -> int:
    """A class given by name (as the checkpoint lists it) or by index."""
    if isinstance(name, str) and name in classes:
        return classes.index(name)
    if str(name).isdigit() and int(name) < len(classes):
        return int(name)
    raise CnnlabError(_("unknown class {name}; classes: {names}", name=repr(name), names=", ".join(classes)))
