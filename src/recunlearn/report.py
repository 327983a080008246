"""What the analysis notebooks import: their run, its tables, labels, model order, figures and recorded numbers.

A notebook takes two parameters, `config_file` and `dataset`; `open_run` derives the rest from the validated
config, and its readers open only what the compare stage wrote (`notebook_inputs`), so a notebook's declared
dependencies are exactly those files plus its own source. `record` stores a key number in the executed notebook
(a display output with its own MIME type, as microsoft/recommenders' `store_metadata`), and `read_records` reads
it back, so tests check the values a notebook shows instead of its markup.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from recunlearn.errors import RecUnlearnError
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import evaluated_request_ids, is_adversarial

NOTEBOOKS = ("comparison", "efficiency", "forgetting", "ablation")
_FIGURES = {
    "comparison": ("comparison", "comparison_tradeoff"),  # the bars, then utility vs forgetting error with time
    "efficiency": ("efficiency", "efficiency_size"),
    "forgetting": ("forgetting",),
    "ablation": ("ablation",),
}
RECORD_MIME = "application/x.recunlearn.record+json"
OVERRIDES_ENV = "RECUNLEARN_NOTEBOOK_SET"  # the run's `--set` overrides (JSON), set by the notebook stage only
ALPHA = 0.05  # significance level of the paired t-tests against Retrain: a `*` in every table
LABELS = {"original": "Original", "retrain": "Retrain", "none": "No unlearning (remaining graph)"}
VARIANTS = {"ie_only": "IE only", "ie_ft": "IE + fine-tune"}
REFERENCES = ("original", "retrain")  # the rows of the `reference` job
ABLATION_PREFIX = "unlearnrec"  # UnlearnRec and its ablations (unlearnrec_no_lu, unlearnrec_lu_0.1, ...)
RANDOM_PREFIX = "random-"
SCORE_SETS = ("deleted", "remaining", "non_edges")  # the score sets of a job's scores.npz


def check_notebook(name: str) -> None:
    if name not in NOTEBOOKS:
        raise RecUnlearnError(f"--notebook: unknown notebook '{name}' (known: {', '.join(NOTEBOOKS)})")


def figure_names(notebook: str, dataset: str) -> list[str]:
    """The PNG files a notebook must produce: fixed names, so a stage can declare them as outputs."""
    check_notebook(notebook)
    return [f"{stem}_{dataset}.png" for stem in _FIGURES[notebook]]


def notebook_dir(cfg: dict) -> str:
    return f"{cfg['results_dir'].rstrip('/')}/notebooks"


def figure_dir(cfg: dict) -> str:
    return f"{cfg['results_dir'].rstrip('/')}/figures"


def notebook_inputs(cfg: dict, dataset: str) -> list[str]:
    """Every file a notebook of `dataset` may read: the compare stage's outputs for each backbone."""
    files = []
    for backbone in cfg["backbones"]:
        files += [layout.comparison(cfg, dataset, backbone, ext) for ext in ("csv", "md", "json")]
        files += [layout.comparison_long(cfg, dataset, backbone), layout.score_summaries(cfg, dataset, backbone)]
    return files


# --- names and order of the rows -----------------------------------------------------------------------------


def label(model: str) -> str:
    """Readable row names: 'unlearnrec/ie_ft' -> 'UnlearnRec (IE + fine-tune)'; aliases keep their name."""
    method, _, variant = model.partition("/")
    if variant:
        name = "UnlearnRec" if method == "unlearnrec" else method
        return f"{name} ({VARIANTS.get(variant, variant)})"
    return LABELS.get(model, model)


def method_of(model: str) -> str:
    """The configured method a row comes from (`reference` for Original and Retrain)."""
    return "reference" if model in REFERENCES else model.split("/")[0]


def order_models(models) -> list[str]:
    """Paper order: Original, No unlearning, Retrain, then each method's variants (IE only before IE + fine-tune),
    methods in the order they first appear."""
    models = list(dict.fromkeys(models))
    first = [m for m in ("original", "none", "retrain") if m in models]
    rest = [m for m in models if m not in first]
    methods = list(dict.fromkeys(m.split("/")[0] for m in rest))
    stage = {"ie_only": 0, "ie_ft": 1}
    return first + sorted(rest, key=lambda m: (methods.index(m.split("/")[0]), stage.get(m.split("/")[-1], 2), m))


def is_ablation(method: str) -> bool:
    """Ablation variants of UnlearnRec get their own notebook and stay out of the main table."""
    return method.startswith(f"{ABLATION_PREFIX}_")


def main_methods(methods: list[str]) -> list[str]:
    return [m for m in methods if not is_ablation(m)]


def ablation_methods(methods: list[str]) -> list[str]:
    return [m for m in methods if m.startswith(ABLATION_PREFIX)]


TERM_PREFIX = f"{ABLATION_PREFIX}_no_"  # an ablation that removes one term (unlearnrec_no_lu, ...)
ERROR_STEP, RECALL_STEP = 0.02, 0.005  # the smallest changes of rank_ks and Recall@k that count as an effect


def term_verdicts(table, variants: list[str], requests: list[str], k: int) -> dict:
    """Per `unlearnrec_no_<term>` variant: whether the term earns its cost, from a comparison table.

    A term earns its cost when removing it raises the forgetting error (`rank_ks`) by at least ERROR_STEP or
    lowers Recall@k by at least RECALL_STEP, for "IE + fine-tune" or "IE only", on some request. Returns
    {variant: {"verdict", "changes": [((request, variant), {"error", "recall"})], "prep_seconds",
    "prep_seconds_without"}}; the changes are the variant's minus the full method's.

    Args:
        table: a comparison table (one dataset and backbone) indexed by (request, model).
        variants: the run's UnlearnRec methods (`ablation_methods`).
        requests: the requests to compare on.
        k: the Recall cut-off.
    """
    out = {}
    for method in (m for m in variants if m.startswith(TERM_PREFIX)):
        changes = []
        for request in requests:
            for variant in ("ie_ft", "ie_only"):
                full, ablated = (request, f"{ABLATION_PREFIX}/{variant}"), (request, f"{method}/{variant}")
                if full in table.index and ablated in table.index:
                    change = {
                        "error": float(table.loc[ablated, "rank_ks"] - table.loc[full, "rank_ks"]),
                        "recall": float(table.loc[ablated, f"recall@{k}"] - table.loc[full, f"recall@{k}"]),
                    }
                    changes.append(((request, variant), change))
        earns = any(c["error"] >= ERROR_STEP or c["recall"] <= -RECALL_STEP for _, c in changes)
        methods = table["model"].map(method_of)
        out[method] = {
            "verdict": "earns its cost" if earns else "no measurable effect",
            "changes": changes,
            "prep_seconds": float(table[methods == ABLATION_PREFIX]["prep_seconds"].mean()),
            "prep_seconds_without": float(table[methods == method]["prep_seconds"].mean()),
        }
    return out


def forgetting_request(requests: list[str]) -> str:
    """The adversarial request shows forgetting best (its edges are noise a clean model dislikes); else the first."""
    if not requests:
        raise RecUnlearnError("requests: the forgetting notebook needs at least one request")
    return next((r for r in requests if is_adversarial(r)), requests[0])


def random_requests(requests: list[str]) -> list[str]:
    """Random-edge requests ordered by fraction: the series the time-vs-size plot runs over."""
    return sorted((r for r in requests if r.startswith(RANDOM_PREFIX)), key=lambda r: float(r[len(RANDOM_PREFIX) :]))


# --- the run a notebook shows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One dataset of a configured run, as the notebooks see it. Paths are relative to `root`, the project."""

    cfg: dict
    dataset: str
    root: Path

    @property
    def backbones(self) -> list[str]:
        return list(self.cfg["backbones"])

    @property
    def seeds(self) -> list[int]:
        return list(self.cfg["seeds"])

    @property
    def requests(self) -> list[str]:
        return evaluated_request_ids(self.cfg)

    @property
    def methods(self) -> list[str]:
        return list(self.cfg["methods"])

    def _input(self, path: str) -> Path:
        if path not in notebook_inputs(self.cfg, self.dataset):  # the stage declares only these as deps
            raise RecUnlearnError(f"{path}: not a notebook input (notebooks read only the compare stage's outputs)")
        return self.root / path

    def table(self, backbone: str):
        """comparison.csv: one row per (request, model), means over seeds with `_std` and `_p` columns."""
        import pandas as pd

        return pd.read_csv(self._input(layout.comparison(self.cfg, self.dataset, backbone, "csv")))

    def per_seed(self, backbone: str):
        """comparison_long.csv: one row per (request, model, seed), with the request size and score summaries."""
        import pandas as pd

        return pd.read_csv(self._input(layout.comparison_long(self.cfg, self.dataset, backbone)))

    def scores(self, backbone: str, request: str, seed: int) -> dict:
        """The score histograms of one request and seed: `{"edges": [...], "models": {model: {set: {...}}}}`."""
        data = json.loads(self._input(layout.score_summaries(self.cfg, self.dataset, backbone)).read_text())
        return data["requests"][request][str(seed)]

    def save_figure(self, fig, notebook: str, index: int = 0) -> None:
        """Write a figure under the `index`-th declared name of `notebook`, show it inline, and free it."""
        save_figure(fig, self.root / figure_dir(self.cfg), figure_names(notebook, self.dataset)[index])


def _project_root(config_file: str) -> Path:
    """The folder the config path is relative to: the working directory (papermill runs there) or, when a
    notebook is opened from notebooks/, the nearest parent holding the config."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / config_file).is_file():
            return folder
    raise RecUnlearnError(f"{config_file}: configuration file not found from {here} or its parents")


def open_run(config_file: str, dataset: str) -> Run:
    """The notebook's two parameters -> the validated config of that run, for one of its datasets.

    A pipeline run with `--set` overrides (Snakemake's `--config`) hands them over in `OVERRIDES_ENV`, so the
    notebook sees the grid its stage was planned for; opened by hand, a notebook shows the config file as is."""
    import os

    from recunlearn.config import load_config

    root = _project_root(config_file)
    cfg = load_config(root / config_file, json.loads(os.environ.get(OVERRIDES_ENV) or "{}"))
    if dataset not in cfg["datasets"]:
        raise RecUnlearnError(f"dataset: '{dataset}' is not in the datasets of {config_file}")
    return Run(cfg=cfg, dataset=dataset, root=root)


def density(counts: list[int], edges: list[float]):
    """Histogram counts -> density over the bins (what `plt.hist(..., density=True)` draws)."""
    import numpy as np

    counts, widths = np.asarray(counts, float), np.diff(edges)
    total = counts.sum()
    return counts / (total * widths) if total else counts


# --- figures and recorded numbers ----------------------------------------------------------------------------


def save_figure(fig, folder: str | Path, filename: str) -> None:
    """Write a figure atomically under its declared name, show it inline, and free it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from recunlearn.io import atomic_path

    with atomic_path(Path(folder) / filename) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    display(fig)
    plt.close(fig)


def _plain(value):
    """JSON-ready copy: numpy scalars to Python numbers, NaN to None and infinity to "inf" (as comparison.json),
    tuples to lists, keys to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def record(name: str, value) -> None:
    """Store a key number of the notebook in its output (a display with `RECORD_MIME`, not shown as text)."""
    from IPython.display import display

    display({RECORD_MIME: {name: _plain(value)}}, raw=True)


def read_records(notebook) -> dict:
    """Every value an executed notebook stored with `record`, by name (`notebook`: a path or a NotebookNode)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, Path)) else notebook
    records: dict = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            records.update(output.get("data", {}).get(RECORD_MIME, {}))
    return records
