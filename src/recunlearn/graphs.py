"""Which training graph each model of the plan sees, and which request it must forget.

Three kinds of trained model per (dataset, backbone, seed):
- `original`: trained on the clean training split. It is the model to unlearn from for random-edge and
  user-wise requests, and the Retrain reference of the adversarial protocol (whose remaining graph is the
  clean graph).
- `attacked`: trained on the clean split plus the adversarial noise edges; the model to unlearn from for the
  adversarial request.
- `retrain/<request>`: trained from scratch on the remaining graph of a random-edge or user-wise request.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import paths
from .data.split import Split, load_split, read_edges
from .models import graph

ADVERSARIAL_PREFIX = "adversarial-"


def is_adversarial(request_id: str) -> bool:
    return request_id.startswith(ADVERSARIAL_PREFIX)


def adversarial_id(ratio: float) -> str:
    return f"{ADVERSARIAL_PREFIX}{ratio:g}"


def remove_edges(edges: np.ndarray, request: np.ndarray, n_items: int) -> np.ndarray:
    """edges minus request; every request pair must be one of the edges (a plan's requests always are)."""
    remaining = graph.remove_edges(edges, request, n_items)
    if len(edges) - len(remaining) != len(np.unique(request[:, 0] * n_items + request[:, 1])):
        raise ValueError("some request edges are not in the training graph")
    return remaining


def original_kind(request_id: str) -> str:
    """The trained model a request is unlearned from."""
    return "attacked" if is_adversarial(request_id) else "original"


def load_graph(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> tuple[Split, np.ndarray]:
    """(split, training edges) of a model kind: 'original', 'attacked' or 'retrain/<request id>'."""
    split = load_split(paths.split_dir(cfg, dataset))
    if kind == "original":
        return split, split.train
    if kind == "attacked":
        return split, read_edges(Path(paths.attacked_train(cfg, dataset, backbone, seed)))
    if kind.startswith("retrain/"):
        request = read_edges(Path(paths.request_path(cfg, dataset, backbone, seed, kind.split("/", 1)[1])))
        return split, remove_edges(split.train, request, split.n_items)
    raise ValueError(f"unknown model kind {kind!r}")


def request_graphs(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str):
    """(split, original training edges, request edges, remaining edges) of one request."""
    split, trained_on = load_graph(cfg, dataset, backbone, seed, original_kind(request_id))
    request = read_edges(Path(paths.request_path(cfg, dataset, backbone, seed, request_id)))
    return split, trained_on, request, remove_edges(trained_on, request, split.n_items)
