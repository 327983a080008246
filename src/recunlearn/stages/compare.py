"""Gather every evaluated model of a dataset and backbone into the tables the report reads.

Writes, per dataset and backbone:
- `comparison.{csv,md,json}`: one row per (request, model); numbers are the mean over the configured seeds, with
  `<metric>_std` beside them and `<metric>_p`, a paired t-test against Retrain across seeds. Rows: Original
  (trained on the full graph), No unlearning (original table on the remaining graph), Retrain, then every
  method's variants. Utility: Recall/NDCG at every k and the active/inactive gap A-IGF. Forgetting: the raw
  figures and the forgetting error against Retrain on the same request and seed (`rank_ks`, `rank_shift`,
  `auc_error`; Retrain's own row is 0), the attacker's member rate beside Retrain's. Time columns: the
  per-request seconds, the one-off preparation seconds (IE pre-training, SISA shards) shown apart, Retrain's
  seconds to its kept epoch and in all, the speed-up against the former, and the number of requests after which
  preparation plus unlearning costs less than retraining for each request ("break-even requests"). For a method
  that selects a pre-training checkpoint (UnlearnRec), `selected_epoch` is the epoch its preparation kept.
- `comparison_long.csv`: the per-seed rows behind that table, with the request size and the score summaries.
- `scores.json`: per request, seed and model, histograms of the deleted-edge, remaining-edge and non-edge scores
  on bins shared by every model of that request and seed.

The notebooks read only these files, so a notebook's inputs are exactly this stage's outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recunlearn.errors import RecUnlearnError
from recunlearn.evaluation.forgetting import ERROR_KEYS, forgetting_error
from recunlearn.evaluation.protocol import FORGETTING_KEYS
from recunlearn.io import atomic_path, read_json, write_json
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import original_kind
from recunlearn.report import ALPHA, ERROR_STEP, SCORE_SETS, label

FORGETTING = [*ERROR_KEYS, *FORGETTING_KEYS]
TIMES = ["seconds", "prep_seconds"]
# from the preparation report, for the methods that select a pre-training checkpoint (UnlearnRec): the kept epoch
PREPARATION = ["selected_epoch"]
# from a variant's own report (`Unlearned.info`): how many shards a sharded method retrained for the request
INFO = ["shards_retrained"]
SUMMARIES = ["deleted_mean", "deleted_median", "deleted_percentile_mean", "remaining_mean", "nonedge_mean"]
DERIVED = [
    "retrain_mia_member_rate",
    "retrain_seconds_to_best",
    "retrain_seconds_total",
    "speedup",
    "break_even_requests",
    "room_to_forget",
]
# rows without a speed-up or break-even: the references, and No unlearning (it forgets nothing, so being fast
# says nothing; its seconds are one propagation)
NOT_TIMED = ("original", "retrain", "none")
KEYS = ["request", "model", "method", "variant", "seed", "unlearned_from", "request_edges"]


def utility_columns(ks) -> list[str]:
    """Recall@k and NDCG@k for every k, then the fairness gap A-IGF@k for every k."""
    ks = sorted(set(ks))
    return [f"{m}@{k}" for k in ks for m in ("recall", "ndcg")] + [f"a_igf@{k}" for k in ks]


def metric_columns(ks) -> list[str]:
    """Every per-model number averaged over seeds (the `<metric>_std` columns follow them)."""
    return [*utility_columns(ks), *FORGETTING, *SUMMARIES, "seconds_total", *TIMES, *PREPARATION, *INFO]


def table_columns(ks) -> list[str]:
    """The columns of comparison.md (the csv has these and more)."""
    return ["request", "model", *utility_columns(ks), *FORGETTING, *TIMES, *DERIVED, *PREPARATION, *INFO]


def long_columns(ks) -> list[str]:
    """The columns of comparison_long.csv: one row per (request, model, seed)."""
    return [*KEYS, *utility_columns(ks), *FORGETTING, *SUMMARIES, "seconds_total", *TIMES, *PREPARATION, *INFO]


SCORE_BINS = 40  # bin edges shared by every model of a (request, seed)
SCORE_RANGE = (0.005, 0.995)  # quantiles of the pooled scores the bins span: a few outliers do not flatten the rest


def model_name(method: str, variant: str) -> str:
    """A row's name: the reference variants (original, retrain) and single-variant methods by their own name,
    the others as `<method>/<variant>` (e.g. `unlearnrec/ie_ft`)."""
    return variant if method == "reference" or variant == method else f"{method}/{variant}"


def _row(request_id: str, method: str, variant: str, seed: int, data: dict, values: dict, prep: dict) -> dict:
    """One row of the long table for one variant of one job (the forgetting error is added by `collect`).

    Args:
        request_id: id of the request the job unlearned.
        method: registered unlearning method name, or 'reference' for the Original and Retrain rows.
        variant: name of the variant within that job's metrics.json (e.g. 'retrain', 'ie_ft').
        seed: training seed of the run.
        data: the job's whole metrics.json (gives `request_edges`).
        values: that variant's metrics (utility, forgetting, score summaries, `seconds`).
        prep: the method's preparation report (`seconds`, and `selected_epoch` where it selects one), {} for none.
    """
    row = {
        "request": request_id,
        "model": model_name(method, variant),
        "method": method,
        "variant": variant,
        "seed": seed,
        "unlearned_from": original_kind(request_id),
        "request_edges": data.get("request_edges"),
    }
    row.update({k: v for k, v in values.items() if "@" in k or k in FORGETTING})
    row.update(
        deleted_mean=values["deleted_after"]["mean"],
        deleted_median=values["deleted_after"]["q50"],
        deleted_percentile_mean=values["deleted_percentile_mean"],
        remaining_mean=values["remaining_after"]["mean"],
        nonedge_mean=values["nonedges_after"]["mean"],
        seconds=values["seconds"],
        seconds_total=values.get("seconds_total", values["seconds"]),
        prep_seconds=float(prep.get("seconds", 0.0)),
        selected_epoch=prep.get("selected_epoch", np.nan),
    )
    row.update({key: values.get("info", {}).get(key, np.nan) for key in INFO})
    return row


def _percentiles(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> dict:
    """variant -> the deleted edges' within-user percentiles, from one job's scores.npz.

    Args:
        cfg: the validated configuration (for the paths).
        dataset, backbone, seed: the run.
        request_id: the request.
        method: the job's method, or 'reference'.
    """
    with np.load(layout.unlearn_scores(cfg, dataset, backbone, seed, request_id, method)) as npz:
        return {k.split("__")[0]: npz[k] for k in npz.files if k.endswith("__deleted_percentile")}


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
            jobs = {
                method: (
                    read_json(layout.unlearn_metrics(cfg, dataset, backbone, seed, rid, method)),
                    _percentiles(cfg, dataset, backbone, seed, rid, method),
                )
                for method in ["reference", *methods]
            }
            retrain_data, retrain_pct = jobs["reference"]
            retrain_auc = retrain_data["variants"]["retrain"]["auc_deleted_vs_nonedges"]
            for method, (data, percentiles) in jobs.items():
                prep = {}
                if method in prepared:
                    prep = read_json(layout.prepared_report(cfg, dataset, backbone, seed, original_kind(rid), method))
                for variant, values in data["variants"].items():
                    row = _row(rid, method, variant, seed, data, values, prep)
                    row.update(
                        forgetting_error(
                            percentiles[variant], retrain_pct["retrain"], values["auc_deleted_vs_nonedges"], retrain_auc
                        )
                    )
                    rows.append(row)
    return pd.DataFrame(rows, columns=long_columns(cfg["evaluation"]["ks"]))


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


def tested_metrics(ks) -> list[str]:
    """The metrics tested against Retrain: utility at the largest k, then the forgetting figures."""
    k = max(ks)
    return [f"recall@{k}", f"ndcg@{k}", "mi_bf", "mi_ng", "auc_deleted_vs_nonedges", "mia_member_rate"]


def paired_tests(long: pd.DataFrame, ks) -> pd.DataFrame:
    """p-value of a paired t-test across seeds of each model against Retrain on the same request and seed.

    NaN with fewer than two seeds, or when the paired differences are all equal (no variance to test)."""
    from scipy.stats import ttest_rel

    out = []
    for (request, model), group in long.groupby(["request", "model"], sort=False):
        retrain = long[(long["request"] == request) & (long["model"] == "retrain")].set_index("seed")
        mine = group.set_index("seed")
        seeds = mine.index.intersection(retrain.index)
        row = {"request": request, "model": model}
        for metric in tested_metrics(ks):
            a, b = mine.loc[seeds, metric].to_numpy(float), retrain.loc[seeds, metric].to_numpy(float)
            diff = a - b
            usable = len(seeds) >= 2 and model != "retrain" and np.ptp(diff) > 0
            row[f"{metric}_p"] = float(ttest_rel(a, b).pvalue) if usable else np.nan
        out.append(row)
    return pd.DataFrame(out)


def summarise(long: pd.DataFrame, ks) -> pd.DataFrame:
    """Mean and std over seeds, paired tests against Retrain, then Retrain's figures beside every row, the speed-up
    against Retrain's time to its best epoch (the conservative one) and the break-even number of requests."""
    grouped = long.groupby(["request", "model"], sort=False)[metric_columns(ks)]
    table = grouped.mean()
    std = grouped.std(ddof=1).add_suffix("_std")
    table = table.join(std).reset_index()
    table = table.merge(paired_tests(long, ks), on=["request", "model"], how="left")
    retrain = table[table["model"] == "retrain"].set_index("request")
    table["retrain_mia_member_rate"] = table["request"].map(retrain["mia_member_rate"])
    table["retrain_seconds_to_best"] = table["request"].map(retrain["seconds"])
    table["retrain_seconds_total"] = table["request"].map(retrain["seconds_total"])
    table["speedup"] = table["retrain_seconds_to_best"] / table["seconds"]
    table["break_even_requests"] = [
        _break_even(p, s, r) if m not in NOT_TIMED else np.nan
        for p, s, r, m in zip(table["prep_seconds"], table["seconds"], table["retrain_seconds_to_best"], table["model"])
    ]
    table.loc[table["model"].isin(NOT_TIMED), ["speedup", "break_even_requests"]] = np.nan
    none = table[table["model"] == "none"].set_index("request")["rank_ks"]
    table["room_to_forget"] = table["request"].map(none) if len(none) else np.nan
    return table


def uninformative_requests(table: pd.DataFrame) -> list[str]:
    """Requests whose forgetting error cannot tell methods apart: No unlearning is already within ERROR_STEP of
    Retrain (`room_to_forget`, its rank_ks). Example: a user-wise request under SimGCL, whose readout leaves a
    user with no remaining edge a zero embedding, so that user's items tie in every model on the remaining graph.
    """
    room = table.drop_duplicates("request").set_index("request")["room_to_forget"]
    return [str(r) for r, v in room.items() if v < ERROR_STEP]


def _break_even(prep: float, per_request: float, retrain: float) -> float:
    """Smallest n with prep + n * per_request < n * retrain (inf when unlearning is not cheaper)."""
    saving = retrain - per_request
    if saving <= 0:
        return math.inf
    return float(math.floor(prep / saving) + 1)


def to_markdown(table: pd.DataFrame, title: str, columns: list[str]) -> str:
    """A readable Markdown table of `columns`: mean ± std where several seeds ran."""
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        cells = []
        for col in columns:
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
    flat = uninformative_requests(table) if "room_to_forget" in table else []
    if flat:
        lines.append(
            f"No unlearning is already within {ERROR_STEP} of Retrain's forgetting (room_to_forget) on "
            f"{', '.join(flat)}: there the forgetting columns cannot tell methods apart."
        )
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
    ks = cfg["evaluation"]["ks"]
    _check_complete(long, ks)
    table = summarise(long, ks)
    columns = table_columns(ks)
    with atomic_path(layout.comparison(cfg, dataset, backbone, "csv")) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    with atomic_path(layout.comparison(cfg, dataset, backbone, "md")) as tmp:
        tmp.write_text(
            to_markdown(
                table, f"{dataset} / {backbone}: unlearning comparison (mean over seeds {cfg['seeds']})", columns
            )
        )
    metrics = {
        rid: {
            label(m): {k: _json(v) for k, v in r.items() if k in columns[2:]}
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


def _check_complete(long: pd.DataFrame, ks) -> None:
    """Refuse, in one line naming the rows, a table whose utility or forgetting figures are missing (NaN)."""
    needed = [*utility_columns(ks), "rank_ks", "auc_deleted_vs_nonedges", "mia_member_rate"]
    bad = long[long[needed].isna().any(axis=1)]
    if len(bad):
        where = ", ".join(f"{r.request}/{r.model} (seed {r.seed})" for r in bad.itertuples())
        cols = sorted({c for c in needed if bad[c].isna().any()})
        raise RecUnlearnError(f"comparison: no value for {', '.join(cols)} in {where}; see those jobs' metrics.json")


def _json(value):
    value = float(value)
    return None if math.isnan(value) else ("inf" if math.isinf(value) else value)
