"""What the analysis notebooks import: where their inputs and outputs are, labels, model order, figures.

A notebook takes two parameters, `config_file` and `dataset`, and reads only what the compare stage wrote
(`notebook_inputs`), so its declared dependencies are exactly those files plus its own source.
"""
from __future__ import annotations

from recunlearn.pipeline import layout

NOTEBOOKS = ("comparison", "efficiency", "forgetting", "ablation")
_FIGURES = {
    "comparison": ("comparison",),
    "efficiency": ("efficiency", "efficiency_size"),
    "forgetting": ("forgetting",),
    "ablation": ("ablation",),
}


def figure_names(notebook: str, dataset: str) -> list[str]:
    """The PNG files a notebook must produce: fixed names, so a stage can declare them as outputs."""
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
