# OMG-Seg for Detectron2: `make demo` (train + evaluate on the synthetic benchmark, CPU) and
# `make test` (lint with ruff, then the test suite). Both create/refresh the virtual environment
# first; nothing that is already installed is installed again.
VENV ?= .venv
PY := $(VENV)/bin/python
export DETECTRON2_DATASETS ?= $(CURDIR)/datasets
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test data clean-demo

setup:
	@bash tools/setup_env.sh

data: setup
	$(PY) datasets/prepare_synthetic.py

demo: setup
	$(PY) tools/run_demo.py

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest tests -q

clean-demo:
	rm -rf output/demo
