"""Every registered model: small-form forward/backward, ImageNet-form shapes, published parameter counts,
GoogLeNet's aux outputs, the small/ImageNet form rule, and formula shapes == real shapes.

Small forms run for real on CPU at width 0.25 (one thread: on shared cores two threads are ~10x slower);
ImageNet forms are built on the meta device, so shapes and counts come without memory or arithmetic.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.inside.summary import check_input, summarize
from cnnlab.models import get_model, list_models

MODELS = list_models()
SMALL_SHAPES = [(1, 28, 28), (3, 32, 32)]
IMAGENET = (3, 224, 224)

# torchvision's published counts, ImageNet form (3x224x224, 1000 classes, width 1.0, GoogLeNet without aux)
PUBLISHED = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11-bn": 132_868_840,
    "vgg13-bn": 133_053_736,
    "vgg16-bn": 138_365_992,
    "vgg19-bn": 143_678_248,
    "googlenet-tv": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(
    name: str, shape: tuple[int, int, int], classes: int = 10, width: float = 0.25, **extra
) -> nn.Module:
    c, h, _ = shape
    return get_model(name, num_classes=classes, in_channels=c, input_size=h, width=width, **extra)


def imagenet(name: str, **extra) -> nn.Module:
    with torch.device("meta"):
        return build(name, IMAGENET, classes=1000, width=1.0, **extra)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_has_every_family():
    expected = {"chapter-cnn", "googlenet"} | set(PUBLISHED)
    assert expected <= set(MODELS)


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_small_form_trains(name, shape):
    torch.manual_seed(0)
    model = build(name, shape).train()
    out = model(torch.randn(2, *shape))
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert o.shape == (2, 10)
        assert torch.isfinite(o).all()
    # the generic loop's loss: GoogLeNet's aux heads join through loss_weights
    weights = getattr(model, "loss_weights", (1.0,))
    assert len(weights) == len(outs)
    y = torch.tensor([3, 7])
    sum(w * F.cross_entropy(o, y) for w, o in zip(weights, outs)).backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:  # frozen on purpose (e.g. a BN scale fixed at 1)
            continue
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_small_form_formula_shapes_match_forward(name, shape):
    summary = summarize(build(name, shape), shape)
    assert summary.mismatches == []
    assert summary.checked > 0
    assert summary.layers[-1].output_shape == [10]


@pytest.mark.parametrize("name", MODELS)
def test_imagenet_form_shapes(name):
    model = imagenet(name).eval()
    assert model(torch.zeros(2, *IMAGENET, device="meta")).shape == (2, 1000)
    summary = summarize(model, IMAGENET)
    assert summary.mismatches == []
    assert summary.layers[-1].output_shape == [1000]


@pytest.mark.parametrize("name,count", PUBLISHED.items())
def test_published_parameter_counts(name, count):
    extra = {"aux_logits": False} if name.startswith("googlenet") else {}
    assert n_params(imagenet(name, **extra)) == count


def test_googlenet_documented_counts():
    # the paper's 5x5 kernels (torchvision has 3x3, pytorch/vision#906), and both with the two aux heads
    assert n_params(imagenet("googlenet", aux_logits=False)) == 7_005_832
    assert n_params(imagenet("googlenet")) == 13_385_816
    assert n_params(imagenet("googlenet-tv")) == 13_004_888


def _aux_outputs(model: nn.Module) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    for head in ("aux1", "aux2"):
        getattr(model, head).register_forward_hook(lambda m, a, o, head=head: seen.__setitem__(head, o))
    return seen


@pytest.mark.parametrize("name", ["googlenet", "googlenet-tv"])
@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_googlenet_returns_logits_aux2_aux1_in_training(name, shape):
    model = build(name, shape)
    assert model.loss_weights == (1.0, 0.3, 0.3)
    seen = _aux_outputs(model)
    out = model.train()(torch.randn(2, *shape))
    assert isinstance(out, tuple) and len(out) == 3
    logits, aux2, aux1 = out
    assert aux2 is seen["aux2"] and aux1 is seen["aux1"]  # torchvision's order
    assert logits.shape == aux2.shape == aux1.shape == (2, 10)
    seen.clear()
    out = model.eval()(torch.randn(2, *shape))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert seen == {}  # the aux heads do not even run in eval


def test_googlenet_aux_heads_in_imagenet_form():
    out = imagenet("googlenet").train()(torch.zeros(2, *IMAGENET, device="meta"))
    assert [tuple(o.shape) for o in out] == [(2, 1000)] * 3


def test_googlenet_without_aux_returns_tensor():
    model = build("googlenet", (1, 28, 28), aux_logits=False).train()
    assert model.aux1 is None and model.aux2 is None
    assert model.loss_weights == (1.0,)
    assert isinstance(model(torch.randn(2, 1, 28, 28)), torch.Tensor)


def test_form_follows_input_size():
    # <= 64 px: small form; > 64 px: ImageNet form
    with torch.device("meta"):
        assert build("resnet18", (3, 64, 64)).conv1.kernel_size == (3, 3)
        assert build("resnet18", (3, 65, 65)).conv1.kernel_size == (7, 7)
        assert isinstance(build("googlenet", (3, 64, 64)).maxpool1, nn.Identity)
        assert isinstance(build("googlenet", (3, 65, 65)).maxpool1, nn.MaxPool2d)
        assert build("vgg11", (3, 64, 64)).features[2].ceil_mode
        assert not build("vgg11", (3, 65, 65)).features[2].ceil_mode


def test_width_scales_channels():
    assert build("resnet18", (3, 32, 32), width=0.5).fc.in_features == 256
    assert build("vgg11", (1, 28, 28), width=0.5).classifier[0].out_features == 256


def test_check_input_names_the_layer_where_the_map_vanishes():
    model = build("googlenet", (3, 1, 1)).train()
    with pytest.raises(CnnlabError, match=r"shrinks to zero at layer 'maxpool3' \(MaxPool2d"):
        check_input(model, (3, 1, 1))
    assert model.training  # the check put the model back in its mode
    # small-form VGG pools with ceil_mode: a 1x1 map stays 1x1 (one partial window), in PyTorch and the formula
    assert check_input(build("vgg16", (3, 16, 16)), (3, 16, 16)).mismatches == []


def test_check_input_adaptive_pool_is_not_a_false_positive():
    # ImageNet-form VGG at 65 px: five pools leave 2x2, which AdaptiveAvgPool2d brings up to 7x7
    with torch.device("meta"):
        model = build("vgg11", (3, 65, 65), width=1.0)
    summary = check_input(model, (3, 65, 65))
    pooled = next(layer for layer in summary.layers if layer.name == "avgpool")
    assert pooled.output_shape == [512, 7, 7]
    assert summary.mismatches == []


class _PaddedConv(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (1, 1, 1, 1)))  # padding the hyper-parameters do not show


def test_formula_mismatch_is_reported():
    summary = summarize(nn.Sequential(_PaddedConv(1, 2, 3)), (1, 8, 8))
    assert summary.mismatches == ["layer '0': formula gives [2, 6, 6], forward gave [2, 8, 8]"]


def test_registry_is_complete_for_threads_asking_at_once():
    """Several threads building models on a fresh registry all see every family (the server builds in
    worker threads): none gets 'unknown model' from a half-finished import."""
    import importlib
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import cnnlab.models as registry

    saved = {k: v for k, v in sys.modules.items() if k.startswith("cnnlab.models.")}
    for name in saved:
        del sys.modules[name]
    state = (dict(registry._REGISTRY), dict(registry._ALIASES), registry._loaded)
    registry._REGISTRY.clear()
    registry._ALIASES.clear()
    registry._loaded = False
    try:
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(lambda _: len(registry.list_models()), range(8)))
        assert len(set(found)) == 1 and found[0] == len(state[0])
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(state[0])
        registry._ALIASES.clear()
        registry._ALIASES.update(state[1])
        registry._loaded = state[2]
        sys.modules.update(saved)
        importlib.invalidate_caches()
