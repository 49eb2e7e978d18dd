"""cnnlab: train, measure, look inside and serve convolutional image classifiers.

The Python API lives here and is loaded lazily: `import cnnlab` imports no torch, matplotlib or
FastAPI; each name imports its home module on first use. See `cnnlab.__all__` and the README section
"Use it from Python".
"""

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> module that defines it (the CLI uses the same functions)
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


class _Package(types.ModuleType):
    """`cnnlab.evaluate` and `cnnlab.predict` are API functions, but also the names of the modules behind
    the `eval` and `predict` commands. Importing such a module would make Python set it as an attribute
    of this package, hiding the function; that one assignment is skipped (the module stays importable:
    `from cnnlab.evaluate import predict_logits` reads sys.modules)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
