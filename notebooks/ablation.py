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
# # UnlearnRec ablations
#
# Recall@k (utility, at the largest cut-off of the run's `evaluation.ks`), MI-NG and the forgetting error (the
# rank KS distance of the deleted edges to Retrain's; 0 = as if retrained) of every UnlearnRec variant this run
# contains: the full method (`unlearnrec`), plus any configured ablation such as `unlearnrec_no_lu`,
# `unlearnrec_no_lp`, `unlearnrec_no_lc`, `unlearnrec_no_pretrain` or a loss-weight sweep `unlearnrec_lu_<x>`.
# Each is shown after the IE pass alone and after the fine-tune. Retrain is the dashed reference line (at 0 for
# the forgetting error). The values come from `comparison.csv`, as means over seeds.

# %% tags=["parameters"]
config_file = "config/config.yaml"
dataset = "ml-100k"

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib import pyplot as plt

from recunlearn import report

run = report.open_run(config_file, dataset)
K = max(run.cfg["evaluation"]["ks"])
METRICS = {f"recall@{K}": f"Recall@{K}", "mi_ng": "MI-NG", "rank_ks": "forgetting error"}
variants = report.ablation_methods(run.methods)
tables = {b: run.table(b).set_index(["request", "model"], drop=False) for b in run.backbones}
rows = {b: t[t["model"].map(report.method_of).isin(variants)] for b, t in tables.items()}
models = report.order_models(m for r in rows.values() for m in r["model"])
only_full = [m for m in variants if m != "unlearnrec"] == []
missing = "no ablation variant in this run (only unlearnrec)" if variants else "no UnlearnRec method in this run"
display(
    Markdown(
        f"**{missing.capitalize()}**: add e.g. `unlearnrec_no_lu` to `methods` to compare."
        if only_full
        else f"Variants: {', '.join(variants)}."
    )
)
report.record("k", K)
report.record("variants", variants)
report.record("models", models)

# %% [markdown]
# ## Table (mean ± std over seeds)


# %%
def fmt(row: pd.Series, metric: str) -> str:
    std = row[f"{metric}_std"]
    return f"{row[metric]:.4f}" + ("" if pd.isna(std) else f" ± {std:.4f}")


values = {metric: {} for metric in METRICS}
for request in run.requests:
    columns = {}
    for b in run.backbones:
        sub = rows[b][rows[b]["request"] == request].set_index("model")
        retrain = tables[b].loc[(request, "retrain")]
        for metric, title in METRICS.items():
            columns[(b, title)] = {
                **{m: fmt(sub.loc[m], metric) for m in models if m in sub.index},
                "Retrain": fmt(retrain, metric),
            }
            values[metric].setdefault(b, {})[request] = sub[metric].to_dict()
    table = pd.DataFrame(columns)
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["backbone", "metric"])
    display(Markdown(f"### {request}"))
    display(table)
for metric, per_backbone in values.items():
    report.record(metric, per_backbone)

# %% [markdown]
# ## Figure

# %%
fig, axes = plt.subplots(
    len(run.requests),
    len(METRICS),
    squeeze=False,
    figsize=(max(11, min(16, 5 + 1.2 * len(models))), 0.6 + 2.8 * len(run.requests)),
)
width = 0.8 / len(run.backbones)
for i, request in enumerate(run.requests):
    for j, (metric, title) in enumerate(METRICS.items()):
        ax = axes[i, j]
        for k, b in enumerate(run.backbones):
            sub = rows[b][rows[b]["request"] == request].set_index("model").reindex(models)
            x = np.arange(len(models))
            ax.bar(
                x + (k - (len(run.backbones) - 1) / 2) * width,
                sub[metric],
                width,
                yerr=sub[f"{metric}_std"],
                color=f"C{k}",
                capsize=2,
                label=b,
            )
            ax.axhline(float(tables[b].loc[(request, "retrain"), metric]), color=f"C{k}", ls="--", lw=0.8)
        ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{request}: {title} (dashed: Retrain)", fontsize=9)
        if i == 0 and j == 0:
            ax.legend(fontsize=7)
title = f"{dataset}: UnlearnRec variants"
if only_full:
    title += f"\n{missing}: add e.g. unlearnrec_no_lu to methods"
fig.suptitle(title, color="darkred" if only_full else "black")
fig.tight_layout()
run.save_figure(fig, "ablation")

# %% [markdown]
# ## Which terms earn their cost
#
# For every `unlearnrec_no_<term>` variant and every request: how much removing the term changes the forgetting
# error and Recall@k of "IE + fine-tune" and of "IE only" against the full method (positive error change =
# the variant forgets worse, so the term helps), and what the term costs in preparation seconds. A term earns
# its cost when removing it raises the error by at least `ERROR_STEP` or lowers Recall@k by at least
# `RECALL_STEP` (both printed below) on some request, for one of the two variants (`report.term_verdicts`).

# %%
display(Markdown(f"ERROR_STEP = {report.ERROR_STEP}, RECALL_STEP = {report.RECALL_STEP}"))
verdicts = {}
for b in run.backbones:
    verdicts[b] = report.term_verdicts(tables[b], variants, run.requests, K)
    lines = [
        f"- **{m[len(report.TERM_PREFIX) :]}**: {v['verdict']} (preparation {v['prep_seconds']:.0f} s with it, "
        f"{v['prep_seconds_without']:.0f} s without); "
        + "; ".join(
            f"{r} {var}: error {d['error']:+.3f}, Recall@{K} {d['recall']:+.4f}" for (r, var), d in v["changes"]
        )
        for m, v in verdicts[b].items()
    ]
    display(Markdown(f"### {b}\n" + ("\n".join(lines) or "No `unlearnrec_no_<term>` variant in this run.")))
report.record("verdicts", {b: {m: v["verdict"] for m, v in per.items()} for b, per in verdicts.items()})
