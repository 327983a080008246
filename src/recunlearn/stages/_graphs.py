"""Load the training graph of a planned model kind and the edge sets of a request from the split files.

The one place a stage turns (dataset, backbone, seed, kind or request id) into edge arrays, so every stage
sees the same remaining graph; the kinds are described in `recunlearn.pipeline.kinds`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recunlearn.data.split import Split, load_split, read_edges
from recunlearn.graph.edges import remove_request
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import original_kind


def load_graph(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> tuple[Split, np.ndarray]:
    """(split, training edges) of a model kind: 'original', 'attacked' or 'retrain/<request id>'.

    Args:
        cfg: the validated configuration (for the paths).
        dataset: dataset name.
        backbone: backbone name (the attacked set and adversarial requests depend on it).
        seed: training seed (likewise).
        kind: the model kind; 'retrain/<id>' gives the training edges minus that request.
    """
    split = load_split(layout.split_dir(cfg, dataset))
    if kind == "original":
        return split, split.train
    if kind == "attacked":
        return split, read_edges(Path(layout.attacked_train(cfg, dataset, backbone, seed)))
    if kind.startswith("retrain/"):
        request = read_edges(Path(layout.request_path(cfg, dataset, backbone, seed, kind.split("/", 1)[1])))
        return split, remove_request(split.train, request, split.n_items)
    raise ValueError(f"unknown model kind {kind!r}")


def request_graphs(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str):
    """(split, original training edges, request edges, remaining edges) of one request.

    Args:
        cfg: the validated configuration (for the paths).
        dataset: dataset name.
        backbone: backbone name.
        seed: training seed.
        request_id: the request; adversarial ones are unlearned from the attacked model, others from the original.
    """
    split, trained_on = load_graph(cfg, dataset, backbone, seed, original_kind(request_id))
    request = read_edges(Path(layout.request_path(cfg, dataset, backbone, seed, request_id)))
    return split, trained_on, request, remove_request(trained_on, request, split.n_items)
