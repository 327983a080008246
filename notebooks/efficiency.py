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
# random-edge requests. Every number comes from the compare stage's tables.

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
    "rank_ks",
    "break_even_requests",
]

# %% [markdown]
# ## Time per request (mean over seeds)

# %%
# Original's time is its own training, not an unlearning cost
timed = {b: run.table(b).query("model != 'original'").set_index("model", drop=False) for b in run.backbones}
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
        ax.set_xscale("log")
        ax.set_yticks(y, [report.label(m) for m in models], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{b} / {request}", fontsize=9)
        ax.set_xlabel("seconds (log; dashed: Retrain)", fontsize=8)
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
