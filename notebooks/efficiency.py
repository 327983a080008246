# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Efficiency
#
# Wall-clock time of each request per method, against Retrain (training from scratch on the remaining graph).
# All times come from the same machine and thread count in one run; every number comes from the compare stage's
# tables (means over seeds).
#
# - `seconds`: a method's time per request. For Retrain (and Original) it is the training time up to the epoch
#   the model keeps (its best validation check); `retrain_seconds_total` is Retrain's whole run, including the
#   epochs early stopping waited through after the best one.
# - `speedup` = Retrain's seconds to its best epoch / the method's seconds: the conservative speed-up, since an
#   oracle that knew where to stop would train Retrain for that long. The speed-up against Retrain's total time
#   (`speedup vs total`) is shown beside it and is larger.
# - A method's one-off preparation (the Influence Encoder's pre-training, SISA's or RecEraser's shards) is paid
#   once per trained model, not per request: `prep_seconds`, drawn as a separate hatched bar.
#   `break_even_requests` is the number of requests after which preparation plus unlearning costs less than
#   retraining for each one (inf: a request costs more than retraining).
# - A speed-up means little without the forgetting it buys, so every speed-up is quoted next to the **forgetting
#   error** the method reached on that request (`rank_ks`: the KS distance between the deleted edges' rank
#   percentiles under the method and under Retrain; 0 = as if retrained). No unlearning (the original weights run
#   on the remaining graph) does no unlearning work: its speed-up is the cost of that evaluation only, the
#   baseline the other rows' errors should beat.
#
# The second figure plots time against request size (the number of deleted edges) for the random-edge requests.

# %% tags=["parameters"]
config_file = "config/config.yaml"
dataset = "ml-100k"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from recunlearn import report

run = report.open_run(config_file, dataset)
TIME_COLUMNS = [
    "seconds",
    "seconds_std",
    "prep_seconds",
    "retrain_seconds_to_best",
    "retrain_seconds_total",
    "speedup",
    "speedup_vs_total",
    "rank_ks",
    "break_even_requests",
]

# %% [markdown]
# ## Time per request (mean over seeds)

# %%
# Original's time is its own training, not an unlearning cost
timed = {}
for b in run.backbones:
    t = run.table(b).query("model != 'original'").set_index("model", drop=False)
    # against Retrain's whole run (NaN for Retrain itself, as `speedup`)
    t["speedup_vs_total"] = (t["retrain_seconds_total"] / t["seconds"]).where(t["speedup"].notna())
    timed[b] = t
models = report.order_models(m for t in timed.values() for m in t["model"])
for b, t in timed.items():
    display(Markdown(f"### {b}"))
    shown = pd.concat([t[t["request"] == r].reindex(models).dropna(subset=["request"]) for r in run.requests])
    display(shown.assign(model=shown["model"].map(report.label)).set_index(["request", "model"])[TIME_COLUMNS])
report.record("models", models)
report.record(
    "seconds", {b: {r: t[t["request"] == r]["seconds"].to_dict() for r in run.requests} for b, t in timed.items()}
)

# %% [markdown]
# ## Speed-up against Retrain, next to the forgetting error reached
#
# Each cell: the speed-up against Retrain's time to its best epoch (against its total time in brackets), then the
# forgetting error of that row on that request (0 = as if retrained). Retrain is the reference (error 0).


# %%
def quoted(row: pd.Series) -> str:
    if row["model"] == "retrain":
        return f"reference ({row['seconds']:.3g} s to best, {row['retrain_seconds_total']:.3g} s total), error 0"
    if pd.isna(row["speedup"]):  # No unlearning: nothing was forgotten, so no speed-up is quoted
        return f"no speed-up quoted, error {row['rank_ks']:.3f}"
    return f"{row['speedup']:.2f}x ({row['speedup_vs_total']:.2f}x), error {row['rank_ks']:.3f}"


quotes = {}
for b, t in timed.items():
    cells = {r: {m: quoted(t[t["request"] == r].loc[m]) for m in t[t["request"] == r].index} for r in run.requests}
    display(Markdown(f"### {b}: speed-up (vs total), forgetting error"))
    display(pd.DataFrame(cells).reindex(models).rename(index=report.label))
    quotes[b] = {
        r: {
            m: {"speedup": row["speedup"], "speedup_vs_total": row["speedup_vs_total"], "rank_ks": row["rank_ks"]}
            for m, row in t[t["request"] == r].iterrows()
            if pd.notna(row["speedup"])
        }
        for r in run.requests
    }
report.record("speedup", quotes)

# %% [markdown]
# ## One-off preparation cost (per trained model)

# %%
per_seed = {b: run.per_seed(b) for b in run.backbones}
prep = pd.concat([long[long["prep_seconds"] > 0].assign(backbone=b) for b, long in per_seed.items()])
prep = (
    prep.drop_duplicates(["backbone", "seed", "unlearned_from", "method"])
    .rename(columns={"unlearned_from": "model kind", "prep_seconds": "seconds"})[
        ["backbone", "seed", "model kind", "method", "seconds"]
    ]
    .reset_index(drop=True)
)
display(prep if len(prep) else Markdown("No method in this run needs preparation."))
report.record("prep_seconds", prep.to_dict("records"))

# %%
fig, axes = plt.subplots(
    len(run.backbones),
    len(run.requests),
    figsize=(4.2 * len(run.requests), 0.5 + 3.2 * len(run.backbones)),
    squeeze=False,
    sharey="row",
)
for i, b in enumerate(run.backbones):
    for j, request in enumerate(run.requests):
        ax, rows = axes[i, j], timed[b][timed[b]["request"] == request].reindex(models)
        y = np.arange(len(models))
        ax.barh(y + 0.2, rows["seconds"], 0.4, xerr=rows["seconds_std"].fillna(0), color="C0", label="per request")
        ax.barh(
            y - 0.2,
            rows["prep_seconds"].where(rows["prep_seconds"] > 0),
            0.4,
            color="none",
            edgecolor="C1",
            hatch="///",
            label="one-off preparation",
        )
        ax.axvline(rows.loc["retrain", "seconds"], color="k", ls="--", lw=0.8)
        ax.axvline(rows.loc["retrain", "retrain_seconds_total"], color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(y, [report.label(m) for m in models], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{b} / {request}", fontsize=9)
        ax.set_xlabel("seconds (log; Retrain: dashed to best epoch, dotted total)", fontsize=8)
fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
fig.suptitle(f"{dataset}: unlearning time per request vs Retrain (mean over seeds {run.seeds})")
fig.tight_layout(rect=(0, 0.06, 1, 1))
run.save_figure(fig, "efficiency", 0)

# %% [markdown]
# ## Time against request size (random-edge requests)

# %%
sized = report.random_requests(run.requests)
edges = {
    (b, r): float(long[(long["request"] == r) & (long["model"] == "retrain")]["request_edges"].mean())
    for b, long in per_seed.items()
    for r in sized
}
fig, axes = plt.subplots(1, len(run.backbones), figsize=(max(7.5, 5.5 * len(run.backbones)), 4), squeeze=False)
for ax, b in zip(axes[0], run.backbones):
    rows = timed[b][timed[b]["request"].isin(sized)]
    rows = rows.assign(edges=[edges[(b, r)] for r in rows["request"]])
    for k, model in enumerate(m for m in models if m in set(rows["model"])):
        group = rows[rows["model"] == model].sort_values("edges")
        ax.errorbar(
            group["edges"],
            group["seconds"],
            yerr=group["seconds_std"].fillna(0),
            marker="osD^vP*X"[k % 8],
            ls="--" if model == "retrain" else "-",
            color=f"C{k}",
            label=report.label(model),
            capsize=2,
            alpha=0.8,
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="deleted edges in the request",
        ylabel="seconds per request",
        title=f"{b}: {', '.join(sized) if sized else 'no random-edge request'}",
    )
    if sized:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
title = f"{dataset}: time vs request size (mean over seeds {run.seeds})"
if len(sized) < 2:
    title += (
        f"\n{'only one request size' if sized else 'no random-edge request'} in this run: "
        "add fractions to requests.random_edges for a trend"
    )
fig.suptitle(title, color="darkred" if len(sized) < 2 else "black")
fig.tight_layout()
run.save_figure(fig, "efficiency", 1)
display(pd.DataFrame([{"backbone": b, "request": r, "deleted edges": e} for (b, r), e in edges.items()]))
report.record("request_edges", {b: {r: e for (bb, r), e in edges.items() if bb == b} for b in run.backbones})
