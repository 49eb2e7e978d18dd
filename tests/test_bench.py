"""`cnnlab bench`: a tiny real run reports every number, as JSON and as a table."""

import json

import pytest


def test_bench_json(cli):
    proc = cli("bench", "chapter-cnn", "--batch-size", "8", "--warmup", "1", "--repeats", "2", "--json")
    result = json.loads(proc.stdout)
    assert result["sgemm_peak_gflops"] > 0 and result["width"] == 0.25 and result["batch_size"] == 8
    (row,) = result["models"]
    assert row["model"] == "chapter-cnn"
    assert row["params"] > 0 and row["macs"] > 0
    for key in ("train", "infer"):
        assert row[f"{key}_images_per_second"] > 0 and row[f"{key}_gflops"] > 0
        assert 0 < row[f"{key}_peak_share"] < 5
        assert row[f"bf16_{key}_images_per_second"] > 0  # every model also measured under bf16 autocast
        ratio = row[f"bf16_{key}_images_per_second"] / row[f"{key}_images_per_second"]
        assert row[f"bf16_{key}_speedup"] == pytest.approx(ratio)
    assert isinstance(result["bf16_native"], bool)
    # training a step costs about 3x the forward pass (the first conv needs no input gradient)
    flops_train = row["train_gflops"] * row["train_step_ms"] / 1e3 * 1e9 / 8
    assert 2.5 < flops_train / (2 * row["macs"]) < 3.1


def test_bench_table_and_unknown_model(cli):
    proc = cli("bench", "fastnet", "--batch-size", "4", "--warmup", "0", "--repeats", "1")
    assert (
        "| fastnet |" in proc.stdout and "sgemm roofline" in proc.stdout and "train img/s bf16" in proc.stdout
    )
    bad = cli("bench", "nonet", check=False)
    assert bad.returncode == 2 and "unknown model 'nonet'" in bad.stderr
