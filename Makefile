# Two entry points for a fresh machine (see README):
#   make run    create .venv if missing, install, run the default pipeline (snakemake), write the report,
#               record the results for DVC (dvc commit: `dvc status` is then clean)
#   make test   create .venv if missing, install with test extras, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed

export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test benchmark dvc-yaml clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	snakemake --cores $(CORES)
	snakemake --report results/report.html
	dvc commit --force --quiet
	snakemake --touch --cores 1 --quiet  # dvc commit rewrites some outputs: restore Snakemake's mtime order

test: $(STAMP)
	pytest -q

benchmark: $(STAMP)
	python benchmarks/bench_backbones.py

dvc-yaml: $(STAMP)
	recunlearn dvc-yaml

clean-results:
	rm -rf results/ml-100k results/raw results/logs results/tiny .snakemake
