# Two commands on a fresh machine (see README):
#   make demo   - set up, then run the main job end to end (train -> export -> verify -> run)
#   make test   - set up, then run the test suite (CPU only, the default markers)
# The environment is a local venv; torch is pinned to a CPU build so setup never pulls CUDA.

PYTHON ?= python3
VENV ?= .venv
# Where a CPU build of torch comes from. On your own x86_64 Linux machine, PyPI's torch is a CUDA
# build: use  make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"  for CPU.
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= cpu,train,export,openvino,flow,dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m perceptual_edge.demo --out demo-out

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

clean:
	rm -rf demo-out .pytest_cache
