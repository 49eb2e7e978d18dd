"""cnnlab: train, measure, look inside and serve convolutional image classifiers.

The Python API lives here and is loaded lazily: `import cnnlab` imports no torch, matplotlib or
FastAPI; each name imports its home module on first use. See `cnnlab.__all__` and the README section
"Use it from Python".
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (the commands, cnnlab.commands, call the same functions). No module
# of the package is named like one of these (tests/test_api.py): importing it would hide the function.
_API = {
    "get_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "load_dataset": "cnnlab.data",
    "list_datasets": "cnnlab.data",
    "TrainConfig": "cnnlab.training.config",
    "train": "cnnlab.api",
    "load_checkpoint": "cnnlab.checkpoint",
    "evaluate": "cnnlab.api",
    "predict": "cnnlab.api",
    "summary": "cnnlab.api",
    "explain": "cnnlab.inside.explain",
    "plot_curves": "cnnlab.inside.pictures",
    "plot_confusion": "cnnlab.inside.pictures",
    "plot_top_losses": "cnnlab.inside.pictures",
    "plot_samples": "cnnlab.inside.pictures",
    "plot_filters": "cnnlab.inside.pictures",
    "plot_feature_maps": "cnnlab.inside.pictures",
    "plot_gradcam": "cnnlab.inside.pictures",
    "gradcam_for": "cnnlab.inside.gradcam",
    "CnnlabError": "cnnlab.errors",
    "set_language": "cnnlab.i18n",
}
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # cached: the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
