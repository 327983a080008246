"""benchmarks/bench_unlearning.py on the tiny dataset: it must keep working, and judge as the pipeline does.

Only the benchmark's bookkeeping is checked here (rows, repeats, the forgetting error against its own Retrain,
preparation shown apart); its timings are measured by running it, never asserted in a test.
"""

from __future__ import annotations

import importlib.util

import pytest

from pipeline_helpers import ROOT
from recunlearn.config import load_config

METHODS = ["none", "gif", "unlearnrec", "sisa"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_unlearning", ROOT / "benchmarks/bench_unlearning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cfg(tiny_project, tmp_path_factory):
    return load_config(tiny_project(tmp_path_factory.mktemp("bench")), {"methods": METHODS})


@pytest.fixture(scope="module", params=["random-0.05", "adversarial-0.5"])
def measured(request, bench, cfg):
    return request.param, bench.run(cfg, "tiny", "lightgcn", request.param, METHODS, repeats=2, seed=0)


def test_every_method_and_retrain_is_repeated_and_judged(measured):
    _, (rows, split, request) = measured
    assert list(rows) == ["retrain", "none", "gif", "unlearnrec/ie_only", "unlearnrec/ie_ft", "sisa"]
    for name, row in rows.items():
        assert len(row["seconds"]) == 2 and all(s > 0 for s in row["seconds"]), name
        assert 0 < row["metrics"]["recall@20"] <= 1
        assert 0 <= row["metrics"]["rank_ks"] <= 1
    assert len(request) and len(split.train)


def test_the_forgetting_error_is_against_the_benchmarks_own_retrain(measured):
    request_id, (rows, _, _) = measured
    assert rows["retrain"]["metrics"]["rank_ks"] == 0 and rows["retrain"]["metrics"]["auc_error"] == 0
    none = rows["none"]["metrics"]
    # No unlearning keeps the deleted edges ranked as the original model did, unlike the model trained without them
    assert none["rank_ks"] > 0 and none["auc_error"] > 0
    if request_id.startswith("adversarial"):
        assert none["rank_shift"] > 0  # injected edges rank higher than after retraining: under-forgetting


def test_preparation_is_shown_apart_and_the_table_blanks_no_unlearnings_speedup(bench, measured):
    _, (rows, _, _) = measured
    assert rows["unlearnrec/ie_only"]["prep"] == rows["unlearnrec/ie_ft"]["prep"] > 0
    assert rows["sisa"]["prep"] > 0 and rows["gif"]["prep"] == 0
    lines = bench.table(rows).splitlines()
    assert lines[2].startswith("| retrain |") and "to best" in lines[2] and "(reference)" in lines[2]
    none = next(line for line in lines if line.startswith("| none |")).split(" | ")
    assert none[-2] == "-"
    gif = next(line for line in lines if line.startswith("| gif |")).split(" | ")
    retrain_median = sorted(rows["retrain"]["seconds"])[0] / 2 + sorted(rows["retrain"]["seconds"])[1] / 2
    gif_median = sum(rows["gif"]["seconds"]) / 2
    assert gif[-2] == f"{retrain_median / gif_median:.1f}x"
