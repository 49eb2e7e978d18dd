"""Hostile inputs that used to end in a wrong answer or in exit 1 "unexpected error": NaN/inf and integer
weights, JSON nested 100,000 deep, `translate=nan`, a summary input of 99999 x 99999, hand-edited resume
states, an empty CNNLAB_CACHE, temp files a killed run left, a 15 kB mismatch line, --nproc 100.
Each now ends in one line and its documented exit code (docs/scale.md, "Faults and exit codes")."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import untrained_checkpoint
from safetensors.torch import load_file, save_file

from cnnlab.checkpoint import EXIT_BAD_CHECKPOINT, load_checkpoint
from cnnlab.errors import CnnlabError

TINY = ("--dataset", "mnist-sample", "--limit-train", "512", "--max-steps", "5", "--width", "0.5")
NESTED = "[" * 100_000 + "]" * 100_000  # json's parser recurses once per level: RecursionError


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from conftest import run_cli

    out = tmp_path_factory.mktemp("run") / "run"
    run_cli("train", *TINY, "--out", str(out))
    return out


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    from PIL import Image

    from cnnlab.data import load_dataset

    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(load_dataset("mnist-sample").test_x[0, 0].numpy()).save(path)
    return path


def edit_weights(src: Path, dst: Path, edit) -> Path:
    """A copy of checkpoint `src` whose tensors went through edit(dict), with the same metadata."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(str(src))
    edit(tensors)
    save_file(tensors, str(dst), metadata=header)
    return dst


def one_line(proc, code: int, *texts: str) -> None:
    assert proc.returncode == code, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error:"), proc.stderr
    assert all(t in lines[0] for t in texts), proc.stderr


# ---- NaN/inf and integer weights are refused on load ------------------------------------------------------


def _nan(t):
    t["layer.0.weight"][0, 0, 0, 0] = float("nan")


def _inf(t):
    t["layer.0.bias"][3] = float("-inf")


def _int(t):
    t["layer.0.weight"] = t["layer.0.weight"].round().long()


@pytest.mark.parametrize(
    "edit, tensor, why",
    [
        (_nan, "layer.0.weight", "NaN/inf"),
        (_inf, "layer.0.bias", "NaN/inf"),
        (_int, "layer.0.weight", "int64"),
    ],
)
def test_damaged_weights_are_refused_naming_the_tensor(tmp_path, edit, tensor, why):
    good = untrained_checkpoint(tmp_path / "good")
    bad = edit_weights(good, tmp_path / "bad.safetensors", edit)
    with pytest.raises(CnnlabError, match=f"tensor '{tensor}' .*{why}") as e:
        load_checkpoint(bad)
    assert e.value.exit_code == EXIT_BAD_CHECKPOINT
    from cnnlab.models.weights import read_state  # --weights FILE (and --pretrained) read through this

    torch.save({"state_dict": load_file(str(bad))}, tmp_path / "bad.pth")
    for path in (bad, tmp_path / "bad.pth"):
        with pytest.raises(CnnlabError, match=f"tensor '{tensor}'") as e:
            read_state(path)
        assert e.value.exit_code == EXIT_BAD_CHECKPOINT


def test_batchnorm_counters_may_be_integers(tmp_path):
    """num_batches_tracked is int64 in every BatchNorm: the integer rule must not refuse it."""
    ckpt = untrained_checkpoint(tmp_path / "bn", "fastnet-bn")
    model, _ = load_checkpoint(ckpt)
    assert any(k.endswith("num_batches_tracked") for k in model.state_dict())


def test_nan_weights_predict_and_eval_exit_7_and_print_no_json(cli, run, digit_png, tmp_path):
    """The issue: predict printed "8 (8 nan%, ...)" with exit 0 and --json a bare NaN; eval said 10.30%."""
    bad = edit_weights(run / "best.safetensors", tmp_path / "bad.safetensors", _nan)
    proc = cli("predict", str(bad), str(digit_png), "--json", check=False)
    one_line(proc, 7, "layer.0.weight", "NaN/inf")
    assert proc.stdout == ""
    one_line(cli("eval", str(bad), check=False), 7, "layer.0.weight")
    state = torch.load(run / "state.pt", weights_only=True)
    state["model"]["layer.0.weight"] = state["model"]["layer.0.weight"].long()
    torch.save(state, tmp_path / "state.pt")
    one_line(cli("predict", str(tmp_path / "state.pt"), str(digit_png), check=False), 7, "int64")


def test_json_output_is_never_bare_nan():
    from cnnlab.cli import json_text

    assert json.loads(json_text([{"p": [0.5, 0.5]}])) == [{"p": [0.5, 0.5]}]
    with pytest.raises(CnnlabError, match=r"not finite at \[1\]\.probabilities\[2\]") as e:
        json_text([{}, {"probabilities": [0.1, 0.2, float("nan")]}])
    assert e.value.exit_code == EXIT_BAD_CHECKPOINT


def test_a_mismatch_is_one_short_line(tmp_path):
    """PyTorch lists every missing key in one line (15 kB for a ResNet); name a few and count them."""
    from cnnlab.checkpoint import load_weights
    from cnnlab.models import get_model

    small = get_model("resnet18", num_classes=10, in_channels=3, input_size=32).state_dict()
    big = get_model("resnet50", num_classes=10, in_channels=3, input_size=32)
    with pytest.raises(CnnlabError) as e:
        load_weights(big, small, "x.safetensors", "weights do not match model 'resnet50'")
    text = str(e.value)
    assert len(text) < 600 and "\n" not in text, text
    assert "shape mismatch(es)" in text and "name(s) missing from the file, e.g. " in text
    assert e.value.exit_code == EXIT_BAD_CHECKPOINT


# ---- exit 2 / 7 with one line, not exit 1 "unexpected error" ----------------------------------------------


@pytest.mark.parametrize("spec", ["translate=nan", "translate=inf", "erase=nan", "resized-crop=-inf"])
def test_non_finite_augment_values_are_usage_errors(spec):
    from cnnlab.data.augment import parse_spec

    with pytest.raises(CnnlabError, match="--augment") as e:
        parse_spec(spec)
    assert e.value.exit_code == 2


def test_translate_nan_through_the_cli(cli, tmp_path):
    proc = cli("train", *TINY, "--augment", "translate=nan", "--out", str(tmp_path / "r"), check=False)
    one_line(proc, 2, "translate must be a whole number")


def test_metadata_nested_100000_deep_is_exit_7(cli, tmp_path):
    from test_checkpoint_meta import rewrite_header

    ckpt = untrained_checkpoint(tmp_path / "c")
    (tmp_path / "c.json").write_text(NESTED)
    one_line(cli("eval", str(tmp_path / "c.json"), check=False), 7, "nested too deep")
    rewrite_header(ckpt, lambda meta: NESTED)
    one_line(cli("eval", str(ckpt), check=False), 7, "nested too deep")


def test_summary_refuses_an_input_that_cannot_fit_before_allocating(cli):
    """1x99999x99999: chapter-cnn's first fully connected layer alone would be ~19 TiB."""
    proc = cli("summary", "chapter-cnn", "--input", "1x99999x99999", check=False)
    one_line(proc, 2, "would need at least", "TiB")
    from cnnlab.inside.summary import memory_needed

    assert memory_needed("chapter-cnn", (1, 28, 28)) < 2**23  # the chapter's net: a few MiB


# ---- hand-edited resume state ------------------------------------------------------------------------------


def _state(run: Path) -> dict:
    return torch.load(run / "state.pt", weights_only=True)


EDITS = {
    "progress.epoch": lambda s: s["progress"].update(epoch=-5),
    "progress.step": lambda s: s["progress"].update(step=-1),
    "progress.best": lambda s: s["progress"].update(best=float("nan")),
    "progress.history": lambda s: s["progress"].update(history="abc"),
    "progress.history[0]": lambda s: s["progress"]["history"].__setitem__(0, [1, 2]),
    "progress": lambda s: s["progress"].update(extra=1),
    "rng": lambda s: s.update(rng="x"),
    "rng[0]": lambda s: s["rng"].__setitem__(0, 5),
    "world": lambda s: s.update(world=0),
    "meta.config": lambda s: s["meta"].update(config=[]),
    "optimizer": lambda s: s.update(optimizer=[1]),
}


@pytest.mark.parametrize("field", list(EDITS))
def test_every_edited_state_field_is_named(run, field):
    from cnnlab.training.resume_rules import check_state

    state = _state(run)
    check_state(state, run / "state.pt")  # the real one passes
    EDITS[field](state)
    with pytest.raises(CnnlabError, match=re.escape(f"resume state field '{field}'")) as e:
        check_state(state, run / "state.pt")
    assert e.value.exit_code == EXIT_BAD_CHECKPOINT


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda s: s["progress"].update(epoch=-5), "progress.epoch"),  # was accepted and trained
        (lambda s: s["rng"][0].update(python=5), "rng[0]"),  # was a TypeError
    ],
)
def test_resume_of_an_edited_state_exits_7_naming_the_field(cli, run, tmp_path, edit, field):
    out = Path(shutil.copytree(run, tmp_path / "run"))
    state = _state(out)
    edit(state)
    torch.save(state, out / "state.pt")
    proc = cli("train", *TINY, "--resume", "--out", str(out), check=False)
    one_line(proc, 7, f"'{field}'")


# ---- small ones ---------------------------------------------------------------------------------------------


def test_an_empty_cnnlab_cache_is_unset(monkeypatch, tmp_path):
    """CNNLAB_CACHE='' made every cache folder relative: `decoded/` appeared in the working folder."""
    from cnnlab.data.cache import cache_root
    from cnnlab.data.sources import cache_dir
    from cnnlab.models.weights import weights_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CNNLAB_CACHE", "")
    for folder in (cache_root(), cache_dir("mnist"), weights_dir()):
        assert folder.is_absolute() and str(folder).startswith(str(tmp_path / "xdg")), folder
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c" / "decoded"


def test_an_empty_cnnlab_cache_writes_nothing_into_the_working_folder(cli, shared_data, tmp_path):
    """Real MNIST through the decode cache, from an empty working folder."""
    work = tmp_path / "work"
    work.mkdir()
    env = {"CNNLAB_CACHE": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    args = (
        "plot",
        "samples",
        "mnist",
        "--data-dir",
        str(shared_data / "mnist"),
        "--count",
        "4",
        "--out",
        "s.png",
    )
    cli(*args, env=env, cwd=work)
    assert sorted(p.name for p in work.iterdir()) == ["s.png"]
    assert (tmp_path / "xdg" / "cnnlab" / "decoded").is_dir()


def test_temp_files_a_killed_run_left_are_removed_at_its_next_start(cli, run, tmp_path):
    """SIGKILL during atomic_write leaves `.NAME.XXXXXXXX.tmp`; the next start of that run removes them
    (and says so); a temp file of anything else in the folder is not the run's to remove."""
    out = Path(shutil.copytree(run, tmp_path / "run"))
    stale = [".last.safetensors.k3j_9x0a.tmp", ".state.pt.abcdefgh.tmp"]
    other = ".confusion.png.qwertyui.tmp"  # `eval --plot` may be writing it right now
    for name in (*stale, other):
        (out / name).write_bytes(b"partial")
    proc = cli("train", *TINY, "--resume", "--out", str(out))
    assert "removed 2 temporary file(s)" in proc.stderr, proc.stderr
    assert not any((out / name).exists() for name in stale) and (out / other).exists()


def test_more_processes_than_cores_is_refused_before_anything_starts(cli, tmp_path):
    from cnnlab.training.launch import check_nproc, usable_cpus

    n = usable_cpus() + 1
    proc = cli("train", *TINY, "--nproc", str(n), check=False, cwd=tmp_path)
    one_line(proc, 2, f"--nproc {n}", f"use --nproc {usable_cpus()} or fewer")
    assert list(tmp_path.iterdir()) == []  # no run folder made for workers that never start
    check_nproc(usable_cpus())  # as many as there are cores: fine


def test_os_sched_affinity_is_what_counts(monkeypatch):
    from cnnlab.training import launch

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert launch.usable_cpus() == 1
