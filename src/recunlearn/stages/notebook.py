"""Run the report notebooks (notebooks/<name>.py, jupytext percent scripts) as pipeline stages.

The notebooks only read what the unlearning and comparison stages wrote, so every number they show is traceable
to a tracked metrics file; `notebook_stage_spec` lists exactly those files so Snakemake and DVC re-run a notebook
when one changes. Execution goes through papermill (parameters injected, kernel `python3` = this venv), and the
executed notebook is kept as .ipynb plus a self-contained .html. A failing cell raises one-line
`RecUnlearnError` and leaves neither notebook, HTML nor figures behind, like every other stage.

The small helpers below (`save_figure`, `forgetting_request`, ...) are imported by the notebooks themselves, so the
choice of files a notebook reads is made in one place, shared with its stage spec.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recunlearn.pipeline import layout
from recunlearn.errors import RecUnlearnError
from recunlearn.pipeline.kinds import is_adversarial, original_kind
from recunlearn.io import atomic_path

NOTEBOOKS = ("comparison", "efficiency", "forgetting", "ablation")
_FIGURES = {
    "comparison": ("comparison",),
    "efficiency": ("efficiency", "efficiency_size"),
    "forgetting": ("forgetting",),
    "ablation": ("ablation",),
}
ABLATION_PREFIX = "unlearnrec"  # UnlearnRec and its ablations (unlearnrec_no_lu, unlearnrec_lu_0.1, ...)
RANDOM_PREFIX = "random-"


def figure_names(notebook: str, dataset: str) -> list[str]:
    """The PNG files a notebook must produce: fixed names, so a stage can declare them as outputs."""
    _check_name(notebook)
    return [f"{stem}_{dataset}.png" for stem in _FIGURES[notebook]]


def notebook_dir(cfg: dict) -> str:
    return f"{cfg['results_dir'].rstrip('/')}/notebooks"


def figure_dir(cfg: dict) -> str:
    return f"{cfg['results_dir'].rstrip('/')}/figures"


# --- choices shared by the notebooks and their stage specs ----------------------------------------------------

def is_ablation(method: str) -> bool:
    """Ablation variants of UnlearnRec get their own notebook and stay out of the main table."""
    return method.startswith(f"{ABLATION_PREFIX}_")


def main_methods(methods: list[str]) -> list[str]:
    return [m for m in methods if not is_ablation(m)]


def ablation_methods(methods: list[str]) -> list[str]:
    return [m for m in methods if m.startswith(ABLATION_PREFIX)]


def forgetting_request(requests: list[str]) -> str:
    """The adversarial request shows forgetting best (its edges are noise a clean model dislikes); else the first."""
    if not requests:
        raise RecUnlearnError("requests: the forgetting notebook needs at least one request")
    return next((r for r in requests if is_adversarial(r)), requests[0])


def random_requests(requests: list[str]) -> list[str]:
    """Random-edge requests ordered by fraction: the series the time-vs-size plot runs over."""
    return sorted((r for r in requests if r.startswith(RANDOM_PREFIX)), key=lambda r: float(r[len(RANDOM_PREFIX):]))


def order_models(models) -> list[str]:
    """Paper order: Original, No unlearning, Retrain, then each method's variants (IE only before IE + fine-tune),
    methods in the order they first appear."""
    models = list(dict.fromkeys(models))
    first = [m for m in ("original", "none", "retrain") if m in models]
    rest = [m for m in models if m not in first]
    methods = list(dict.fromkeys(m.split("/")[0] for m in rest))
    stage = {"ie_only": 0, "ie_ft": 1}
    return first + sorted(rest, key=lambda m: (methods.index(m.split("/")[0]), stage.get(m.split("/")[-1], 2), m))


def model_name(method: str, variant: str) -> str:
    """A variant's row name in comparison.csv (the naming `comparison.collect` uses), for files read directly."""
    return variant if method == "reference" or variant == method else f"{method}/{variant}"


def save_figure(fig, folder: str, filename: str) -> None:
    """Write a figure atomically under its declared name, show it inline, and free it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    with atomic_path(Path(folder) / filename) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    display(fig)
    plt.close(fig)


# --- stage spec ----------------------------------------------------------------------------------------------

def notebook_parameters(cfg: dict, dataset: str) -> dict:
    """The papermill parameters of a notebook stage, all taken from the validated config."""
    from recunlearn.pipeline.kinds import evaluated_request_ids

    return {"results_dir": cfg["results_dir"], "dataset": dataset, "backbones": list(cfg["backbones"]),
            "seeds": list(cfg["seeds"]), "requests": evaluated_request_ids(cfg), "methods": list(cfg["methods"]),
            "figures_dir": figure_dir(cfg)}


def _prepared(cfg: dict, dataset: str, backbone: str, seed: int, requests: list[str]) -> list[str]:
    from recunlearn.unlearning import method_class

    kinds = sorted({original_kind(r) for r in requests})
    return [layout.prepared_report(cfg, dataset, backbone, seed, kind, m)
            for m in cfg["methods"] if method_class(m, cfg["method_settings"].get(m)).needs_preparation
            for kind in kinds]


def _reads(cfg: dict, name: str, dataset: str) -> list[str]:
    """Exactly the result files notebook `name` opens (mirrors the notebook's own reading cells)."""
    p = notebook_parameters(cfg, dataset)
    csvs = [layout.comparison(cfg, dataset, b, "csv") for b in p["backbones"]]
    grid = [(b, s) for b in p["backbones"] for s in p["seeds"]]
    if name == "comparison":
        return csvs + [layout.unlearn_metrics(cfg, dataset, b, s, r, m) for b, s in grid for r in p["requests"]
                       for m in ["reference", *main_methods(p["methods"])]]
    if name == "efficiency":
        sizes = [layout.unlearn_metrics(cfg, dataset, b, s, r, "reference")
                 for b, s in grid for r in random_requests(p["requests"])]
        return csvs + sizes + [f for b, s in grid for f in _prepared(cfg, dataset, b, s, p["requests"])]
    if name == "forgetting":
        rid, seed = forgetting_request(p["requests"]), p["seeds"][0]
        return [getter(cfg, dataset, b, seed, rid, m) for b in p["backbones"]
                for m in ["reference", *main_methods(p["methods"])]
                for getter in (layout.unlearn_metrics, layout.unlearn_scores)]
    return csvs


def notebook_stage_spec(cfg: dict, name: str, dataset: str) -> dict:
    """deps / outs / figures of the stage running notebook `name` on `dataset` (paths relative to the project)."""
    _check_name(name)
    out = f"{notebook_dir(cfg)}/{name}_{dataset}"
    from recunlearn.pipeline.deps import closure

    return {"deps": [*_reads(cfg, name, dataset), f"notebooks/{name}.py",
                     *closure("recunlearn.stages.notebook", "recunlearn.stages.compare")],
            "outs": [f"{out}.ipynb", f"{out}.html"],
            "figures": [f"{figure_dir(cfg)}/{f}" for f in figure_names(name, dataset)]}


# --- execution -----------------------------------------------------------------------------------------------

def _check_name(name: str) -> None:
    if name not in NOTEBOOKS:
        raise RecUnlearnError(f"--notebook: unknown notebook '{name}' (known: {', '.join(NOTEBOOKS)})")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def execute_notebook(name: str, out_dir: str | Path, figures_dir: str | Path, parameters: dict,
                     root: str | Path | None = None) -> None:
    """Execute notebooks/<name>.py with `parameters`; write <out_dir>/<name>_<dataset>.{ipynb,html}.

    `root` is the project folder (default: the working directory, where the pipeline's relative paths start);
    the kernel runs there, so results_dir and figures_dir may be relative.
    """
    import jupytext
    import nbformat
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbconvert import HTMLExporter

    _check_name(name)
    root = Path(root) if root is not None else Path.cwd()
    dataset = parameters["dataset"]
    figures = [root / figures_dir / f for f in figure_names(name, dataset)]
    source = root / "notebooks" / f"{name}.py"
    if not source.is_file():
        raise RecUnlearnError(f"{source}: notebook source not found")
    params = {**parameters, "figures_dir": str(figures_dir)}
    try:
        try:
            nb = papermill.execute_notebook(jupytext.read(source), None, parameters=params, kernel_name="python3",
                                            cwd=str(root), log_output=False, progress_bar=False)
        except papermill.PapermillExecutionError as exc:
            raise RecUnlearnError(f"notebook {name} (dataset {dataset}): cell [{exc.exec_count}] failed: "
                                  f"{exc.ename}: {_one_line(exc.evalue)}") from None
        except NoSuchKernel as exc:
            raise RecUnlearnError(f"notebook {name}: {_one_line(exc)}; run `python -m ipykernel install "
                                  "--sys-prefix --name python3` in the venv") from None
        missing = [str(f) for f in figures if not f.is_file() or f.stat().st_size == 0]
        if missing:
            raise RecUnlearnError(f"notebook {name} (dataset {dataset}) did not write its figure(s) "
                                  f"{', '.join(missing)}")
    except BaseException:
        for fig in figures:  # a failed run must not leave figures that look current
            fig.unlink(missing_ok=True)
        raise
    html, _ = HTMLExporter(embed_images=True).from_notebook_node(nb)  # rendered before anything is written
    stem = root / out_dir / f"{name}_{dataset}"
    with atomic_path(stem.with_suffix(".ipynb")) as tmp:
        nbformat.write(nb, str(tmp))
    with atomic_path(stem.with_suffix(".html")) as tmp:
        tmp.write_text(html, encoding="utf-8")


def notebook_main(argv: list[str] | None = None) -> int:
    """`recunlearn notebook --notebook NAME --dataset D --config PATH`: one notebook stage."""
    from recunlearn.config import DEFAULT_CONFIG_PATH, load_config

    parser = argparse.ArgumentParser(prog="recunlearn notebook", description=notebook_main.__doc__)
    parser.add_argument("--notebook", required=True, choices=NOTEBOOKS)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH))
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.dataset not in cfg["datasets"]:
            raise RecUnlearnError(f"--dataset: '{args.dataset}' is not in the datasets of {args.config}")
        params = notebook_parameters(cfg, args.dataset)
        execute_notebook(args.notebook, notebook_dir(cfg), params["figures_dir"], params)
    except RecUnlearnError as exc:
        print(f"recunlearn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(notebook_main())
