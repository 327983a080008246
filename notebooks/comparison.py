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
# The paper-style table: one table per request, one row per model, and one column group per backbone. The
# columns, at the largest cut-off k of the run's `evaluation.ks`:
#
# - utility: Recall@k and NDCG@k on the test pairs (known interactions masked);
# - fairness: A-IGF@k, the absolute NDCG@k gap between active and inactive users (CURE4Rec; lower is fairer);
# - forgetting: the **forgetting error**, the Kolmogorov-Smirnov distance between the deleted edges' within-user
#   rank percentiles under the model and under Retrain on the same request and seed (0 = the deleted edges rank
#   as if the model had been retrained, 1 = disjoint; under- and over-forgetting both count), then MI-BF and MI-NG.
#
# Each cell is the mean ± std over seeds, followed by the gap to Retrain in brackets (not for the forgetting
# error, which already is a distance to Retrain). A `*` marks a significant difference from Retrain (paired
# t-test over seeds, p < 0.05) where the compare stage tests that metric. Means, standard deviations and p-values
# all come from `comparison.csv`, which the compare stage writes.

# %% tags=["parameters"]
config_file = "config/config.yaml"
dataset = "ml-100k"

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.lines import Line2D

from recunlearn import report

run = report.open_run(config_file, dataset)
K = max(run.cfg["evaluation"]["ks"])  # the cut-off every figure and table of this notebook shows
RECALL = f"recall@{K}"
METRICS = {
    RECALL: f"Recall@{K}",
    f"ndcg@{K}": f"NDCG@{K}",
    f"a_igf@{K}": f"A-IGF@{K}",
    "rank_ks": "forgetting error",
    "mi_bf": "MI-BF",
    "mi_ng": "MI-NG",
}
NO_GAP = {"rank_ks"}  # already a distance to Retrain
shown = ["reference", *report.main_methods(run.methods)]  # ablation variants have their own notebook
tables = {b: run.table(b) for b in run.backbones}
models = report.order_models(m for t in tables.values() for m in t["model"] if report.method_of(m) in shown)
display(
    Markdown(
        f"**{dataset}**: backbones {run.backbones}, seeds {run.seeds}, k = {K} (of `evaluation.ks` "
        f"{run.cfg['evaluation']['ks']}), models: " + ", ".join(report.label(m) for m in models)
    )
)
report.record("k", K)
report.record("metrics", list(METRICS))
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
def significant(row: pd.Series, metric: str) -> bool:
    """Whether the compare stage tested `metric` against Retrain and found it significant."""
    p = row.get(f"{metric}_p", float("nan"))
    return bool(pd.notna(p) and p < report.ALPHA)


def cell(row: pd.Series, retrain: pd.Series, metric: str) -> str:
    text = f"{row[metric]:.4f}"
    if pd.notna(row[f"{metric}_std"]):
        text += f" ± {row[f'{metric}_std']:.4f}"
    if row["model"] != "retrain" and metric not in NO_GAP:
        text += f" ({row[metric] - retrain[metric]:+.4f})"
    return text + ("*" if significant(row, metric) else "")


means, marked = {}, []
for request in run.requests:
    columns = {}
    for b in run.backbones:
        rows = tables[b][tables[b]["request"] == request].set_index("model", drop=False)
        for metric, title in METRICS.items():
            columns[(b, title)] = [
                cell(rows.loc[m], rows.loc["retrain"], metric) if m in rows.index else "-" for m in models
            ]
            marked += [[b, request, m, metric] for m in models if m in rows.index and significant(rows.loc[m], metric)]
        means.setdefault(b, {})[request] = rows.loc[rows.index.isin(models), list(METRICS)].to_dict("index")
    table = pd.DataFrame(columns, index=pd.Index([report.label(m) for m in models], name="model"))
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["backbone", "metric"])
    display(Markdown(f"### {request}: mean ± std (gap to Retrain)"))
    display(table)
report.record("means", means)
report.record("significant", marked)
report.record(
    f"retrain_{RECALL}", {b: {r: rows["retrain"][RECALL] for r, rows in per.items()} for b, per in means.items()}
)

# %% [markdown]
# ## Recall and MI-NG per model

# %%
fig, axes = plt.subplots(len(run.requests), 2, figsize=(11, 2.9 * len(run.requests)), squeeze=False)
width = 0.8 / len(run.backbones)
x = np.arange(len(models))
for i, request in enumerate(run.requests):
    for j, metric in enumerate((RECALL, "mi_ng")):
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
run.save_figure(fig, "comparison", 0)

# %% [markdown]
# ## Trade-off: utility against forgetting error, with time
#
# One panel per request (and backbone): each model is a point at its Recall@k (x, higher is better) and its
# forgetting error (y, the rank KS distance to Retrain; lower is better), so Retrain sits at y = 0 and a method
# does best at the bottom (it forgets as Retrain does), at or right of Retrain's utility. The marker area
# grows with the log of the model's seconds (per request for the unlearning methods and No unlearning, the
# training time up to the kept epoch for Original and Retrain), on one scale shared by every panel; the legend on
# the right gives the area of a few reference times. The dotted vertical line is Retrain's Recall@k. Means over
# seeds, from `comparison.csv`.

# %%
X, Y, SIZE = RECALL, "rank_ks", "seconds"
points = {}
for b in run.backbones:
    for request in run.requests:
        rows = tables[b][tables[b]["request"] == request].set_index("model")
        rows = rows.reindex([m for m in models if m in rows.index])
        points.setdefault(b, {})[request] = {
            m: {"x": float(r[X]), "y": float(r[Y]), "seconds": float(r[SIZE])} for m, r in rows.iterrows()
        }
times = [p["seconds"] for per in points.values() for rows in per.values() for p in rows.values()]
positive = [t for t in times if t > 0] or [1.0]
LO, HI = math.log10(min(positive)), math.log10(max(positive))
if HI - LO < 1e-9:
    LO, HI = LO - 0.5, HI + 0.5
AREA = (20.0, 420.0)  # marker area (points^2) of the fastest and the slowest row


def area(seconds: float) -> float:
    """Marker area linear in log10(seconds) between the fastest and the slowest row of the whole figure."""
    t = math.log10(max(seconds, min(positive)))
    return AREA[0] + (AREA[1] - AREA[0]) * (t - LO) / (HI - LO)


def reference_times() -> list[float]:
    """Round times spanning the figure's range, for the size legend: its ends and the powers of ten between."""
    ends = [float(f"{10**LO:.1g}"), float(f"{10**HI:.1g}")]
    decades = [10.0**e for e in range(math.ceil(LO), math.floor(HI) + 1)]
    picked: list[float] = []
    for t in sorted({*ends, *decades}):
        if not picked or t / picked[-1] >= 2.5:  # legend entries far enough apart to tell
            picked.append(t)
    if picked[-1] != ends[1] and len(picked) > 1:
        picked[-1] = ends[1]
    return picked


OFFSETS = [(6, 3), (6, -9), (-6, 3), (-6, -9), (6, 11), (6, -17), (-6, 11), (-6, -17), (0, 18), (0, -24)]


def label_points(ax, rows: dict) -> None:
    """Write each row's label beside its point, at the first of `OFFSETS` (in points) whose text overlaps no label
    already placed in the panel (the last one if all do)."""
    renderer = ax.figure.canvas.get_renderer()
    placed = []
    for model, p in sorted(rows.items(), key=lambda item: (-item[1]["y"], item[1]["x"])):
        for dx, dy in OFFSETS:
            text = ax.annotate(
                report.label(model),
                (p["x"], p["y"]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx >= 0 else "right",
                fontsize=6,
            )
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(other) for other in placed) or (dx, dy) == OFFSETS[-1]:
                placed.append(box)
                break
            text.remove()


colors = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(models)}
panels = [(b, request) for b in run.backbones for request in run.requests]
ncols = min(3, len(panels))
nrows = math.ceil(len(panels) / ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols + 1.4, 4.3 * nrows), squeeze=False)
for ax in axes.flat[len(panels) :]:
    ax.axis("off")
for ax, (b, request) in zip(axes.flat, panels):
    rows = points[b][request]
    for model, p in rows.items():
        retrain = model == "retrain"
        ax.scatter(
            p["x"],
            p["y"],
            s=area(p["seconds"]),
            marker="*" if retrain else "o",
            color="k" if retrain else colors[model],
            edgecolor="k",
            linewidth=0.5,
            alpha=0.85,
            zorder=3 if retrain else 2,
        )
    ax.axhline(0, color="k", lw=0.6)
    if "retrain" in rows:
        ax.axvline(rows["retrain"]["x"], color="k", ls=":", lw=0.8)
    top = max([p["y"] for p in rows.values()] + [0.1])
    ax.set_ylim(-0.05 * top - 0.01, min(1.05, top * 1.15 + 0.02))
    xs = [p["x"] for p in rows.values()]
    pad = max(0.01, 0.12 * (max(xs) - min(xs))) if xs else 0.01
    if xs:
        ax.set_xlim(min(xs) - pad, max(xs) + 2 * pad)  # room for the labels on the right
    ax.set_title(f"{b} / {request}", fontsize=9)
    ax.set_xlabel(f"Recall@{K} (utility)", fontsize=8)
    ax.set_ylabel("forgetting error (rank KS vs Retrain)", fontsize=8)
    ax.tick_params(labelsize=7)
fig.tight_layout(rect=(0, 0, 1, 0.95))
for ax, (b, request) in zip(axes.flat, panels):
    label_points(ax, points[b][request])
handles = [
    Line2D([], [], ls="", marker="o", markersize=math.sqrt(area(t)), color="0.7", mec="k", mew=0.5, label=f"{t:g} s")
    for t in reference_times()
]
fig.legend(
    handles=handles,
    title="time (marker area, log)",
    loc="center left",
    bbox_to_anchor=(1.0, 0.5),
    fontsize=7,
    title_fontsize=8,
    labelspacing=1.6,
    borderpad=1.0,
    frameon=False,
)
fig.suptitle(
    f"{dataset}: utility vs forgetting error (Retrain = 0), marker area = seconds (mean over seeds {run.seeds})"
)
run.save_figure(fig, "comparison", 1)
report.record("tradeoff_axes", {"x": X, "y": Y, "size": SIZE})
report.record("tradeoff", points)
