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
# # Forgetting: error against Retrain and score distributions
#
# Unlearning is judged against Retrain, the model trained from scratch without the deleted edges, on the same
# request and seed: a method forgets well when it treats the deleted edges as Retrain does, not when it pushes
# them past a fixed threshold (Retrain itself lands far from MI-NG = 1 or AUC = 0.5, in either direction).
#
# - **Forgetting error** (`rank_ks`): the Kolmogorov-Smirnov distance between the deleted edges' within-user
#   rank percentiles under the model and under Retrain. 0 = the deleted items rank as if the model had been
#   retrained, 1 = the two distributions do not overlap. Retrain's own error is 0 by construction.
# - **Rank shift** (`rank_shift`): the model's mean percentile of the deleted edges minus Retrain's, the direction
#   of the error: > 0 the deleted items still rank higher than after retraining (**under-forgetting**), < 0 lower
#   (**over-forgetting**, itself a signal that something was deleted).
# - **AUC error** (`auc_error`): |AUC(deleted vs non-edges) - Retrain's| on the same non-edges.
# - AUC deleted vs non-edges (`auc_deleted_vs_nonedges`): P(a deleted edge scores above a random non-edge);
#   0.5 = they look like random non-edges. AUC deleted vs remaining (`auc_deleted_vs_remaining`) is GNNDelete's
#   and D2DGN's Df-AUC: P(a deleted edge scores above a remaining training edge).
# - MI-BF (mean sigmoid score of the deleted edges before / after, > 1: they fell) and MI-NG (non-edges / deleted
#   edges after, >= 1: the deleted edges score no higher than random non-edges).
# - The membership-inference attacker (fitted on the Original model, score and percentile as features): the share
#   of deleted edges it still calls training members (`mia_member_rate`, next to Retrain's rate) and its AUC
#   between deleted edges and non-edges (`mia_auc`).
#
# The first table shows the error of every model on every request (means over seeds, `comparison.csv`). The rest
# looks at one request: how each model scores the deleted edges, the remaining positives and random non-edges.
# Forgetting succeeds when the deleted edges' scores leave the remaining positives and move where Retrain puts
# them (for adversarial noise, below the non-edges). Each panel after unlearning also outlines the deleted edges'
# scores under the Original model (dotted), the state before unlearning. That request is the adversarial one, or
# the first request when there is none, for the first seed: the summary from `comparison_long.csv`, the
# histograms from `scores.json`.

# %% tags=["parameters"]
config_file = "config/config.yaml"
dataset = "ml-100k"

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from recunlearn import report

run = report.open_run(config_file, dataset)
request, seed = report.forgetting_request(run.requests), run.seeds[0]
SETS = {
    "deleted": ("deleted edges", "C3"),
    "remaining": ("remaining positives", "C2"),
    "non_edges": ("random non-edges", "0.45"),
}
display(Markdown(f"Request **{request}**, seed **{seed}**."))
report.record("request", request)
report.record("seed", seed)

# %% [markdown]
# ## Forgetting error against Retrain, every request (mean over seeds)
#
# Sorted as the comparison table. "direction" reads the sign of the rank shift; Original shows the error before
# any unlearning, No unlearning the error of the original weights run on the remaining graph.

# %%
ERROR = {
    "rank_ks": "forgetting error (rank KS)",
    "rank_shift": "rank shift",
    "auc_error": "AUC error",
    "mia_member_rate": "MIA member rate",
    "retrain_mia_member_rate": "Retrain's MIA member rate",
    "mia_auc": "MIA AUC",
}
main = ["reference", *report.main_methods(run.methods)]
errors = {}
for b in run.backbones:
    table = run.table(b)
    table = table[table["model"].map(report.method_of).isin(main)].set_index(["request", "model"])
    order = report.order_models(table.index.get_level_values("model"))
    shown = table.reindex([(r, m) for r in run.requests for m in order if (r, m) in table.index])
    shown["direction"] = [
        "-" if m == "retrain" else "under" if shift > 0 else "over" if shift < 0 else "none"
        for (_, m), shift in shown["rank_shift"].items()
    ]
    for (r, m), row in shown.iterrows():
        errors.setdefault(b, {}).setdefault(r, {})[m] = row[["rank_ks", "rank_shift", "auc_error"]].to_dict()
    display(Markdown(f"### {b}"))
    display(shown.rename(index=report.label, level="model")[[*ERROR, "direction"]].rename(columns=ERROR))
report.record("forgetting_error", errors)

# %% [markdown]
# ## Summary of the shown request (per-seed values of the compare stage)

# %%
SUMMARY = {
    "deleted_mean": "deleted mean",
    "deleted_median": "deleted median",
    "remaining_mean": "remaining mean",
    "nonedge_mean": "non-edge mean",
    "mi_bf": "MI-BF",
    "mi_ng": "MI-NG",
    "auc_deleted_vs_nonedges": "AUC deleted vs non-edges",
    "auc_deleted_vs_remaining": "AUC deleted vs remaining (GNNDelete's Df-AUC)",
    "rank_ks": "forgetting error (rank KS vs Retrain)",
    "rank_shift": "rank shift (> 0: under-forgetting)",
    "mia_member_rate": "MIA member rate",
}
summary = {}
for b in run.backbones:
    long = run.per_seed(b)
    picked = long[(long["request"] == request) & (long["seed"] == seed) & long["method"].isin(main)]
    summary[b] = picked.set_index("model")[list(SUMMARY)]
order = report.order_models(m for s in summary.values() for m in s.index)
display(
    pd.concat(
        {b: s.reindex(order).rename(index=report.label, columns=SUMMARY) for b, s in summary.items()},
        names=["backbone", "model"],
    )
)
report.record("models", order)
report.record("deleted_mean", {b: s["deleted_mean"].to_dict() for b, s in summary.items()})

# %% [markdown]
# ## Distributions before and after unlearning

# %%
ncols = min(4, len(order))
rows_per = math.ceil(len(order) / ncols)
fig, axes = plt.subplots(
    rows_per * len(run.backbones), ncols, figsize=(3.6 * ncols, 2.7 * rows_per * len(run.backbones)), squeeze=False
)
for i, b in enumerate(run.backbones):
    hists = run.scores(b, request, seed)
    edges = hists["edges"]
    before = report.density(hists["models"]["original"]["deleted"]["counts"], edges)
    for k, model in enumerate(order):
        ax = axes[i * rows_per + k // ncols, k % ncols]
        for name, (text, color) in SETS.items():
            ax.stairs(
                report.density(hists["models"][model][name]["counts"], edges), edges, lw=1.4, color=color, label=text
            )
        if model != "original":
            ax.stairs(before, edges, ls=":", color="C3", label="deleted edges, before")
        ax.set_title(f"{b}: {report.label(model)}", fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(len(order), rows_per * ncols):
        axes[i * rows_per + k // ncols, k % ncols].axis("off")
handles, labels = axes[0, min(1, ncols - 1)].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.02))
fig.suptitle(f"{dataset} / {request} (seed {seed}): score distributions (x: score, y: density)")
fig.tight_layout(rect=(0, 0.04, 1, 1))
run.save_figure(fig, "forgetting")
