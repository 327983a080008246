# Entry points for a fresh machine (see README and tests/README.md):
#   make run        create .venv if missing, install, run the default pipeline (snakemake), write the report,
#                   record the results for DVC (dvc commit: `dvc status` is then clean)
#   make test       create .venv if missing, install everything ('.[dev]'), lint, run the whole suite and print
#                   its slowest tests (CI: .ci/run)
#   make test-fast  the fast tier only: no pipeline runs, no network (budget: 3 minutes)
#   make test-slurm install and start a single-node Slurm (scripts/slurm-localhost.sh, needs root), then run the
#                   tiny pipeline through it with the slurm profile (tests/cluster/; about 5 minutes)
#   make lint       ruff lint and format check
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed
LINTED := src tests benchmarks notebooks
FAST := not pipeline and not network and not slurm

export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test test-fast test-slurm lint benchmark dvc-yaml clean-results

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

lint: $(STAMP)
	ruff check $(LINTED)
	ruff format --check $(LINTED)

test: lint
	pytest -q --durations=15

test-fast: $(STAMP)
	pytest -q -m "$(FAST)" --durations=15

test-slurm: $(STAMP)
	scripts/slurm-localhost.sh
	pytest -q -m slurm tests/cluster

benchmark: $(STAMP)
	python benchmarks/bench_backbones.py

dvc-yaml: $(STAMP)
	recunlearn dvc-yaml

clean-results:
	rm -rf results/ml-100k results/raw results/logs results/tiny .snakemake
