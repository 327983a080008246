"""benchmarks/bench_propagation.py on the tiny dataset: it must keep running and print one row per dimension.

Its timings are measured by running it on ML-1M (docs/decisions.md, section "ML-1M"), never asserted here."""

from __future__ import annotations

import importlib.util
import sys

from pipeline_helpers import ROOT


def test_prints_one_row_per_dimension_with_the_epoch_it_implies(
    tmp_path, tiny_project, recunlearn, capsys, monkeypatch
):
    config = tiny_project(tmp_path)
    for step in (["download", "--dataset", "tiny"], ["preprocess", "--dataset", "tiny"]):
        assert recunlearn(config, *step) == 0, step
    spec = importlib.util.spec_from_file_location("bench_propagation", ROOT / "benchmarks/bench_propagation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    split = tmp_path / "results" / "tiny" / "split"
    monkeypatch.setattr(
        sys, "argv", ["bench", str(split), "--dims", "4,8", "--batch", "64", "--repeats", "1", "--threads", "1"]
    )
    bench.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| 4", "| 8"]
    assert all(row.rstrip(" |").endswith(" s") and "GB/s" in row for row in rows)
