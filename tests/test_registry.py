"""The model registry: no hand-kept list of families, duplicate names refused, one naming convention
with the old spellings kept as aliases."""

import re

import pytest

import cnnlab.models as models
from cnnlab.models import canonical_name, get_model, list_models, register_model


def test_names_follow_one_convention():
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9.]+)*", n) for n in list_models()), list_models()
    assert {"vgg11-bn", "googlenet-tv", "chapter-cnn"} <= set(list_models())
    assert "vgg11_bn" not in list_models() and canonical_name("vgg11_bn") == "vgg11-bn"
    assert type(
        get_model("googlenet_tv", num_classes=10, in_channels=1, input_size=28, width=0.25)
    ).__name__ == ("GoogLeNet")


def test_registering_a_taken_name_or_alias_is_an_error():
    list_models()
    with pytest.raises(ValueError, match="registered twice"):
        register_model("chapter-cnn")(lambda **kw: None)
    with pytest.raises(ValueError, match="registered twice"):
        register_model("brand-new", aliases=("vgg11_bn",))(lambda **kw: None)
    assert "brand-new" not in list_models()
    with pytest.raises(ValueError, match="hyphens"):
        register_model("My_Net")


def test_a_new_model_file_needs_no_list(tmp_path, monkeypatch):
    """A module with @register_model in the models package is found by listing the package."""
    (tmp_path / "tinynet.py").write_text(
        '"""test family"""\nimport torch.nn as nn\nfrom cnnlab.models import register_model\n\n'
        '@register_model("tiny-net")\ndef tiny(**kw):\n    return nn.Flatten()\n'
    )
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    monkeypatch.setattr(models, "_loaded", False)
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    monkeypatch.setattr(models, "_ALIASES", dict(models._ALIASES))
    import sys

    monkeypatch.delitem(sys.modules, "cnnlab.models.tinynet", raising=False)
    # already-imported families are not re-run by import_module, so only the new file registers
    assert "tiny-net" in models.list_models()
