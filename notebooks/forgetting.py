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
# The data come from the first seed's `scores.npz`, for the adversarial request, or for the first request when
# there is no adversarial one.

# %% tags=["parameters"]
results_dir = "results/tiny"
dataset = "tiny"
backbones = ["lightgcn"]
seeds = [0]
requests = ["adversarial-0.5", "random-0.05", "users-core-0.1", "users-edge-0.1"]
methods = ["none", "unlearnrec"]
figures_dir = "results/tiny/figures"

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from recunlearn.pipeline import layout
from recunlearn.stages.compare import label
from recunlearn.io import read_json
from recunlearn.stages.notebook import figure_names, forgetting_request, main_methods, model_name, order_models, save_figure

cfg = {"results_dir": results_dir}
request, seed = forgetting_request(requests), seeds[0]
SETS = {"deleted": ("deleted edges", "C3"), "remaining": ("remaining positives", "C2"),
        "non_edges": ("random non-edges", "0.45")}
display(Markdown(f"Request **{request}**, seed **{seed}**."))

# %% [markdown]
# ## Reading the scores

# %%
scores, summaries = {}, {}
for b in backbones:
    for method in ["reference", *main_methods(methods)]:
        metrics = read_json(layout.unlearn_metrics(cfg, dataset, b, seed, request, method))
        with np.load(layout.unlearn_scores(cfg, dataset, b, seed, request, method)) as npz:
            for variant, values in metrics["variants"].items():
                model = model_name(method, variant)
                scores[(b, model)] = {s: npz[f"{variant}__{s}"] for s in SETS}
                summaries[(b, model)] = values
order = order_models(m for _, m in scores)

# %% [markdown]
# ## Summary (from `metrics.json`)

# %%
table = pd.DataFrame([{"backbone": b, "model": label(m),
                       "deleted mean": v["deleted_after"]["mean"], "deleted median": v["deleted_after"]["q50"],
                       "remaining mean": v["remaining_after"]["mean"], "non-edge mean": v["nonedges_after"]["mean"],
                       "MI-BF": v["mi_bf"], "MI-NG": v["mi_ng"], "Df-AUC": v["df_auc"]}
                      for (b, m), v in summaries.items()]).set_index(["backbone", "model"])
display(table.loc[[(b, label(m)) for b in backbones for m in order if (b, m) in summaries]])

# %% [markdown]
# ## Distributions before and after unlearning

# %%
ncols = min(4, len(order))
rows_per = math.ceil(len(order) / ncols)
fig, axes = plt.subplots(rows_per * len(backbones), ncols, figsize=(3.6 * ncols, 2.7 * rows_per * len(backbones)),
                         squeeze=False)
for i, b in enumerate(backbones):
    pooled = np.concatenate([a for (bb, _), sets in scores.items() if bb == b for a in sets.values()])
    bins = np.linspace(*np.quantile(pooled, [0.005, 0.995]), 40)
    before = scores[(b, "original")]["deleted"]
    for k, model in enumerate(order):
        ax = axes[i * rows_per + k // ncols, k % ncols]
        for name, (text, color) in SETS.items():
            ax.hist(scores[(b, model)][name], bins=bins, density=True, histtype="step", lw=1.4, color=color,
                    label=text)
        if model != "original":
            ax.hist(before, bins=bins, density=True, histtype="step", ls=":", color="C3",
                    label="deleted edges, before")
        ax.set_title(f"{b}: {label(model)}", fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(len(order), rows_per * ncols):
        axes[i * rows_per + k // ncols, k % ncols].axis("off")
handles, labels = axes[0, min(1, ncols - 1)].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.02))
fig.suptitle(f"{dataset} / {request} (seed {seed}): score distributions (x: score, y: density)")
fig.tight_layout(rect=(0, 0.04, 1, 1))
save_figure(fig, figures_dir, figure_names("forgetting", dataset)[0])
