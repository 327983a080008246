"""benchmarks/bench_unlearnrec.py on the tiny dataset: it must keep running, time the IE's parts apart and build the
adversarial request's footprint. Its timings are measured on ML-1M (README, section "MovieLens-1M"), never here."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from pipeline_helpers import ROOT
from recunlearn.data.split import load_split


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # it imports bench_backbones as a sibling
    spec = importlib.util.spec_from_file_location("bench_unlearnrec", ROOT / "benchmarks/bench_unlearnrec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_every_node_request_touches_every_user_and_item_with_training_edges(bench):
    train = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0], [3, 3], [1, 3]])
    request = bench.every_node_request(train, seed=0)
    assert set(request[:, 0]) == {0, 1, 2, 3} and set(request[:, 1]) == {0, 1, 2, 3}
    assert {tuple(e) for e in request} <= {tuple(e) for e in train}
    assert len(request) == len(np.unique(request, axis=0)) <= 8


def test_prints_the_ie_parts_apart_and_their_sum(tmp_path, tiny_project, recunlearn, capsys, monkeypatch, bench):
    config = tiny_project(tmp_path)
    for step in (["download", "--dataset", "tiny"], ["preprocess", "--dataset", "tiny"]):
        assert recunlearn(config, *step) == 0, step
    split = tmp_path / "results" / "tiny" / "split"
    argv = ["bench", "--split", str(split), "--dim", "8", "--request", "every-node", "--retrain-epochs", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--threads", "1"])
    bench.main()
    out = capsys.readouterr().out
    tiny = load_split(split)
    assert f"on {tiny.n_users} users and {tiny.n_items} items" in out  # every node of the split is touched
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in out.splitlines() if line.startswith("| IE")}
    parts = [float(rows[f"IE forward: {p}"].removesuffix(" ms")) for p in bench.IE_PARTS]
    total = float(rows["IE forward with the propagation"].removesuffix(" ms"))
    own = float(rows["IE forward without the propagation (request graph + encoder)"].removesuffix(" ms"))
    assert all(p > 0 for p in parts)
    assert own == pytest.approx(parts[0] + parts[1], abs=0.11)  # each printed to 0.1 ms
    assert parts[2] <= total
