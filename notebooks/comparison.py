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
# # Main comparison
#
# The paper-style table: one table per request, one row per model, and one column group per backbone
# (Recall@20, NDCG@20, MI-BF, MI-NG). Each cell is the mean ± std over seeds, followed by the gap to Retrain in
# brackets. A `*` marks a significant difference from Retrain (paired t-test over seeds, p < 0.05).
# Means, standard deviations and p-values all come from `comparison.csv`, which the compare stage writes.

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
METRICS = {"recall@20": "Recall@20", "ndcg@20": "NDCG@20", "mi_bf": "MI-BF", "mi_ng": "MI-NG"}
shown = ["reference", *report.main_methods(run.methods)]  # ablation variants have their own notebook
tables = {b: run.table(b) for b in run.backbones}
models = report.order_models(m for t in tables.values() for m in t["model"] if report.method_of(m) in shown)
display(
    Markdown(
        f"**{dataset}**: backbones {run.backbones}, seeds {run.seeds}, models: "
        + ", ".join(report.label(m) for m in models)
    )
)
report.record("models", models)

# %% [markdown]
# ## Significance against Retrain

# %%
if len(run.seeds) < 2:
    display(Markdown("**Significance: n/a (one seed)**. The paired t-test needs at least two seeds."))
else:
    display(Markdown(f"Significance: paired t-test over seeds {run.seeds}. `*` means p < {report.ALPHA}."))

# %% [markdown]
# ## One table per request


# %%
def cell(row: pd.Series, retrain: pd.Series, metric: str) -> str:
    text = f"{row[metric]:.4f}"
    if pd.notna(row[f"{metric}_std"]):
        text += f" ± {row[f'{metric}_std']:.4f}"
    if row["model"] != "retrain":
        text += f" ({row[metric] - retrain[metric]:+.4f})"
    return text + ("*" if row[f"{metric}_p"] < report.ALPHA else "")


means, marked = {}, []
for request in run.requests:
    columns = {}
    for b in run.backbones:
        rows = tables[b][tables[b]["request"] == request].set_index("model", drop=False)
        for metric, title in METRICS.items():
            columns[(b, title)] = [
                cell(rows.loc[m], rows.loc["retrain"], metric) if m in rows.index else "-" for m in models
            ]
            marked += [
                [b, request, m, metric] for m in models if m in rows.index and rows.loc[m, f"{metric}_p"] < report.ALPHA
            ]
        means.setdefault(b, {})[request] = rows.loc[rows.index.isin(models), list(METRICS)].to_dict("index")
    table = pd.DataFrame(columns, index=pd.Index([report.label(m) for m in models], name="model"))
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["backbone", "metric"])
    display(Markdown(f"### {request}: mean ± std (gap to Retrain)"))
    display(table)
report.record("means", means)
report.record("significant", marked)
report.record(
    "retrain_recall@20", {b: {r: rows["retrain"]["recall@20"] for r, rows in per.items()} for b, per in means.items()}
)

# %% [markdown]
# ## Recall@20 and MI-NG per model

# %%
fig, axes = plt.subplots(len(run.requests), 2, figsize=(11, 2.9 * len(run.requests)), squeeze=False)
width = 0.8 / len(run.backbones)
x = np.arange(len(models))
for i, request in enumerate(run.requests):
    for j, metric in enumerate(("recall@20", "mi_ng")):
        ax = axes[i, j]
        for k, b in enumerate(run.backbones):
            rows = tables[b][tables[b]["request"] == request].set_index("model").reindex(models)
            ax.bar(
                x + (k - (len(run.backbones) - 1) / 2) * width,
                rows[metric],
                width,
                yerr=rows[f"{metric}_std"],
                label=b,
                capsize=2,
            )
            ax.axhline(rows.loc["retrain", metric], color=f"C{k}", ls="--", lw=0.8)
        ax.set_title(f"{request}: {METRICS[metric]} (dashed: Retrain)", fontsize=9)
        ax.set_xticks(x, [report.label(m) for m in models], rotation=35, ha="right", fontsize=7)
        if i == 0 and j == 0:
            ax.legend(fontsize=7)
fig.suptitle(f"{dataset}: utility and forgetting per model (mean over seeds {run.seeds})")
fig.tight_layout()
run.save_figure(fig, "comparison")
