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
# # Forgetting: score distributions
#
# How each model scores three sets of user-item pairs: the deleted edges, the remaining positives and random
# non-edges. Forgetting succeeds when the deleted edges' scores leave the remaining positives and move towards
# (or, for adversarial noise, below) the non-edges, as they do for Retrain. Each panel after unlearning also
# outlines the deleted edges' scores under the Original model (dotted), which is the state before unlearning.
# The data are the first seed's, for the adversarial request, or for the first request when there is no
# adversarial one: the summary from `comparison_long.csv`, the histograms from `scores.json`.

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
# ## Summary (per-seed values of the compare stage)

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
}
main = ["reference", *report.main_methods(run.methods)]
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
