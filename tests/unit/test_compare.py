"""The compare stage on synthetic metrics files: the long per-seed table and the score summaries it writes agree
with the metrics and score files they come from, and with the comparison table beside them."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from recunlearn.errors import RecUnlearnError
from recunlearn.io import write_json
from recunlearn.pipeline import layout
from recunlearn.report import SCORE_SETS, density
from recunlearn.stages.compare import (
    SCORE_BINS,
    SCORE_RANGE,
    long_columns,
    model_name,
    uninformative_requests,
    write_comparison,
)

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
KS = [10, 20]


def _value(seed: int, rid: str, method: str, variant: str) -> float:
    """A distinct number per job and variant, so a row read from the wrong file shows."""
    return (1 + seed * len(variant)) * 0.01 + REQUESTS.index(rid) * 0.1 + list(VARIANTS).index(method)


def _scores(seed: int, rid: str, method: str, variant: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(f"{seed}/{rid}/{method}/{variant}".encode()))
    shift = _value(seed, rid, method, variant)
    out = {s: rng.normal(shift * (k + 1), 1.0, n).astype(np.float32) for k, (s, n) in enumerate(SIZES.items())}
    out["deleted_percentile"] = rng.uniform(0, 1, SIZES["deleted"]) ** (1 + shift)
    return out


def _variant_metrics(seed: int, rid: str, method: str, variant: str, scores: dict) -> dict:
    v = _value(seed, rid, method, variant)
    summary = {
        s: {"mean": float(np.mean(a, dtype=np.float64)), "q50": float(np.median(a)), "n": int(a.size)}
        for s, a in scores.items()
    }
    retrain = variant == "retrain"
    return {
        "recall@10": v / 3,
        "ndcg@10": v / 4,
        "recall@20": v,
        "ndcg@20": v / 2,
        "a_igf@10": v / 5,
        "a_igf@20": v / 6,
        "mi_bf": 1 + v,
        "mi_ng": 2 + v,
        "auc_deleted_vs_nonedges": 0.5 + v / 10,
        "auc_deleted_vs_remaining": 0.4,
        "mia_member_rate": 0.1 + v / 100,
        "mia_auc": 0.6,
        "deleted_percentile_mean": float(scores["deleted_percentile"].mean()),
        "seconds": 10.0 if retrain else 1.0 + seed,
        **({"seconds_total": 14.0} if retrain else {}),
        "request_edges": 40 + REQUESTS.index(rid),
        "deleted_after": summary["deleted"],
        "remaining_after": summary["remaining"],
        "nonedges_after": summary["non_edges"],
        **({"info": {"shards_retrained": 1 + seed}} if method == "sisa" else {}),
    }


@pytest.fixture
def run(tmp_path):
    """Metrics, scores and preparation reports of two seeds, as the unlearn, reference and prepare stages write."""
    cfg = {"results_dir": str(tmp_path / "results"), "seeds": [0, 1], "evaluation": {"ks": KS}}
    for seed in cfg["seeds"]:
        for kind, seconds in (("original", 5.0), ("attacked", 7.0)):
            for method in PREPARED:
                report = {"seconds": seconds + seed}
                if method == "unlearnrec":  # the one method here that selects a pre-training checkpoint
                    report["selected_epoch"] = 10 * (seed + 1) + (kind == "attacked")
                write_json(layout.prepared_report(cfg, DATASET, BACKBONE, seed, kind, method), report)
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
    assert list(long.columns) == long_columns(KS)
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
        if method == "unlearnrec":
            assert row["selected_epoch"] == 10 * (row["seed"] + 1) + (kind == "attacked")
        else:
            assert np.isnan(row["selected_epoch"])


def test_the_table_shows_the_selected_pre_training_epoch(run):
    cfg, _ = run
    csv = pd.read_csv(layout.comparison(cfg, DATASET, BACKBONE, "csv")).set_index(["request", "model"])
    assert csv.loc[("random-0.1", "unlearnrec/ie_only"), "selected_epoch"] == 15  # mean of seeds' 10 and 20
    assert np.isnan(csv.loc[("random-0.1", "sisa"), "selected_epoch"])
    header = open(layout.comparison(cfg, DATASET, BACKBONE, "md")).read().splitlines()[2]
    assert "selected_epoch" in header


def test_the_table_shows_how_many_shards_a_sharded_method_retrained(run):
    _, table = run
    sisa = table[table["model"] == "sisa"]
    assert len(sisa) == len(REQUESTS) and (sisa["shards_retrained"] == 1.5).all()  # seeds 0 and 1: 1 and 2 shards
    assert table[table["model"] != "sisa"]["shards_retrained"].isna().all()


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


def test_forgetting_error_is_measured_against_retrain_of_the_same_request_and_seed(run):
    cfg, _ = run
    long = _long(cfg)
    for _, row in long.iterrows():
        mine = _scores(row["seed"], row["request"], row["method"], row["variant"])["deleted_percentile"]
        retrain = _scores(row["seed"], row["request"], "reference", "retrain")["deleted_percentile"]
        assert row["rank_ks"] == pytest.approx(ks_2samp(mine, retrain).statistic)
        assert row["rank_shift"] == pytest.approx(mine.mean() - retrain.mean())
        v, r = (
            _value(row["seed"], row["request"], m, x)
            for m, x in ((row["method"], row["variant"]), ("reference", "retrain"))
        )
        assert row["auc_error"] == pytest.approx(abs(v - r) / 10)
    retrain_rows = long[long["model"] == "retrain"]
    assert (retrain_rows[["rank_ks", "rank_shift", "auc_error"]] == 0).all().all()
    assert (long[long["model"] != "retrain"]["rank_ks"] > 0).all()


def test_speedup_is_against_retrains_time_to_best_and_both_retrain_times_are_shown(run):
    cfg, _ = run
    csv = pd.read_csv(layout.comparison(cfg, DATASET, BACKBONE, "csv"))
    assert (csv["retrain_seconds_to_best"] == 10.0).all() and (csv["retrain_seconds_total"] == 14.0).all()
    methods = csv[~csv["model"].isin(["original", "retrain", "none"])]
    assert len(methods) and methods["speedup"].to_numpy() == pytest.approx(10.0 / methods["seconds"].to_numpy())
    # the references and No unlearning (which forgets nothing) get no speed-up nor break-even
    blank = csv[csv["model"].isin(["original", "retrain", "none"])]
    assert len(blank) and blank[["speedup", "break_even_requests"]].isna().all().all()
    retrain_rate = csv[csv["model"] == "retrain"].set_index("request")["mia_member_rate"]
    assert csv["retrain_mia_member_rate"].to_numpy() == pytest.approx(csv["request"].map(retrain_rate).to_numpy())
    md = open(layout.comparison(cfg, DATASET, BACKBONE, "md")).read()
    for column in ("recall@10", "ndcg@20", "a_igf@20", "rank_ks", "auc_deleted_vs_remaining", "mia_auc"):
        assert column in md.splitlines()[2]


def test_a_request_where_no_unlearning_already_matches_retrain_is_flagged_as_uninformative(run):
    cfg, table = run
    room = table.set_index(["request", "model"])["room_to_forget"]
    none = table[table["model"] == "none"].set_index("request")["rank_ks"]
    for rid in REQUESTS:  # the request's No-unlearning error, on every row of that request
        assert (room.xs(rid, level="request") == none[rid]).all() and none[rid] > 0.02
    md = open(layout.comparison(cfg, DATASET, BACKBONE, "md")).read()
    assert "cannot tell methods apart" not in md
    # No unlearning's deleted edges placed exactly as Retrain's on random-0.1 (for every seed): nothing to forget
    for seed in cfg["seeds"]:
        pct = dict(np.load(layout.unlearn_scores(cfg, DATASET, BACKBONE, seed, "random-0.1", "reference")))
        path = layout.unlearn_scores(cfg, DATASET, BACKBONE, seed, "random-0.1", "none")
        none_scores = dict(np.load(path))
        none_scores["none__deleted_percentile"] = pct["retrain__deleted_percentile"]
        np.savez(path, **none_scores)
    table = write_comparison(cfg, DATASET, BACKBONE, REQUESTS, METHODS, PREPARED)
    assert uninformative_requests(table) == ["random-0.1"]
    md = open(layout.comparison(cfg, DATASET, BACKBONE, "md")).read()
    assert "on random-0.1: there the forgetting columns cannot tell methods apart" in md


def test_a_missing_metric_is_one_error_naming_the_row(run):
    cfg, _ = run
    path = layout.unlearn_metrics(cfg, DATASET, BACKBONE, 1, "random-0.1", "sisa")
    data = json.loads(open(path).read())
    data["variants"]["sisa"]["recall@10"] = None
    write_json(path, data)
    with pytest.raises(RecUnlearnError, match=r"recall@10 in random-0.1/sisa \(seed 1\)"):
        write_comparison(cfg, DATASET, BACKBONE, REQUESTS, METHODS, PREPARED)


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
                    scores = {k: a for k, a in _scores(seed, rid, method, variant).items() if k in SCORE_SETS}
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


def test_term_verdicts_say_a_term_earns_its_cost_only_when_removing_it_hurts():
    from recunlearn import report

    rows = []
    for model, error, recall, prep in [
        ("unlearnrec/ie_ft", 0.30, 0.370, 40.0),
        ("unlearnrec/ie_only", 0.50, 0.365, 40.0),
        ("unlearnrec_no_lu/ie_ft", 0.45, 0.371, 35.0),  # forgets worse without L_u
        ("unlearnrec_no_lu/ie_only", 0.50, 0.365, 35.0),
        ("unlearnrec_no_lc/ie_ft", 0.305, 0.369, 39.0),  # within both steps: no effect
        ("unlearnrec_no_lc/ie_only", 0.49, 0.3655, 39.0),
        ("unlearnrec_no_lp/ie_ft", 0.28, 0.350, 38.0),  # forgets a little better but loses utility
        ("unlearnrec_no_lp/ie_only", 0.45, 0.340, 38.0),
        ("unlearnrec_lu_2/ie_ft", 0.1, 0.1, 40.0),  # a sweep, not a removed term: no verdict
    ]:
        rows.append({"request": "r", "model": model, "rank_ks": error, "recall@20": recall, "prep_seconds": prep})
    table = pd.DataFrame(rows).set_index(["request", "model"], drop=False)
    variants = ["unlearnrec", "unlearnrec_no_lu", "unlearnrec_no_lc", "unlearnrec_no_lp", "unlearnrec_lu_2"]
    out = report.term_verdicts(table, variants, ["r"], 20)
    assert {m: v["verdict"] for m, v in out.items()} == {
        "unlearnrec_no_lu": "earns its cost",
        "unlearnrec_no_lc": "no measurable effect",
        "unlearnrec_no_lp": "earns its cost",
    }
    assert dict(out["unlearnrec_no_lu"]["changes"])[("r", "ie_ft")]["error"] == pytest.approx(0.15)
    assert out["unlearnrec_no_lu"]["prep_seconds"] == 40.0 and out["unlearnrec_no_lu"]["prep_seconds_without"] == 35.0
