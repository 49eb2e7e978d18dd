"""Checkpoint metadata is validated when loaded: a damaged or hand-edited field is one line naming it,
exit code 7 (not a TypeError/KeyError/JSONDecodeError); a .json given as CHECKPOINT is what is used."""

import json

import pytest
from conftest import untrained_checkpoint
from safetensors.torch import load_file, save_file

from cnnlab.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError


def rewrite_header(path, edit) -> None:
    """Re-save a .safetensors with its cnnlab header changed by edit(meta) (or replaced by a string)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["cnnlab"])
    new = edit(meta)
    save_file(
        load_file(str(path)), str(path), metadata={"cnnlab": new if isinstance(new, str) else json.dumps(new)}
    )


def _set(key, value):
    def edit(meta):
        meta[key] = value
        return meta

    return edit


def _unknown_kwarg(meta):
    meta["model_kwargs"]["dropout"] = 0.5
    return meta


def _drop(key):
    def edit(meta):
        del meta[key]
        return meta

    return edit


@pytest.mark.parametrize(
    "edit, field",
    [
        (_unknown_kwarg, "model_kwargs"),
        (_set("classes", ["a", "b", "c"]), "classes"),
        (_drop("mean"), "mean"),
        (_set("std", [0.0]), "std"),
        (_set("model", "alexnet"), "model"),
        (_set("input_shape", [3, 28, 28]), "input_shape"),
        (lambda meta: '{"model": "chapter-cnn",', "not valid JSON"),
    ],
)
def test_damaged_header_names_the_field(tmp_path, edit, field):
    ckpt = untrained_checkpoint(tmp_path / "c")
    rewrite_header(ckpt, edit)
    with pytest.raises(CnnlabError, match=field) as e:
        load_checkpoint(ckpt)
    assert e.value.exit_code == 7 and str(ckpt) in str(e.value)


def test_json_sidecar_is_what_is_used(tmp_path):
    ckpt = untrained_checkpoint(tmp_path / "c")
    sidecar = tmp_path / "c.json"
    meta = json.loads(sidecar.read_text())
    meta["classes"] = [f"digit {i}" for i in range(10)]
    sidecar.write_text(json.dumps(meta))
    _, used = load_checkpoint(sidecar)
    assert used["classes"][3] == "digit 3"
    _, header = load_checkpoint(ckpt)
    assert header["classes"][3] == "3"


def test_broken_sidecar_through_the_cli(cli, tmp_path):
    untrained_checkpoint(tmp_path / "c")
    (tmp_path / "c.json").write_text("{ not json")
    proc = cli("eval", str(tmp_path / "c.json"), check=False)
    assert proc.returncode == 7, proc.stderr
    assert "not valid JSON" in proc.stderr and "unexpected error" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_vgg_old_underscore_alias_loads(tmp_path):
    from cnnlab.checkpoint import save_checkpoint
    from cnnlab.models import get_model

    kwargs = {"num_classes": 10, "in_channels": 1, "input_size": 28, "width": 0.125}
    from conftest import MNIST_META

    save_checkpoint(
        tmp_path / "v",
        get_model("vgg11-bn", **kwargs),
        {"model": "vgg11_bn", "model_kwargs": kwargs, **MNIST_META},
    )
    model, meta = load_checkpoint(tmp_path / "v.safetensors")
    assert meta["model"] == "vgg11_bn" and type(model).__name__ == "VGG"
