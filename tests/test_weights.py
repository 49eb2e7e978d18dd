"""Weights from torchvision-format files, hash-checked downloads (a local HTTP server on 127.0.0.1),
adapting to other channel counts and classes, and predicting from weights alone.

The reference is the real torchvision (installed for the tests only, `make setup`; never imported by
cnnlab): its resnet18, vgg11 and googlenet have exactly cnnlab's parameter names and shapes, and the same
weights give the same logits; its state dicts are the files the loading tests read."""

import hashlib
import json
import pickle
import sys
import types

import pytest
import torch
from conftest import require
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.models import get_model
from cnnlab.models import weights as W
from cnnlab.models.adapt import adapt_input_conv, imagenet_model, load_into

IMAGENET_KW = {"num_classes": 1000, "in_channels": 3, "input_size": 224}
# cnnlab's name -> torchvision's builder and its arguments (GoogLeNet: with the auxiliary heads, as the
# published file is; init_weights=False skips its slow truncated-normal init, the weights are replaced)
TORCHVISION = {
    "resnet18": ("resnet18", {}),
    "vgg11": ("vgg11", {}),
    "googlenet-tv": ("googlenet", {"aux_logits": True, "init_weights": False}),
}


@pytest.fixture(scope="module")
def tvm():
    """torchvision.models. Its compiled ops do not load on the CPU torch; an empty
    `torchvision._meta_registrations` (the module that registers them) lets the pure-Python parts import."""
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    try:
        import torchvision.models as tvm
    except ImportError:
        tvm = None
    require(tvm is not None, "torchvision is not installed (`make setup` installs it for the tests)")
    return tvm


def torchvision_model(tvm, name: str, **kw):
    builder, args = TORCHVISION[name]
    return getattr(tvm, builder)(weights=None, **{**args, **kw})


def random_state(reference: dict[str, torch.Tensor], dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Weights for `reference`'s names and shapes that keep activations of order 1 through a deep net:
    He-scaled kernels, small biases, BatchNorm statistics away from the identity. Drawn in float32 (3x
    faster for VGG's 132 M) and held in `dtype`."""
    g = torch.Generator().manual_seed(0)

    def randn(shape):
        return torch.randn(shape, generator=g).to(dtype)

    out = {}
    for k, v in reference.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros((), dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = 0.5 + torch.rand(v.shape, generator=g).to(dtype)
        elif v.dim() > 1:
            out[k] = randn(v.shape) * (2 / v[0].numel()) ** 0.5
        elif k.endswith("weight"):  # BatchNorm's scale
            out[k] = 1 + 0.1 * randn(v.shape)
        else:  # biases, BatchNorm's shift and running mean
            out[k] = 0.1 * randn(v.shape)
    return out


@pytest.mark.parametrize("name", TORCHVISION)
def test_same_names_shapes_and_logits_as_torchvision(tvm, name):
    """cnnlab's ImageNet form has torchvision's state dict (names, shapes, buffers), and the same weights
    compute the same logits (float64, a 64 px input: every model ends in an adaptive pool)."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        reference, ours = torchvision_model(tvm, name), get_model(name, **IMAGENET_KW)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == theirs
    state = random_state(reference.state_dict())
    reference.load_state_dict(state, assign=True)  # both use the same tensors
    ours.load_state_dict(state, assign=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        expected, got = reference.eval()(x), ours.eval()(x)
    assert expected.shape == (2, 1000) and expected.std() > 1e-3  # the check has something to compare
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def resnet_tv(tvm):
    """torchvision's resnet18 (its own initialisation) and its state dict: what a torchvision file holds."""
    torch.manual_seed(0)
    model = torchvision_model(tvm, "resnet18").eval()
    return model, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_formats_load_and_give_identical_logits(tmp_path, resnet_tv, zip_format):
    model, state = resnet_tv
    path = tmp_path / "resnet18-tv.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    w = W.from_file(path)
    assert w.state.keys() == state.keys() and all(torch.equal(w.state[k], state[k]) for k in state)
    loaded, meta = imagenet_model(w, "resnet18")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta["classes"][0] == "tench" and len(meta["classes"]) == 1000
    assert meta["resize"] == 256 and meta["crop"] == 224 and meta["mean"] == W.IMAGENET_MEAN


def test_wrapped_and_ddp_prefixed_state_dicts_are_unwrapped(tmp_path):
    state = {"module.fc.weight": torch.ones(2, 2)}
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    assert list(W.read_state(tmp_path / "w.pth")) == ["fc.weight"]


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"fc.weight": Evil()}))
    with pytest.raises(CnnlabError) as e:
        W.from_file(tmp_path / "evil.pth")
    assert e.value.exit_code == 8


def test_one_channel_adaptation_equals_rgb_on_replicated_grey():
    rgb = get_model("resnet18", num_classes=10, in_channels=3, input_size=32, width=0.25).eval()
    grey = get_model("resnet18", num_classes=10, in_channels=1, input_size=32, width=0.25).eval()
    w = W.Weights(rgb.state_dict(), "rgb", [str(i) for i in range(10)])
    fresh, notes = load_into(grey, w, [str(i) for i in range(10)], "resnet18")
    assert not fresh and "1 input channel" in notes[0]
    g = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(grey.double()(g), rgb.double()(g.repeat(1, 3, 1, 1)), atol=1e-9)


def test_other_channel_counts_repeat_and_rescale_like_timm():
    w = torch.randn(8, 3, 3, 3)
    six = adapt_input_conv(w, 6)
    assert torch.allclose(six, torch.cat([w, w], 1) * 0.5)
    two = adapt_input_conv(w, 2)
    assert torch.allclose(two, w[:, :2] * 1.5)


def test_new_classifier_when_classes_differ_rest_strict(resnet_tv):
    _, state = resnet_tv
    model = get_model("resnet18", num_classes=5, in_channels=1, input_size=224)
    fresh, notes = load_into(model, W.Weights(state, "tv", W.imagenet_classes()), list("abcde"), "resnet18")
    assert fresh == {"fc.weight", "fc.bias"} and "new classifier fc for 5 classes" in notes[0]
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_mismatches_are_one_line_naming_them(resnet_tv):
    _, state = resnet_tv
    broken = {("fc2.weight" if k == "layer1.0.conv1.weight" else k): v for k, v in state.items()}
    model = get_model("resnet18", **IMAGENET_KW)
    with pytest.raises(CnnlabError, match=r"missing from the file, e\.g\. layer1\.0\.conv1\.weight.*lacks"):
        load_into(model, W.Weights(broken, "f.pth"), W.imagenet_classes(), "resnet18")
    small = get_model("resnet18", num_classes=10, in_channels=1, input_size=28)
    small.cnnlab_kwargs = {"input_size": 28}
    with pytest.raises(CnnlabError, match=r"conv1\.weight: file 64x1x7x7 vs model 64x1x3x3.*small form"):
        load_into(small, W.Weights(state, "f.pth"), [str(i) for i in range(10)], "resnet18")


def test_googlenet_aux_heads_start_fresh_and_are_said_so(tvm):
    state = torchvision_model(tvm, "googlenet-tv").state_dict()  # with aux1/aux2, as the published file
    model = get_model("googlenet_tv", num_classes=10, in_channels=1, input_size=224)
    w = W.Weights(state, "tv", W.imagenet_classes(), kind="imagenet")
    fresh, notes = load_into(model, w, [str(i) for i in range(10)], "googlenet_tv")
    assert any(k.startswith("aux1.") for k in fresh) and any("auxiliary heads" in n for n in notes)
    assert torch.equal(model.inception4a.branch1.conv.weight, state["inception4a.branch1.conv.weight"])


def test_googlenet_transform_input_equals_half_normalisation():
    # torchvision GoogLeNet._transform_input, applied to ImageNet-normalised input ...
    x = torch.rand(2, 3, 8, 8)
    m, s = torch.tensor(W.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(W.IMAGENET_STD).view(1, 3, 1, 1)
    xn = (x - m) / s
    tv = torch.cat([xn[:, c : c + 1] * (s[0, c] / 0.5) + (m[0, c] - 0.5) / 0.5 for c in range(3)], 1)
    # ... is what cnnlab records for these weights: mean = std = 0.5
    assert torch.allclose(tv, (x - 0.5) / 0.5, atol=1e-6)
    assert W.imagenet_preprocess("googlenet_tv")["mean"] == [0.5, 0.5, 0.5]


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "cache" / "weights"


def publish(monkeypatch, model: str, file: str) -> None:
    """For this test, `model`'s registration declares `file` as its published weights."""
    from dataclasses import replace

    import cnnlab.models as registry

    facts = registry.model_facts(model)
    new = replace(facts, weights=replace(facts.weights, file=file))
    monkeypatch.setitem(registry._REGISTRY, facts.name, new)


def test_download_checks_the_hash_prefix(server, caches, monkeypatch, tmp_path):
    root, base = server
    torch.save({"fc.weight": torch.ones(3)}, tmp_path / "w.pth")
    data = (tmp_path / "w.pth").read_bytes()
    good = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (root / good).write_bytes(data)
    publish(monkeypatch, "resnet18", good)
    path = W.pretrained_file("resnet18", progress=False, base_url=base)
    assert path == caches / good and path.read_bytes() == data
    bad = "resnet34-00000000.pth"
    (root / bad).write_bytes(data)
    publish(monkeypatch, "resnet34", bad)
    with pytest.raises(CnnlabError, match="SHA-256 does not start with 00000000.*deleted.*--weights FILE"):
        W.pretrained_file("resnet34", progress=False, base_url=base)
    assert sorted(p.name for p in caches.iterdir()) == [good]  # the bad file is gone, no .part left


def test_offline_names_url_cache_path_and_weights_flag(caches):
    with pytest.raises(CnnlabError) as e:
        W.pretrained_file("vgg11", progress=False, base_url="http://127.0.0.1:9/")
    msg = str(e.value)
    assert "http://127.0.0.1:9/vgg11-8a719046.pth" in msg and str(caches / "vgg11-8a719046.pth") in msg
    assert "--weights FILE" in msg


def test_no_weights_for_paper_googlenet_points_to_googlenet_tv():
    with pytest.raises(CnnlabError, match="googlenet-tv"):
        W.pretrained_file("googlenet", progress=False)


def test_cli_pretrained_with_a_bad_download_exits_nonzero(cli, server, tmp_path):
    root, base = server
    (root / W.published("resnet18").file).write_bytes(b"not the real file")
    (tmp_path / "p.png").write_bytes(b"")
    env = {"CNNLAB_CACHE": str(tmp_path / "c"), "TORCH_HOME": str(tmp_path / "t"), "CNNLAB_WEIGHTS_URL": base}
    proc = cli("predict", "resnet18", "--pretrained", str(tmp_path / "p.png"), check=False, env=env)
    last = proc.stderr.strip().splitlines()[-1]  # after the download's progress bar
    assert proc.returncode != 0 and last.startswith("cnnlab: error:") and "SHA-256" in last
    assert not any((tmp_path / "c" / "weights").iterdir())


def test_cli_predict_from_weights_alone_gives_imagenet_names(cli, tmp_path, resnet_tv):
    _, state = resnet_tv
    torch.save(state, tmp_path / "r18.pth")
    Image.new("RGB", (300, 200), (200, 30, 30)).save(tmp_path / "photo.jpg")
    proc = cli(
        "predict", "resnet18", "--weights", str(tmp_path / "r18.pth"), str(tmp_path / "photo.jpg"), "--json"
    )
    out = json.loads(proc.stdout)[0]
    assert out["label"] in W.imagenet_classes() and len(out["probabilities"]) == 1000
    (tmp_path / "names.txt").write_text("\n".join(f"c{i}" for i in range(1000)))
    args = ("--weights", str(tmp_path / "r18.pth"), "--classes", str(tmp_path / "names.txt"))
    proc = cli("predict", "resnet18", *args, str(tmp_path / "photo.jpg"), "--json")
    assert json.loads(proc.stdout)[0]["label"] == f"c{out['prediction']}"


def test_cli_pretrained_uses_torch_hub_copy(cli, tmp_path, resnet_tv):
    """A file torchvision already downloaded (torch.hub's cache) is used as is, like torch.hub does."""
    _, state = resnet_tv
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / W.published("resnet18").file)
    Image.new("RGB", (256, 320), (30, 90, 200)).save(tmp_path / "photo.png")
    env = {"CNNLAB_CACHE": str(tmp_path / "c"), "TORCH_HOME": str(tmp_path / "torch")}
    proc = cli("predict", "resnet18", "--pretrained", str(tmp_path / "photo.png"), "--json", env=env)
    assert json.loads(proc.stdout)[0]["label"] in W.imagenet_classes()


@pytest.mark.parametrize("size", [(300, 200), (225, 401), (256, 256)])
def test_resize_crop_matches_torchvision_eval_transform(tvm, size):
    import torchvision.transforms as tv

    from cnnlab.prediction import resize_crop

    img = Image.fromarray(torch.randint(0, 256, (size[1], size[0], 3), dtype=torch.uint8).numpy())
    ref = tv.PILToTensor()(tv.CenterCrop(224)(tv.Resize(256)(img)))
    assert torch.equal(resize_crop(img, (3, 224, 224), 256), ref)
