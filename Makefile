# Two commands for a fresh machine: `make book` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODE ?= quick
BOOK_CONFIG ?= $(wildcard configs/book-$(MODE).yaml)
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: install test test-full book bench clean

install: $(STAMP)

# Without a GPU, pin the CPU build of torch first so nothing pulls CUDA wheels.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -m pip install -q torch; \
	else \
	  $(PY) -m pip install -q torch==2.13.0; \
	fi
	$(PY) -m pip install -q -e '.[dev,book]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: install
	TQDM_DISABLE=1 $(PY) -m pytest -q -n 2 --dist loadfile

test-full: install
	TQDM_DISABLE=1 MDPL_FULL=1 $(PY) -m pytest -q -n 2 --dist loadfile

book: install
	$(PY) -m mdpl book --mode $(MODE) $(if $(BOOK_CONFIG),--config $(BOOK_CONFIG))

bench: install
	$(PY) -m mdpl bench all

clean:
	rm -rf book/_build build runs
