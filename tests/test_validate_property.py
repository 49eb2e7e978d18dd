"""Property: for any value of any TrainConfig field (negative, zero, NaN, inf, huge, wrong type, or
valid), either the config is refused with a CnnlabError that names that field's flag, or a one-step
run on mnist-sample completes. Never another exception. Fields other lanes add are drawn from the
generic strategy automatically (the test iterates dataclasses.fields)."""

import math
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.options import flag_of
from cnnlab.training.config import TrainConfig
from cnnlab.training.loop import train

# a one-step run: the smallest that still reads data, builds the model, steps, evaluates and saves
BASE = {"dataset": "mnist-sample", "limit_train": 64, "batch_size": 32, "max_steps": 1, "epochs": 1}

EDGE_NUMBERS = [0, 1, -1, 2, 3, 0.5, 0.999, 1e-9, -0.0, 2**31, 2**63, 10**30, 1e300]
EDGE_FLOATS = [math.nan, math.inf, -math.inf]
ANY = st.one_of(
    st.sampled_from(EDGE_NUMBERS + EDGE_FLOATS),
    st.integers(-10, 10),
    st.floats(-10, 10),
    st.booleans(),
    st.none(),
    st.text(max_size=6),
    st.lists(st.floats(-2, 2), max_size=3),
    st.just(object()),
)
# names: a valid one that runs quickly here, misspellings, and junk (a valid "mnist" would download)
NAMES = {
    "model": ["chapter-cnn", "fastnet", "resnt18", "", "Chapter-CNN"],
    "dataset": ["mnist-sample", "mnist-smaple", "imagenet", ""],
    "optimizer": ["adam", "adamw", "sgd", "adamm", "SGD"],
    "schedule": ["constant", "onecycle", "cosine", "step", "exp"],
    "recipe": [None, "fast", "fats", ""],
    "augment": ["none", "translate=2", "erase=0.25", "flip=0.5", "translate=99", "spin=1", ""],
}


def value_for(name: str):
    return st.one_of(st.sampled_from(NAMES[name]), ANY) if name in NAMES else ANY


CASES = st.sampled_from([f.name for f in fields(TrainConfig)]).flatmap(
    lambda name: st.tuples(st.just(name), value_for(name))
)


@pytest.fixture(autouse=True)
def restore_torch_globals():
    """--threads and --deterministic change process-wide torch settings: give them back."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)
    torch.backends.mkldnn.deterministic = False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_any_value_is_refused_by_name_or_runs(case):
    name, value = case
    with tempfile.TemporaryDirectory() as tmp:
        if name == "out" and isinstance(value, str):
            value = str(Path(tmp) / "o" / value)  # wherever it points, keep it inside the temp folder
        kwargs = {**BASE, "out": str(Path(tmp) / "run"), name: value}
        try:
            cfg = TrainConfig(**kwargs)
        except CnnlabError as e:
            assert e.exit_code == 2
            assert flag_of(name) in str(e), f"{name}={value!r}: {e}"
            return
        threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        try:
            summary = train(cfg, json_mode=True)
        except CnnlabError as e:  # refused once the data is known (e.g. --val-split leaves no images)
            assert flag_of(name) in str(e), f"{name}={value!r}: {e}"
            return
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(det)
        assert summary["epochs"] == 1 and Path(summary["checkpoint"]).is_file(), (name, value)
