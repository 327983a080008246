"""The compare stage on synthetic metrics files: the long per-seed table and the score summaries it writes agree
with the metrics and score files they come from, and with the comparison table beside them."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from recunlearn.io import write_json
from recunlearn.pipeline import layout
from recunlearn.report import density
from recunlearn.stages.compare import LONG_COLUMNS, SCORE_BINS, SCORE_RANGE, model_name, write_comparison

DATASET, BACKBONE = "d", "b"
REQUESTS = ["adversarial-1", "random-0.1"]
METHODS = ["none", "unlearnrec", "sisa"]
PREPARED = {"unlearnrec", "sisa"}
VARIANTS = {
    "reference": ["original", "retrain"],
    "none": ["none"],
    "unlearnrec": ["ie_only", "ie_ft"],
    "sisa": ["sisa"],
}
SIZES = {"deleted": 30, "remaining": 200, "non_edges": 300}


def _value(seed: int, rid: str, method: str, variant: str) -> float:
    """A distinct number per job and variant, so a row read from the wrong file shows."""
    return (1 + seed * len(variant)) * 0.01 + REQUESTS.index(rid) * 0.1 + list(VARIANTS).index(method)


def _scores(seed: int, rid: str, method: str, variant: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(f"{seed}/{rid}/{method}/{variant}".encode()))
    shift = _value(seed, rid, method, variant)
    return {s: rng.normal(shift * (k + 1), 1.0, n).astype(np.float32) for k, (s, n) in enumerate(SIZES.items())}


def _variant_metrics(seed: int, rid: str, method: str, variant: str, scores: dict) -> dict:
    v = _value(seed, rid, method, variant)
    summary = {
        s: {"mean": float(np.mean(a, dtype=np.float64)), "q50": float(np.median(a)), "n": int(a.size)}
        for s, a in scores.items()
    }
    return {
        "recall@20": v,
        "ndcg@20": v / 2,
        "mi_bf": 1 + v,
        "mi_ng": 2 + v,
        "df_auc": 0.5,
        "mia_member_rate": 0.1,
        "seconds": 10.0 if variant == "retrain" else 1.0 + seed,
        "request_edges": 40 + REQUESTS.index(rid),
        "deleted_after": summary["deleted"],
        "remaining_after": summary["remaining"],
        "nonedges_after": summary["non_edges"],
    }


@pytest.fixture
def run(tmp_path):
    """Metrics, scores and preparation reports of two seeds, as the unlearn, reference and prepare stages write."""
    cfg = {"results_dir": str(tmp_path / "results"), "seeds": [0, 1]}
    for seed in cfg["seeds"]:
        for kind, seconds in (("original", 5.0), ("attacked", 7.0)):
            for method in PREPARED:
                write_json(
                    layout.prepared_report(cfg, DATASET, BACKBONE, seed, kind, method), {"seconds": seconds + seed}
                )
        for rid in REQUESTS:
            for method, variants in VARIANTS.items():
                scores = {v: _scores(seed, rid, method, v) for v in variants}
                metrics = {
                    "request_edges": 40 + REQUESTS.index(rid),
                    "request_id": rid,
                    "method": method,
                    "variants": {v: _variant_metrics(seed, rid, method, v, scores[v]) for v in variants},
                }
                write_json(layout.unlearn_metrics(cfg, DATASET, BACKBONE, seed, rid, method), metrics)
                np.savez(
                    layout.unlearn_scores(cfg, DATASET, BACKBONE, seed, rid, method),
                    **{f"{v}__{s}": a for v, sets in scores.items() for s, a in sets.items()},
                )
    table = write_comparison(cfg, DATASET, BACKBONE, REQUESTS, METHODS, PREPARED)
    return cfg, table


def _long(cfg) -> pd.DataFrame:
    return pd.read_csv(layout.comparison_long(cfg, DATASET, BACKBONE))


def _summaries(cfg) -> dict:
    return json.loads(open(layout.score_summaries(cfg, DATASET, BACKBONE)).read())


def test_row_names():
    assert model_name("reference", "retrain") == "retrain"
    assert model_name("sisa", "sisa") == "sisa"
    assert model_name("unlearnrec", "ie_ft") == "unlearnrec/ie_ft"
    assert model_name("unlearnrec_no_lu", "ie_only") == "unlearnrec_no_lu/ie_only"


def test_long_table_has_one_row_per_request_model_and_seed_with_the_metrics_values(run):
    cfg, _ = run
    long = _long(cfg)
    assert list(long.columns) == LONG_COLUMNS
    models = ["original", "retrain", "none", "unlearnrec/ie_ft", "unlearnrec/ie_only", "sisa"]  # file order
    assert len(long) == len(models) * len(REQUESTS) * 2
    assert list(long[(long["seed"] == 0) & (long["request"] == "random-0.1")]["model"]) == models
    for _, row in long.iterrows():
        method, variant = row["method"], row["variant"]
        assert model_name(method, variant) == row["model"]
        assert row["recall@20"] == pytest.approx(_value(row["seed"], row["request"], method, variant))
        scores = _scores(row["seed"], row["request"], method, variant)
        assert row["deleted_mean"] == pytest.approx(np.mean(scores["deleted"], dtype=np.float64))
        assert row["deleted_median"] == pytest.approx(np.median(scores["deleted"]))
        assert row["remaining_mean"] == pytest.approx(np.mean(scores["remaining"], dtype=np.float64))
        assert row["nonedge_mean"] == pytest.approx(np.mean(scores["non_edges"], dtype=np.float64))
        assert row["request_edges"] == 40 + REQUESTS.index(row["request"])
        kind = "attacked" if row["request"].startswith("adversarial-") else "original"
        assert row["unlearned_from"] == kind
        expected_prep = (7.0 if kind == "attacked" else 5.0) + row["seed"] if method in PREPARED else 0.0
        assert row["prep_seconds"] == pytest.approx(expected_prep)


def test_comparison_table_is_the_long_table_averaged_over_seeds(run):
    cfg, table = run
    long = _long(cfg)
    csv = pd.read_csv(layout.comparison(cfg, DATASET, BACKBONE, "csv"))
    assert list(csv["model"]) == list(table["model"])
    assert list(zip(csv["request"], csv["model"])) == list(dict.fromkeys(zip(long["request"], long["model"])))
    means = long.groupby(["request", "model"])[["recall@20", "mi_ng", "seconds", "prep_seconds"]].mean()
    for _, row in csv.iterrows():
        for metric in means.columns:
            assert row[metric] == pytest.approx(means.loc[(row["request"], row["model"]), metric], rel=1e-5)
    assert {f"{m}_p" for m in ("recall@20", "ndcg@20", "mi_bf", "mi_ng")} <= set(csv.columns)


def test_score_summaries_are_histograms_of_each_jobs_scores_on_shared_bins(run):
    cfg, _ = run
    data = _summaries(cfg)
    assert data["bins"] == SCORE_BINS and data["range_quantiles"] == list(SCORE_RANGE)
    assert set(data["requests"]) == set(REQUESTS)
    for rid in REQUESTS:
        assert set(data["requests"][rid]) == {"0", "1"}
        for seed in (0, 1):
            entry = data["requests"][rid][str(seed)]
            edges = np.asarray(entry["edges"])
            assert len(edges) == SCORE_BINS and np.all(np.diff(edges) > 0)
            pooled = []
            for method, variants in VARIANTS.items():
                for variant in variants:
                    sets = entry["models"][model_name(method, variant)]
                    scores = _scores(seed, rid, method, variant)
                    pooled += list(scores.values())
                    for name, values in scores.items():
                        assert sets[name]["n"] == values.size
                        assert sets[name]["mean"] == pytest.approx(np.mean(values, dtype=np.float64))
                        assert sets[name]["counts"] == np.histogram(values, bins=edges)[0].tolist()
                        dens = density(sets[name]["counts"], edges)
                        assert float(np.sum(dens * np.diff(edges))) == pytest.approx(1.0)
            assert len(entry["models"]) == sum(len(v) for v in VARIANTS.values())
            assert edges[[0, -1]] == pytest.approx(np.quantile(np.concatenate(pooled), SCORE_RANGE))


def test_density_matches_matplotlib_hist():
    values = np.random.default_rng(0).normal(size=500)
    edges = np.linspace(-2, 2, 11)
    counts = np.histogram(values, bins=edges)[0]
    assert density(counts.tolist(), edges) == pytest.approx(np.histogram(values, bins=edges, density=True)[0])
