"""Grad-CAM: equal to a hand-written reference on chapter-cnn, the right default layer per family, a model
that learned to look at one half of the image gets its heat there, and `cnnlab plot gradcam` draws it."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import untrained_checkpoint
from PIL import Image, ImageDraw

from cnnlab.errors import CnnlabError
from cnnlab.inside.gradcam import default_layer, gradcam, gradcam_for
from cnnlab.models import get_model


def reference_gradcam(model, x: torch.Tensor, c: int) -> torch.Tensor:
    """chapter-cnn split by hand at its last conv (layer.5): A = conv output, the rest applied to it."""
    A = model.layer[:6](x[None]).detach().requires_grad_(True)
    rest = nn.Sequential(*[type(m)() if isinstance(m, nn.ReLU) else m for m in model.layer[6:]])
    logits = model.fc_layer(rest(A).flatten(1))
    (g,) = torch.autograd.grad(logits[0, c], A)
    cam = F.relu((g[0].mean((1, 2))[:, None, None] * A[0]).sum(0)).detach()
    up = F.interpolate(cam[None, None], size=x.shape[1:], mode="bilinear", align_corners=False)[0, 0]
    return up / up.max() if up.max() > 0 else up


def test_gradcam_equals_a_hand_written_reference():
    torch.manual_seed(0)
    model = get_model("chapter-cnn").eval()
    x = torch.randn(1, 28, 28)
    cams, probs, layer = gradcam(model, x, list(range(10)))
    assert layer == "layer.5" and cams.shape == (10, 28, 28)
    for cam, c in zip(cams, range(10)):
        torch.testing.assert_close(cam, reference_gradcam(model, x, c), atol=1e-5, rtol=1e-4)
    assert (cams.amax(dim=(1, 2)) == 1).sum() >= 3  # maps are not all-zero: the comparison means something
    assert probs.sum().item() == pytest.approx(1, abs=1e-5)
    assert all(p.grad is None for p in model.parameters())  # the model is left as it was
    assert not model.training


@pytest.mark.parametrize(
    "name, size, expected",
    [
        ("chapter-cnn", 28, "layer.5"),
        ("resnet18", 32, "layer4.1"),
        ("resnet50", 32, "layer4.2"),
        ("vgg11", 32, "features.18"),
        ("googlenet", 32, "inception5b"),
        ("fastnet", 28, "features.3"),
    ],
)
def test_default_layer_per_family(name, size, expected):
    model = get_model(name, in_channels=1, input_size=size, width=0.125).eval()
    assert default_layer(model, torch.randn(1, 1, size, size)) == expected
    if name == "vgg11":
        assert isinstance(dict(model.named_modules())[expected], nn.Conv2d)
    cams, _, layer = gradcam(model, torch.randn(1, size, size), [1])
    assert layer == expected and cams.shape == (1, size, size)


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(CnnlabError, match="unknown layer 'nope'.*layer.0"):
        gradcam(get_model("chapter-cnn"), torch.randn(1, 28, 28), layer="nope")


def bars(n: int, left_matters: bool, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal bar (class 0) or vertical bar (class 1) in the half that matters; a random bar of either
    kind in the other half, unrelated to the label. A model can only be right by looking at its half."""
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
    y = torch.randint(0, 2, (n,), generator=g)
    other = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        for kind, left in ((int(y[i]), left_matters), (int(other[i]), not left_matters)):
            c0 = 1 if left else 19  # bars keep 8 columns away from the middle
            r, c = (int(v) for v in torch.randint(0, 8, (2,), generator=g))
            if kind == 0:
                x[i, 0, 10 + r, c0 : c0 + 8] = 1.0
            else:
                x[i, 0, 9 + r : 9 + r + 10, c0 + c] = 1.0
    return (x - 0.1) / 0.3, y


@pytest.mark.parametrize("left_matters", [True, False], ids=["left-half", "right-half"])
def test_heat_lies_in_the_half_the_model_learned_to_look_at(left_matters):
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = get_model("chapter-cnn", num_classes=2, width=0.25)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        x, y = bars(32, left_matters, g)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = bars(40, left_matters, g)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9, f"the synthetic task was not learned ({accuracy:.0%}); the test proves nothing"
    masses = []
    for xi, yi in zip(x, y):
        cam, _, _ = gradcam(model, xi, [int(yi)])
        half = cam[0, :, :14] if left_matters else cam[0, :, 14:]
        masses.append((half.sum() / cam.sum().clamp_min(1e-12)).item())
    # 0.5 would be no preference; measured 0.81 (the last conv's 18-px receptive field blurs the edge)
    assert sum(masses) / len(masses) > 0.7, masses


def digit_png(path) -> str:
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(50, 40), (150, 40), (85, 170)], fill=0, width=16)
    img.save(path)
    return str(path)


def test_plot_gradcam_cli(cli, tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "model")
    image = digit_png(tmp_path / "seven.png")
    out = tmp_path / "cam.png"
    r = cli("plot", "gradcam", str(ckpt), "--image", image, "--class", "7", "--class", "1", "--out", str(out))
    assert r.stdout.strip() == str(out)
    with Image.open(out) as img:
        assert img.size[0] > 2 * img.size[1]  # the input and two classes side by side
    r = cli("plot", "gradcam", str(ckpt), "--image", image, "--out", str(tmp_path / "top.png"))
    assert (tmp_path / "top.png").is_file()
    for extra, message in (
        (["--class", "cat"], "unknown class 'cat'"),
        (["--layer", "x"], "unknown layer 'x'"),
    ):
        r = cli("plot", "gradcam", str(ckpt), "--image", image, *extra, check=False)
        assert r.returncode == 2 and r.stderr.strip().startswith(f"cnnlab: error: {message}")
        assert len(r.stderr.strip().splitlines()) == 1


def test_python_api_from_a_checkpoint_and_an_image(tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "model")
    path = digit_png(tmp_path / "seven.png")
    cam = gradcam_for(ckpt, path, classes=["7", 1])
    assert cam.classes == ["7", "1"] and cam.layer == "layer.5" and cam.maps.shape == (2, 28, 28)
    assert tuple(cam.image.shape) == (1, 28, 28) and cam.image.dtype == torch.uint8
    top = gradcam_for(ckpt, open(path, "rb").read())  # bytes too; the 3 most likely classes
    assert len(top.classes) == 3 and top.probabilities == sorted(top.probabilities, reverse=True)
    with pytest.raises(CnnlabError, match="unknown class 'cat'"):
        gradcam_for(ckpt, path, classes=["cat"])
