# Two commands on a fresh clone: `make demo` (train on the bundled MNIST sample) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test test-all lint format i18n clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[all,dev]'
	# torchvision: an independent reference in tests only (never imported by cnnlab); its compiled ops do
	# not load on the CPU torch, so --no-deps keeps pip from replacing torch
	$(PY) -m pip install -q --no-deps torchvision==0.28.0
	touch $@

demo: setup
	$(VENV)/bin/cnnlab train --dataset mnist-sample --epochs 10 --lr 3e-3 --schedule onecycle --out runs/demo --overwrite

# one pytest worker per core (at most 4), each test file kept on one worker so its module fixtures run once
test: setup
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile

test-all: setup
	$(PY) -m pytest -q -m ''

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: setup
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

# the Korean catalogue against the code: missing messages, unused ones, placeholders that differ
# (I18N_FLAGS=--write adds the missing ids with "" to fill in and drops the unused ones)
i18n: setup
	$(PY) -m cnnlab.i18n.extract $(I18N_FLAGS)

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
