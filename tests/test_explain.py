"""`cnnlab explain` through the real CLI: every worked number of the chapter, its discrepancies, bad input."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def explain(cli, *args: str) -> dict:
    proc = cli("explain", *args, "--json")
    return json.loads(proc.stdout)  # exactly one JSON object on stdout


def test_match_reproduces_the_chapters_0_77(cli):
    out = explain(cli, "match")
    assert out["result"] == pytest.approx(7 / 9)
    assert any("0.77" in s and "two decimals" in s for s in out["steps"])
    perfect = explain(cli, "match", "1,-1;-1,1", "1,-1;-1,1")
    assert perfect["result"] == 1.0


def test_conv_reproduces_the_chapters_figures(cli):
    assert explain(cli, "conv")["result"] == [[15, 16], [6, 15]]
    text = cli("explain", "conv", "--padding", "1").stdout
    assert "floor((4 - 3 + 2*1)/1) + 1 = 4" in text
    assert "out[0,0] = 0 x 2 + 0 x 0 + 0 x 1 + 0 x 0 + 1 x 1 + 2 x 2 + 0 x 1 + 0 x 0 + 1 x 2 = 7" in text
    assert "zero-padded input (6x6)" in text and "matches" in text
    assert explain(cli, "conv", "--padding", "1")["result"] == [
        [7, 12, 10, 2],
        [4, 15, 16, 10],
        [10, 6, 15, 6],
        [8, 10, 4, 3],
    ]


def matrix_text(m: np.ndarray) -> str:
    """The CLI's matrix syntax: rows separated by ';', values by ','."""
    return ";".join(",".join(str(v) for v in row) for row in m)


def test_conv_on_user_input_matches_torch(cli):
    x = np.arange(25.0).reshape(5, 5) % 7 - 3  # starts with a minus sign: must still parse as a value
    k = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    args = ("--stride", "2", "--padding", "1", "--bias", "0.5")
    out = explain(cli, "conv", matrix_text(x), matrix_text(k), *args)
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    expected = F.conv2d(t(x)[None, None], t(k)[None, None], t([0.5]), stride=2, padding=1)
    np.testing.assert_allclose(out["result"], expected[0, 0].numpy())


def test_output_size_formula_and_the_chapter_model_walk(cli):
    assert explain(cli, "output-size", "28", "5")["result"] == 24
    assert explain(cli, "output-size", "7", "3", "--stride", "2", "--padding", "1")["result"] == 4
    walk = explain(cli, "output-size", "--model", "chapter-cnn")
    assert walk["result"] == [64, 3, 3]  # the chapter's nn.Linear(64*3*3, 100)
    assert [layer["output"][1] for layer in walk["layers"]] == [24, 20, 10, 6, 3]
    assert [layer["type"] for layer in walk["layers"]] == [
        "Conv2d",
        "Conv2d",
        "MaxPool2d",
        "Conv2d",
        "MaxPool2d",
    ]
    assert not any("disagrees" in s for s in walk["steps"])


def test_size_walk_is_generic_over_registered_models(cli):
    from cnnlab.models import list_models

    others = [m for m in list_models() if m.startswith("resnet18")] or [
        m for m in list_models() if m != "chapter-cnn"
    ]
    if not others:
        pytest.skip("no other model registered yet")
    walk = explain(cli, "output-size", "--model", others[0], "--input", "3x32x32")
    assert walk["layers"][0]["input"] == [3, 32, 32]
    assert not any("disagrees" in s for s in walk["steps"])


def test_pool_max_and_average(cli):
    out = explain(cli, "pool")
    assert out["result"] == {"max": [[6, 8], [3, 4]], "average": [[3.25, 5.25], [2, 2]]}


def test_softmax_and_the_chapters_rounding(cli):
    out = explain(cli, "softmax", "0.37", "1.58")
    assert [round(p, 4) for p in out["result"]] == [0.2297, 0.7703]
    chapter = explain(cli, "softmax")  # the chapter's own logits, with the note on 0.2296 / 0.7704
    assert chapter["result"] == out["result"]
    assert any("0.2296" in s and "rounding" in s for s in chapter["steps"])


def test_cross_entropy_table_flags_the_chapters_2_3025(cli):
    out = explain(cli, "cross-entropy")
    assert [round(v, 4) for v in out["result"]] == [0.1054, 1.2040]
    assert [row["l1"] for row in out["table"]] == pytest.approx([0.1, 0.7])
    for row in out["table"]:  # H(p, q) = H(p) + KL(p || q)
        assert row["cross_entropy"] == pytest.approx(row["entropy"] + row["kl_divergence"])
    (found,) = out["discrepancies"]
    assert found["prediction"] == [0.7, 0.3] and found["printed"] == 2.3025
    assert found["printed_is_loss_of"] == [0.9, 0.1]
    assert math.floor(-math.log(0.1) * 1e4) / 1e4 == 2.3025  # the chapter cut -ln 0.1 to 4 decimals
    assert any("0.1053" in s and "agrees" in s for s in out["steps"])


def test_cross_entropy_on_user_distributions(cli):
    out = explain(cli, "cross-entropy", "--target", "0.2,0.8", "--pred", "0.5 0.5", "--pred", "0.1,0.9")
    p, q = np.array([0.2, 0.8]), np.array([0.5, 0.5])
    assert out["result"][0] == pytest.approx(-(p * np.log(q)).sum())
    row = out["table"][0]
    assert row["entropy"] > 0 and row["cross_entropy"] == pytest.approx(row["entropy"] + row["kl_divergence"])
    assert "discrepancies" not in out  # only the chapter's own table is compared with the chapter


def test_parameters_show_weight_sharing(cli):
    out = explain(cli, "parameters", "chapter-cnn")
    assert [row["params"] for row in out["result"]] == [416, 12832, 51264]
    assert out["result"][0]["dense_params"] == 784 * 9216 + 9216
    assert out["total_params"] == 123222


def test_eval_drop_finds_the_16_missing_test_images(cli):
    out = explain(cli, "eval-drop")
    assert out["result"] == 16
    assert out["chapter"] == {"printed": "98.65785217285156", "correct": 9850, "counted": 9984}
    assert explain(cli, "eval-drop", "60000", "256")["result"] == 96


@pytest.mark.parametrize(
    "args, message",
    [
        (["conv", "1,x;3,4", "1"], "'x' is not a number"),
        (["conv", "1,2;3", "1"], "ragged"),
        (["conv", "1,2;3,4", "1,1,1;1,1,1;1,1,1"], "larger than the padded input"),
        (["match", "1,2;3,4", "1,2,3"], "same shape"),
        (["output-size", "--model", "no-such-net"], "unknown model 'no-such-net'"),
        (["parameters", "chapter-cnn", "--layer", "layer.9"], "unknown layer 'layer.9'"),
        (["output-size", "--input", "28x28"], "must be CxHxW"),
        (["cross-entropy", "--pred", "0.5,0.7"], "sum to 1"),
        (["softmax", "one", "two"], "'one' is not a number"),
    ],
)
def test_bad_input_gives_one_clear_line(cli, args, message):
    proc = cli("explain", *args, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error:") and message in lines[0], proc.stderr
