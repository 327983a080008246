"""`recunlearn forget` shares the unlearn stage's flow: a user's copy of a pipeline request gets that request's
numbers (the same reference seed rule), any other request a stable id; bad requests are refused, nothing written.

Runs the tiny config's data steps and the original model's training in-process (a few seconds), once per module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.golden import mismatches
from pipeline_helpers import ROOT
from recunlearn.data.split import load_split, read_edges
from recunlearn.stages.forget import FORGETTING_KEYS as FORGETTING
from recunlearn.stages.forget import user_request_id

GOLDEN = json.loads((ROOT / "tests/data/golden_tiny.json").read_text())
RUN = ("--dataset", "tiny", "--backbone", "lightgcn", "--seed", "0")
REQUEST = "random-0.05"


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory, tiny_project, recunlearn):
    """(config path, results folder) of the tiny config's data steps plus the trained original model."""
    tmp = tmp_path_factory.mktemp("forget")
    config = tiny_project(tmp)
    for step in (
        ["download", "--dataset", "tiny"],
        ["preprocess", "--dataset", "tiny"],
        ["requests", "--dataset", "tiny"],
        ["train", *RUN, "--kind", "original"],
    ):
        assert recunlearn(config, *step) == 0, step
    return config, tmp / "results" / "tiny"


@pytest.fixture
def forget(recunlearn):
    def run(config, request, out, *extra):
        return recunlearn(config, "forget", *RUN, "--request-file", request, "--out", out, *extra)

    return run


def raw_request(results, edges, path):
    """Write `edges` (internal ids) as a user would: raw ids, rows in another order."""
    split = load_split(results / "split")
    rows = "".join(f"{split.user_ids[u]}\t{split.item_ids[i]}\n" for u, i in edges[::-1])
    path.write_text("user\titem\n" + rows)
    return path


def variant_numbers(row):
    return {k: row[k] for k in (*FORGETTING, *(k for k in row if "@" in k))}, row["deleted_after"]["mean"]


def report_numbers(report):
    return {**report["forgetting"], **report["utility"]}, report["deleted_score_mean"]


@pytest.mark.parametrize("method", ["none", "finetune"])
def test_a_copy_of_a_pipeline_request_gets_the_unlearn_stage_numbers(
    trained_tiny, forget, recunlearn, tmp_path, capsys, method
):
    config, results = trained_tiny
    pipeline_request = read_edges(results / "requests" / f"{REQUEST}.tsv")
    request = raw_request(results, pipeline_request, tmp_path / "mine.tsv")
    assert forget(config, request, tmp_path / "out", "--method", method) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["request_id"] == REQUEST and report["request_edges"] == len(pipeline_request)
    # the unlearn stage, in-process on the same model, and the pipeline's recorded run agree with forget
    assert recunlearn(config, "unlearn", *RUN, "--request", REQUEST, "--method", method) == 0
    stage = json.loads((results / f"lightgcn/seed0/unlearn/{REQUEST}/{method}/metrics.json").read_text())
    golden = json.loads(GOLDEN[f"tiny/lightgcn/seed0/unlearn/{REQUEST}/{method}/metrics.json"])
    assert report_numbers(report) == variant_numbers(stage["variants"][method])
    assert mismatches(list(variant_numbers(golden["variants"][method])), list(report_numbers(report))) == []
    assert np.array_equal(read_edges(tmp_path / "out" / "request.tsv"), pipeline_request)


def test_another_request_gets_a_stable_id_from_its_edges(trained_tiny, forget, tmp_path, capsys):
    config, results = trained_tiny
    split = load_split(results / "split")
    edges = split.train[[0, 5, 9]]
    assert user_request_id(edges) == user_request_id(edges[::-1])
    assert user_request_id(edges) != user_request_id(split.train[[0, 5, 10]])
    internal = tmp_path / "internal.tsv"
    internal.write_text("user_idx\titem_idx\n" + "".join(f"{u}\t{i}\n" for u, i in edges))
    assert forget(config, internal, tmp_path / "a", "--method", "none") == 0
    first = json.loads(capsys.readouterr().out)
    assert forget(config, raw_request(results, edges, tmp_path / "raw.tsv"), tmp_path / "b", "--method", "none") == 0
    second = json.loads(capsys.readouterr().out)
    assert first["request_id"] == second["request_id"] == user_request_id(edges)
    assert first["request_id"].startswith("user-") and report_numbers(first) == report_numbers(second)
    remaining = read_edges(tmp_path / "a" / "remaining_train.tsv")
    assert len(remaining) == len(split.train) - 3 and (tmp_path / "a" / "model.pt").stat().st_size > 0


def test_bad_request_or_missing_preparation_is_one_line_and_writes_nothing(trained_tiny, forget, tmp_path, capsys):
    config, _ = trained_tiny
    request = tmp_path / "forget.tsv"
    request.write_text("user\titem\n999999\t1\n")
    assert forget(config, request, tmp_path / "bad", "--method", "none") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip().splitlines() == [captured.err.strip()]
    assert "forget.tsv: unknown user(s) 999999" in captured.err
    assert not (tmp_path / "bad").exists()
    u, i = load_split(trained_tiny[1] / "split").train[0]
    request.write_text(f"user_idx\titem_idx\n{u}\t{i}\n")
    assert forget(config, request, tmp_path / "unprepared", "--method", "unlearnrec") == 2
    err = capsys.readouterr().err
    assert "prepared/unlearnrec/state.pt" in err and "has not been prepared" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "unprepared").exists()
