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
# The means come from `comparison.csv`. The per-seed values for the test come from each seed's `metrics.json`.

# %% tags=["parameters"]
results_dir = "results/tiny"
dataset = "tiny"
backbones = ["lightgcn"]
seeds = [0]
requests = ["adversarial-0.5", "random-0.05", "users-core-0.1", "users-edge-0.1"]
methods = ["none", "unlearnrec"]
figures_dir = "results/tiny/figures"

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from scipy.stats import ttest_rel

from recunlearn.pipeline import layout
from recunlearn.stages.compare import collect, label
from recunlearn.stages.notebook import figure_names, main_methods, order_models, save_figure

cfg = {"results_dir": results_dir, "seeds": seeds}
METRICS = {"recall@20": "Recall@20", "ndcg@20": "NDCG@20", "mi_bf": "MI-BF", "mi_ng": "MI-NG"}
ALPHA = 0.05
shown = main_methods(methods)

# %% [markdown]
# ## Reading the results

# %%
tables = {b: pd.read_csv(layout.comparison(cfg, dataset, b, "csv")) for b in backbones}
per_seed = {b: collect(cfg, dataset, b, requests, shown, prepared=set()) for b in backbones}


def keep(model: str) -> bool:
    """The main table holds the references and the main methods. Ablation variants have their own notebook."""
    return model in ("original", "retrain") or model.split("/")[0] in shown


models = order_models(m for t in tables.values() for m in t["model"] if keep(m))
display(Markdown(f"**{dataset}**: backbones {backbones}, seeds {seeds}, models: "
                 + ", ".join(label(m) for m in models)))

# %% [markdown]
# ## Significance against Retrain

# %%
def p_value(backbone: str, request: str, model: str, metric: str) -> float:
    """Paired t-test of a model against Retrain over seeds (pairs matched by seed)."""
    long = per_seed[backbone]
    rows = long[long["request"] == request].pivot(index="seed", columns="model", values=metric)
    if model == "retrain" or model not in rows or len(rows) < 2:
        return np.nan
    with warnings.catch_warnings():  # identical per-seed differences give p = nan (no mark), not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_rel(rows[model], rows["retrain"]).pvalue)


if len(seeds) < 2:
    display(Markdown("**Significance: n/a (one seed)**. The paired t-test needs at least two seeds."))
else:
    display(Markdown(f"Significance: paired t-test over seeds {seeds}. `*` means p < {ALPHA}."))

# %% [markdown]
# ## One table per request

# %%
def cell(row: pd.Series, retrain: pd.Series, metric: str, p: float) -> str:
    text = f"{row[metric]:.4f}"
    if pd.notna(row.get(f"{metric}_std")):
        text += f" ± {row[f'{metric}_std']:.4f}"
    if row["model"] != "retrain":
        text += f" ({row[metric] - retrain[metric]:+.4f})"
    return text + ("*" if p < ALPHA else "")


for request in requests:
    columns = {}
    for b in backbones:
        rows = tables[b][tables[b]["request"] == request].set_index("model", drop=False)
        for metric, title in METRICS.items():
            columns[(b, title)] = [cell(rows.loc[m], rows.loc["retrain"], metric, p_value(b, request, m, metric))
                                   if m in rows.index else "-" for m in models]
    table = pd.DataFrame(columns, index=pd.Index([label(m) for m in models], name="model"))
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["backbone", "metric"])
    display(Markdown(f"### {request}: mean ± std (gap to Retrain)"))
    display(table)

# %% [markdown]
# ## Recall@20 and MI-NG per model

# %%
fig, axes = plt.subplots(len(requests), 2, figsize=(11, 2.9 * len(requests)), squeeze=False)
width = 0.8 / len(backbones)
x = np.arange(len(models))
for i, request in enumerate(requests):
    for j, metric in enumerate(("recall@20", "mi_ng")):
        ax = axes[i, j]
        for k, b in enumerate(backbones):
            rows = tables[b][tables[b]["request"] == request].set_index("model").reindex(models)
            ax.bar(x + (k - (len(backbones) - 1) / 2) * width, rows[metric], width, yerr=rows[f"{metric}_std"],
                   label=b, capsize=2)
            ax.axhline(rows.loc["retrain", metric], color=f"C{k}", ls="--", lw=0.8)
        ax.set_title(f"{request}: {METRICS[metric]} (dashed: Retrain)", fontsize=9)
        ax.set_xticks(x, [label(m) for m in models], rotation=35, ha="right", fontsize=7)
        if i == 0 and j == 0:
            ax.legend(fontsize=7)
fig.suptitle(f"{dataset}: utility and forgetting per model (mean over seeds {seeds})")
fig.tight_layout()
save_figure(fig, figures_dir, figure_names("comparison", dataset)[0])
