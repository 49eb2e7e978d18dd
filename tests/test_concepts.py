"""cnnlab.inside.concepts against PyTorch in float64, over random shapes, strides and paddings (hypothesis)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.inside import concepts as C
from cnnlab.models import get_model

FEW = settings(max_examples=50, deadline=None)


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def close(ours: np.ndarray, theirs: torch.Tensor) -> None:
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


@st.composite
def conv_case(draw):
    """A conv problem whose padded input is at least as large as the kernel."""
    k = draw(st.integers(1, 5))
    p = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k - 2 * p), 9))
    w = draw(st.integers(max(1, k - 2 * p), 9))
    return dict(
        c=draw(st.integers(1, 3)),
        f=draw(st.integers(1, 4)),
        h=h,
        w=w,
        k=k,
        s=draw(st.integers(1, 3)),
        p=p,
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@FEW
@given(conv_case())
def test_conv2d_matches_torch(case):
    rng = np.random.default_rng(case["seed"])
    x, w = rand(rng, case["c"], case["h"], case["w"]), rand(rng, case["f"], case["c"], case["k"], case["k"])
    b = rand(rng, case["f"]) if case["bias"] else None
    ours = C.conv2d(x, w, b, stride=case["s"], padding=case["p"])
    theirs = F.conv2d(
        torch.from_numpy(x)[None],
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        stride=case["s"],
        padding=case["p"],
    )[0]
    close(ours, theirs)
    # the chapter's size formula agrees with what came out
    assert ours.shape[1] == C.output_size(case["h"], case["k"], case["s"], case["p"])


@FEW
@given(
    c=st.integers(1, 3),
    h=st.integers(1, 10),
    w=st.integers(1, 10),
    k=st.integers(1, 4),
    s=st.one_of(st.none(), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_pooling_matches_torch(c, h, w, k, s, seed):
    if k > min(h, w):
        with pytest.raises(CnnlabError):
            C.max_pool2d(np.zeros((c, h, w)), k, s)
        return
    x = rand(np.random.default_rng(seed), c, h, w)
    t = torch.from_numpy(x)[None]
    close(C.max_pool2d(x, k, s), F.max_pool2d(t, k, s)[0])
    close(C.avg_pool2d(x, k, s), F.avg_pool2d(t, k, s)[0])


@FEW
@given(n=st.integers(1, 4), classes=st.integers(1, 12), scale=st.sampled_from([1.0, 10.0, 1000.0]))
def test_softmax_and_losses_match_torch(n, classes, scale):
    rng = np.random.default_rng(n * 100 + classes)
    logits = rand(rng, n, classes) * scale  # 1000x scores overflow a naive exp
    target = C.softmax(rand(rng, n, classes))  # a soft target distribution
    t_logits, t_target = torch.from_numpy(logits), torch.from_numpy(target)
    probs = C.softmax(logits)
    close(probs, torch.softmax(t_logits, -1))
    close(C.log_softmax(logits), torch.log_softmax(t_logits, -1))
    close(C.cross_entropy_from_logits(target, logits), F.cross_entropy(t_logits, t_target, reduction="none"))
    q = C.softmax(rand(rng, n, classes))
    close(
        C.cross_entropy(target, q),
        F.cross_entropy(torch.log(torch.from_numpy(q)), t_target, reduction="none"),
    )
    kl_torch = F.kl_div(torch.log(torch.from_numpy(q)), t_target, reduction="none").sum(-1)
    close(C.kl_divergence(target, q), kl_torch)
    # H(p, q) = H(p) + KL(p || q), the chapter's decomposition
    np.testing.assert_allclose(C.cross_entropy(target, q), C.entropy(target) + C.kl_divergence(target, q))
    assert C.l1_loss(target, q) == pytest.approx(F.l1_loss(torch.from_numpy(q), t_target).item())


@FEW
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_relu_flatten_linear_match_torch(shape, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, *shape)
    close(C.relu(x), torch.relu(torch.from_numpy(x)))
    close(C.flatten(x), torch.from_numpy(x).flatten())
    v = C.flatten(x)
    w, b = rand(rng, 3, v.size), rand(rng, 3)
    close(C.linear(v, w, b), F.linear(torch.from_numpy(v), torch.from_numpy(w), torch.from_numpy(b)))


def test_chapter_numbers():
    f = np.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # the chapter's diagonal filter
    patch = f.copy()
    assert C.match_score(patch, f) == 1.0  # a perfect match
    patch[0, 0] = -1  # one cell wrong: (8 - 1) / 9
    assert C.match_score(patch, f) == pytest.approx(7 / 9)
    np.testing.assert_allclose(C.softmax(np.array([0.37, 1.58])), [0.2297, 0.7703], atol=5e-5)
    assert C.cross_entropy([0, 1], [0.1, 0.9]) == pytest.approx(0.1054, abs=5e-5)
    assert C.cross_entropy([0, 1], [0.7, 0.3]) == pytest.approx(1.2040, abs=5e-5)
    assert C.cross_entropy([0, 1], [0.9, 0.1]) == pytest.approx(2.3026, abs=5e-5)  # what the chapter printed
    assert C.l1_loss([0, 1], [0.1, 0.9]) == pytest.approx(0.1)
    assert C.l1_loss([0, 1], [0.7, 0.3]) == pytest.approx(0.7)
    assert C.entropy([0, 1]) == 0.0


def test_bad_sizes_raise_clear_errors():
    with pytest.raises(CnnlabError, match="larger than the padded input"):
        C.conv2d(np.zeros((1, 3, 3)), np.zeros((1, 1, 5, 5)), padding=0)
    with pytest.raises(CnnlabError, match="channels"):
        C.conv2d(np.zeros((2, 5, 5)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(CnnlabError, match="same shape"):
        C.match_score(np.zeros((3, 3)), np.zeros((2, 2)))


def numpy_chapter_cnn(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """The chapter's network, one image, from concepts only (parameter names as in ChapterCNN)."""
    out = C.relu(C.conv2d(x, p["layer.0.weight"], p["layer.0.bias"]))
    out = C.max_pool2d(C.relu(C.conv2d(out, p["layer.2.weight"], p["layer.2.bias"])), 2)
    out = C.max_pool2d(C.relu(C.conv2d(out, p["layer.5.weight"], p["layer.5.bias"])), 2)
    out = C.relu(C.linear(C.flatten(out), p["fc_layer.0.weight"], p["fc_layer.0.bias"]))
    return C.linear(out, p["fc_layer.2.weight"], p["fc_layer.2.bias"])


def test_numpy_network_gives_torch_logits():
    torch.manual_seed(0)
    model = get_model("chapter-cnn").double().eval()
    params = {name: t.detach().numpy() for name, t in model.state_dict().items()}
    images = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        expected = model(images)
    for image, logits in zip(images, expected):
        close(numpy_chapter_cnn(image.numpy(), params), logits)
