"""What a checkpoint says about itself, checked field by field when it is loaded.

The safetensors header (`{"cnnlab": JSON}`) is the one source of truth; `NAME.json` is a readable copy
written with it (when given as CHECKPOINT, its content is what is used), and a run's `state.pt` carries
the same dictionary. A hand-edited or damaged field ends in one line naming it, exit code 7, instead of
a TypeError deep inside a model builder.
"""

import json
from pathlib import Path

from cnnlab.errors import EXIT_BAD_CHECKPOINT, CnnlabError
from cnnlab.i18n import _

REQUIRED = ("model", "model_kwargs", "dataset", "classes", "mean", "std", "input_shape")


def bad(path, field: str, why: str) -> CnnlabError:
    """`why`: what is wrong with the field, a predicate already in the current language ("is missing")."""
    return CnnlabError(
        _("{path}: checkpoint metadata field {field} {why}", path=path, field=repr(field), why=why),
        EXIT_BAD_CHECKPOINT,
    )


def parse_meta(text: str, path) -> dict:
    """JSON text -> validated metadata dict."""
    try:
        meta = json.loads(text)
    except RecursionError:  # brackets nested thousands deep: json's parser recurses per level
        raise CnnlabError(
            _("{path}: checkpoint metadata is not valid JSON (nested too deep)", path=path),
            EXIT_BAD_CHECKPOINT,
        ) from None
    except ValueError as e:
        raise CnnlabError(
            _("{path}: checkpoint metadata is not valid JSON ({detail})", path=path, detail=e),
            EXIT_BAD_CHECKPOINT,
        ) from None
    return validate_meta(meta, path)


def read_sidecar(path: Path) -> dict:
    """A checkpoint's `.json` copy, validated."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CnnlabError(
            _("{path}: unreadable ({detail})", path=path, detail=e), EXIT_BAD_CHECKPOINT
        ) from None
    return parse_meta(text, path)


def _numbers(value, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def validate_meta(meta, path) -> dict:
    """Check every field the loaders use; returns meta unchanged or raises naming the first bad field."""
    from cnnlab.models import canonical_name, list_models

    if not isinstance(meta, dict):
        raise CnnlabError(
            _("{path}: checkpoint metadata is not a JSON object", path=path), EXIT_BAD_CHECKPOINT
        )
    for field in REQUIRED:
        if field not in meta:
            raise bad(path, field, _("is missing"))
    if not isinstance(meta["model"], str) or canonical_name(meta["model"]) not in list_models():
        raise bad(path, "model", _("names no registered model ({model})", model=repr(meta["model"])))
    kwargs = meta["model_kwargs"]
    if not isinstance(kwargs, dict):
        raise bad(path, "model_kwargs", _("is not an object"))
    for key in ("num_classes", "in_channels", "input_size"):
        if not isinstance(kwargs.get(key), int) or isinstance(kwargs.get(key), bool) or kwargs[key] < 1:
            raise bad(
                path,
                f"model_kwargs.{key}",
                _("must be a positive integer, got {value}", value=repr(kwargs.get(key))),
            )
    classes = meta["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise bad(path, "classes", _("must be a list of names"))
    if len(classes) != kwargs["num_classes"]:
        raise bad(
            path,
            "classes",
            _(
                "has {n} names but the model has {outputs} outputs",
                n=len(classes),
                outputs=kwargs["num_classes"],
            ),
        )
    c = kwargs["in_channels"]
    for field in ("mean", "std"):
        if not _numbers(meta[field], c):
            raise bad(
                path, field, _("must be a list of {n} number(s), got {value}", n=c, value=repr(meta[field]))
            )
    if any(s <= 0 for s in meta["std"]):
        raise bad(path, "std", _("must be positive, got {value}", value=repr(meta["std"])))
    shape = meta["input_shape"]
    want = [c, kwargs["input_size"], kwargs["input_size"]]
    if shape != want:
        raise bad(
            path,
            "input_shape",
            _("is {shape}, but model_kwargs describe {want}", shape=repr(shape), want=want),
        )
    if not isinstance(meta["dataset"], str):
        raise bad(path, "dataset", _("must be a name"))
    if "config" in meta and not isinstance(meta["config"], dict):
        raise bad(path, "config", _("must be an object"))
    return meta


def build_from_meta(meta: dict, path):
    """The model the metadata describes; a kwarg its builder does not take is a bad field, not a crash."""
    from cnnlab.models import get_model

    try:
        return get_model(meta["model"], **meta["model_kwargs"])
    except TypeError as e:
        raise bad(
            path,
            "model_kwargs",
            _("does not fit model {model} ({detail})", model=repr(meta["model"]), detail=e),
        ) from None
    except (ValueError, ZeroDivisionError, RuntimeError) as e:
        raise bad(
            path,
            "model_kwargs",
            _("cannot build model {model} ({detail})", model=repr(meta["model"]), detail=e),
        ) from None


def tta_of(meta: dict) -> bool:
    """Whether the run evaluated with test-time augmentation (so eval/predict/serve do the same)."""
    return bool((meta.get("config") or {}).get("tta", False))
