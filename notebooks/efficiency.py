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
# All times come from the same machine and thread count in one run. A method's one-off preparation (for example
# the Influence Encoder's pre-training) is paid once per trained model, not per request, so it is drawn as a
# separate hatched bar. The second figure plots time against request size (the number of deleted edges) for the
# random-edge requests.

# %% tags=["parameters"]
results_dir = "results/tiny"
dataset = "tiny"
backbones = ["lightgcn"]
seeds = [0]
requests = ["adversarial-0.5", "random-0.05", "users-core-0.1", "users-edge-0.1"]
methods = ["none", "unlearnrec"]
figures_dir = "results/tiny/figures"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from recunlearn.pipeline import layout
from recunlearn.stages.compare import label
from recunlearn.pipeline.kinds import original_kind
from recunlearn.io import read_json
from recunlearn.stages.notebook import figure_names, order_models, random_requests, save_figure

cfg = {"results_dir": results_dir}
fig_time, fig_size = figure_names("efficiency", dataset)
TIME_COLUMNS = ["seconds", "seconds_std", "prep_seconds", "retrain_seconds", "speedup", "break_even_requests"]

# %% [markdown]
# ## Time per request (mean over seeds)

# %%
tables = {b: pd.read_csv(layout.comparison(cfg, dataset, b, "csv")) for b in backbones}
# Original's time is its own training, not an unlearning cost
timed = {b: t[t["model"] != "original"].set_index("model", drop=False) for b, t in tables.items()}
models = order_models(m for t in timed.values() for m in t["model"])
for b, t in timed.items():
    display(Markdown(f"### {b}"))
    shown = pd.concat([t[t["request"] == r].reindex(models).dropna(subset=["request"]) for r in requests])
    display(shown.assign(model=shown["model"].map(label)).set_index(["request", "model"])[TIME_COLUMNS])

# %% [markdown]
# ## One-off preparation cost (per trained model, from `prepared/<method>/report.json`)

# %%
kinds = sorted({original_kind(r) for r in requests})
prep_rows = [{"backbone": b, "seed": s, "model kind": k, "method": m,
              "seconds": read_json(report)["seconds"]}
             for b in backbones for s in seeds for k in kinds for m in methods
             if Path(report := layout.prepared_report(cfg, dataset, b, s, k, m)).is_file()]
display(pd.DataFrame(prep_rows) if prep_rows else Markdown("No method in this run needs preparation."))

# %%
fig, axes = plt.subplots(len(backbones), len(requests), figsize=(4.2 * len(requests), 0.5 + 3.2 * len(backbones)),
                         squeeze=False, sharey="row")
for i, b in enumerate(backbones):
    for j, request in enumerate(requests):
        ax, rows = axes[i, j], timed[b][timed[b]["request"] == request].reindex(models)
        y = np.arange(len(models))
        ax.barh(y + 0.2, rows["seconds"], 0.4, xerr=rows["seconds_std"].fillna(0), color="C0", label="per request")
        prep = rows["prep_seconds"].where(rows["prep_seconds"] > 0)
        ax.barh(y - 0.2, prep, 0.4, color="none", edgecolor="C1", hatch="///", label="one-off preparation")
        ax.axvline(rows.loc["retrain", "seconds"], color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(y, [label(m) for m in models], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{b} / {request}", fontsize=9)
        ax.set_xlabel("seconds (log; dashed: Retrain)", fontsize=8)
fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
fig.suptitle(f"{dataset}: unlearning time per request vs Retrain (mean over seeds {seeds})")
fig.tight_layout(rect=(0, 0.06, 1, 1))
save_figure(fig, figures_dir, fig_time)

# %% [markdown]
# ## Time against request size (random-edge requests)

# %%
sized = random_requests(requests)
edges = {(b, r): np.mean([read_json(layout.unlearn_metrics(cfg, dataset, b, s, r, "reference"))["request_edges"]
                          for s in seeds]) for b in backbones for r in sized}
fig, axes = plt.subplots(1, len(backbones), figsize=(max(7.5, 5.5 * len(backbones)), 4), squeeze=False)
for ax, b in zip(axes[0], backbones):
    rows = timed[b][timed[b]["request"].isin(sized)].assign(edges=lambda t: [edges[(b, r)] for r in t["request"]])
    for k, model in enumerate(m for m in models if m in set(rows["model"])):
        group = rows[rows["model"] == model].sort_values("edges")
        ax.errorbar(group["edges"], group["seconds"], yerr=group["seconds_std"].fillna(0), marker="osD^vP*X"[k % 8],
                    ls="--" if model == "retrain" else "-", color=f"C{k}", label=label(model), capsize=2, alpha=0.8)
    ax.set(xscale="log", yscale="log", xlabel="deleted edges in the request", ylabel="seconds per request",
           title=f"{b}: {', '.join(sized) if sized else 'no random-edge request'}")
    if sized:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
title = f"{dataset}: time vs request size (mean over seeds {seeds})"
if len(sized) < 2:
    title += (f"\n{'only one request size' if sized else 'no random-edge request'} in this run: "
              "add fractions to requests.random_edges for a trend")
fig.suptitle(title, color="darkred" if len(sized) < 2 else "black")
fig.tight_layout()
save_figure(fig, figures_dir, fig_size)
display(pd.DataFrame([{"backbone": b, "request": r, "deleted edges": e} for (b, r), e in edges.items()]))
