# Set-up on a fresh machine with only Python 3 and git:
#   make demo   -> .venv, torch 2.13.0 (CPU build where the machine has one), lstmkit, its C++ kernel, then `lstmkit quickstart`
#   make test   -> the same set-up, then ruff, mypy, the C++ kernel (built once) and the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
# Extra pip arguments for the torch install, e.g. TORCH_PIP_ARGS="--index-url <a CPU-only wheel index>"
# on a machine whose pip would otherwise fetch a CUDA build (here pip's config finds the +cpu wheel).
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.lstmkit-installed

.PHONY: demo test setup kernels bench clean

setup: $(STAMP)

# torch first, alone, so that resolving the project's own `torch>=2.6` (no CVE-2025-32434) installs nothing more.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[audio,parquet,export,serve,track,tune,dev]"
	touch $(STAMP)

# the C++ LSTM kernel is compiled once here, up front (a no-op when it is cached: it is shared by
# every checkout and venv of this user with the same torch), so no run or test waits for it. Without
# a C++ compiler it fails in one line and lstmkit uses its slower fused path: make carries on ("-").
kernels: $(STAMP)
	-$(VENV)/bin/lstmkit build-kernels

demo: kernels
	$(VENV)/bin/lstmkit quickstart

# lint, format and types first (seconds), then the tests
test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	-$(VENV)/bin/lstmkit build-kernels
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
