"""Gather every evaluated model of a dataset and backbone into the tables the report reads.

Writes, per dataset and backbone:
- `comparison.{csv,md,json}`: one row per (request, model); numbers are the mean over the configured seeds, with
  `<metric>_std` beside them and `<metric>_p`, a paired t-test against Retrain across seeds. Rows: Original
  (trained on the full graph), No unlearning (original table on the remaining graph), Retrain, then every
  method's variants. Time columns: the per-request seconds, the one-off preparation seconds (IE pre-training,
  SISA shards) shown apart, the speed-up over Retrain, and the number of requests after which preparation plus
  unlearning costs less than retraining for each request ("break-even requests").
- `comparison_long.csv`: the per-seed rows behind that table, with the request size and the score summaries.
- `scores.json`: per request, seed and model, histograms of the deleted-edge, remaining-edge and non-edge scores
  on bins shared by every model of that request and seed.

The notebooks read only these files, so a notebook's inputs are exactly this stage's outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recunlearn.io import atomic_path, read_json, write_json
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import original_kind
from recunlearn.report import ALPHA, SCORE_SETS, label

METRICS = [
    "recall@20",
    "ndcg@20",
    "mi_bf",
    "mi_ng",
    "df_auc",
    "mia_member_rate",
    "deleted_mean",
    "nonedge_mean",
    "seconds",
    "prep_seconds",
]
TABLE_COLUMNS = [
    "request",
    "model",
    "recall@20",
    "ndcg@20",
    "mi_bf",
    "mi_ng",
    "df_auc",
    "mia_member_rate",
    "seconds",
    "prep_seconds",
    "speedup",
    "break_even_requests",
]
LONG_COLUMNS = [
    "request",
    "model",
    "method",
    "variant",
    "seed",
    "unlearned_from",
    "request_edges",
    "recall@20",
    "ndcg@20",
    "mi_bf",
    "mi_ng",
    "df_auc",
    "mia_member_rate",
    "deleted_mean",
    "deleted_median",
    "remaining_mean",
    "nonedge_mean",
    "seconds",
    "prep_seconds",
]
SCORE_BINS = 40  # bin edges shared by every model of a (request, seed)
SCORE_RANGE = (0.005, 0.995)  # quantiles of the pooled scores the bins span: a few outliers do not flatten the rest


def model_name(method: str, variant: str) -> str:
    """A row's name: the reference variants (original, retrain) and single-variant methods by their own name,
    the others as `<method>/<variant>` (e.g. `unlearnrec/ie_ft`)."""
    return variant if method == "reference" or variant == method else f"{method}/{variant}"


def _row(request_id: str, method: str, variant: str, seed: int, data: dict, values: dict, prep_seconds: float) -> dict:
    """One row of the long table (the `LONG_COLUMNS`) for one variant of one job.

    Args:
        request_id: id of the request the job unlearned.
        method: registered unlearning method name, or 'reference' for the Original and Retrain rows.
        variant: name of the variant within that job's metrics.json (e.g. 'retrain', 'ie_ft').
        seed: training seed of the run.
        data: the job's whole metrics.json (gives `request_edges`).
        values: that variant's metrics (utility, forgetting, score summaries, `seconds`).
        prep_seconds: the method's one-off preparation cost in seconds (0.0 for none).
    """
    return {
        "request": request_id,
        "model": model_name(method, variant),
        "method": method,
        "variant": variant,
        "seed": seed,
        "unlearned_from": original_kind(request_id),
        "request_edges": data.get("request_edges"),
        "recall@20": values.get("recall@20"),
        "ndcg@20": values.get("ndcg@20"),
        "mi_bf": values.get("mi_bf"),
        "mi_ng": values.get("mi_ng"),
        "df_auc": values.get("df_auc"),
        "mia_member_rate": values.get("mia_member_rate"),
        "deleted_mean": values["deleted_after"]["mean"],
        "deleted_median": values["deleted_after"]["q50"],
        "remaining_mean": values["remaining_after"]["mean"],
        "nonedge_mean": values["nonedges_after"]["mean"],
        "seconds": values["seconds"],
        "prep_seconds": prep_seconds,
    }


def collect(
    cfg: dict, dataset: str, backbone: str, request_ids: list[str], methods: list[str], prepared: set[str]
) -> pd.DataFrame:
    """Long table: one row per (request, model, seed), read from the metrics files the stages wrote.

    `prepared` names the methods with a one-off preparation, whose report gives the `prep_seconds` column.

    Args:
        cfg: the validated configuration (for the paths and `seeds`).
        dataset: dataset name.
        backbone: backbone registry name.
        request_ids: the evaluated request ids.
        methods: the configured unlearning methods (the 'reference' rows are always read too).
        prepared: names of the methods among them that have a preparation report.
    """
    rows = []
    for seed in cfg["seeds"]:
        for rid in request_ids:
            for method in ["reference", *methods]:
                data = read_json(layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, method))
                prep = 0.0
                if method in prepared:
                    report = read_json(layout.prepared_report(cfg, dataset, backbone, seed, original_kind(rid), method))
                    prep = float(report["seconds"])
                for variant, values in data["variants"].items():
                    rows.append(_row(rid, method, variant, seed, data, values, prep if method != "reference" else 0.0))
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def score_summaries(cfg: dict, dataset: str, backbone: str, request_ids: list[str], methods: list[str]) -> dict:
    """Histograms of every model's scores per (request, seed), from each job's scores.npz.

    Returns `{"requests": {request: {seed: {"edges": [...], "models": {model: {set: {"n", "mean", "counts"}}}}}}}`
    with seeds as strings (JSON keys) and sets `deleted`, `remaining`, `non_edges`. The edges span the
    `SCORE_RANGE` quantiles of all scores of that request and seed, so every model is drawn on the same bins.

    Args:
        cfg: the validated configuration (for the paths and `seeds`).
        dataset: dataset name.
        backbone: backbone registry name.
        request_ids: the evaluated request ids.
        methods: the configured unlearning methods (the 'reference' scores are always read too).
    """
    out: dict = {}
    for rid in request_ids:
        for seed in cfg["seeds"]:
            scores = {}
            for method in ["reference", *methods]:
                data = read_json(layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, method))
                with np.load(layout.unlearn_scores(cfg, dataset, backbone, seed, rid, method)) as npz:
                    for variant in data["variants"]:
                        scores[model_name(method, variant)] = {s: npz[f"{variant}__{s}"] for s in SCORE_SETS}
            pooled = np.concatenate([a for sets in scores.values() for a in sets.values()])
            lo, hi = (float(q) for q in np.quantile(pooled, SCORE_RANGE))
            if not hi > lo:  # every score equal: one bin around the value
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, SCORE_BINS)
            models = {
                model: {
                    s: {
                        "n": int(a.size),
                        "mean": float(np.mean(a, dtype=np.float64)),
                        "counts": np.histogram(a, bins=edges)[0].tolist(),
                    }
                    for s, a in sets.items()
                }
                for model, sets in scores.items()
            }
            out.setdefault(rid, {})[str(seed)] = {"edges": edges.tolist(), "models": models}
    return {"bins": SCORE_BINS, "range_quantiles": list(SCORE_RANGE), "requests": out}


TESTED = ["recall@20", "ndcg@20", "mi_bf", "mi_ng"]


def paired_tests(long: pd.DataFrame) -> pd.DataFrame:
    """p-value of a paired t-test across seeds of each model against Retrain on the same request and seed.

    NaN with fewer than two seeds, or when the paired differences are all equal (no variance to test)."""
    from scipy.stats import ttest_rel

    out = []
    for (request, model), group in long.groupby(["request", "model"], sort=False):
        retrain = long[(long["request"] == request) & (long["model"] == "retrain")].set_index("seed")
        mine = group.set_index("seed")
        seeds = mine.index.intersection(retrain.index)
        row = {"request": request, "model": model}
        for metric in TESTED:
            a, b = mine.loc[seeds, metric].to_numpy(float), retrain.loc[seeds, metric].to_numpy(float)
            diff = a - b
            usable = len(seeds) >= 2 and model != "retrain" and np.ptp(diff) > 0
            row[f"{metric}_p"] = float(ttest_rel(a, b).pvalue) if usable else np.nan
        out.append(row)
    return pd.DataFrame(out)


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds, paired tests against Retrain, then speed-up and break-even against Retrain."""
    grouped = long.groupby(["request", "model"], sort=False)[METRICS]
    table = grouped.mean()
    std = grouped.std(ddof=1).add_suffix("_std")
    table = table.join(std).reset_index()
    table = table.merge(paired_tests(long), on=["request", "model"], how="left")
    retrain = table[table["model"] == "retrain"].set_index("request")["seconds"]
    table["retrain_seconds"] = table["request"].map(retrain)
    table["speedup"] = table["retrain_seconds"] / table["seconds"]
    table["break_even_requests"] = [
        _break_even(p, s, r) if m not in ("original", "retrain") else np.nan
        for p, s, r, m in zip(table["prep_seconds"], table["seconds"], table["retrain_seconds"], table["model"])
    ]
    for model in ("original", "retrain"):
        table.loc[table["model"] == model, ["speedup", "break_even_requests"]] = np.nan
    return table


def _break_even(prep: float, per_request: float, retrain: float) -> float:
    """Smallest n with prep + n * per_request < n * retrain (inf when unlearning is not cheaper)."""
    saving = retrain - per_request
    if saving <= 0:
        return math.inf
    return float(math.floor(prep / saving) + 1)


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A readable Markdown table: mean ± std where several seeds ran."""
    lines = [f"# {title}", "", "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for _, row in table.iterrows():
        cells = []
        for col in TABLE_COLUMNS:
            value = row[col]
            if col == "model":
                cells.append(label(value))
            elif col == "request":
                cells.append(str(value))
            else:
                mark = "*" if row.get(f"{col}_p", np.nan) < ALPHA else ""
                cells.append(_fmt(value, row.get(f"{col}_std")) + mark)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Mean ± std over seeds. * = differs from Retrain (paired t-test across seeds, p < {ALPHA})."]
    return "\n".join(lines) + "\n"


def _fmt(value, std) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    text = f"{value:.4g}"
    if std is not None and isinstance(std, float) and not math.isnan(std):
        text += f" ± {std:.2g}"
    return text


def write_comparison(
    cfg: dict, dataset: str, backbone: str, request_ids: list[str], methods: list[str], prepared: set[str]
) -> pd.DataFrame:
    """Write the comparison table (csv, md, json), the long per-seed table and the score summaries.

    Args:
        cfg: the validated configuration (`seeds`, `results_dir`).
        dataset, backbone: the run the table covers.
        request_ids: every evaluated request, in table order.
        methods: the configured unlearning methods, in table order.
        prepared: the methods with a one-off preparation (their `prep_seconds` come from its report).
    """
    long = collect(cfg, dataset, backbone, request_ids, methods, prepared)
    table = summarise(long)
    with atomic_path(layout.comparison(cfg, dataset, backbone, "csv")) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    with atomic_path(layout.comparison(cfg, dataset, backbone, "md")) as tmp:
        tmp.write_text(
            to_markdown(table, f"{dataset} / {backbone}: unlearning comparison (mean over seeds {cfg['seeds']})")
        )
    metrics = {
        rid: {
            label(m): {k: _json(v) for k, v in r.items() if k in TABLE_COLUMNS[2:]}
            for m, r in group.set_index("model").iterrows()
        }
        for rid, group in table.groupby("request", sort=False)
    }
    write_json(layout.comparison(cfg, dataset, backbone, "json"), metrics)
    with atomic_path(layout.comparison_long(cfg, dataset, backbone)) as tmp:
        long.to_csv(tmp, index=False, lineterminator="\n")  # full precision: the per-seed values as measured
    write_json(
        layout.score_summaries(cfg, dataset, backbone), score_summaries(cfg, dataset, backbone, request_ids, methods)
    )
    return table


def _json(value):
    value = float(value)
    return None if math.isnan(value) else ("inf" if math.isinf(value) else value)
