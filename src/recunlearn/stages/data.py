"""Data stages: fetch a dataset, split it, write the request sets and the popularity floor.

Each function reads and writes the files of one pipeline step (paths from `recunlearn.pipeline.layout`) and leaves
the work to the library in `recunlearn.data`, so the same code serves the CLI, Snakemake and DVC. What the steps
produce is described in docs/method.md, sections "Datasets used by the paper" and "Requests used in evaluation".
"""

from __future__ import annotations

import logging
from pathlib import Path

from recunlearn.pipeline import layout

log = logging.getLogger(__name__)


def download(cfg: dict, dataset: str) -> Path:
    """Fetch the raw files of `dataset` (URL, then registry mirror) into the raw folder; checksums verified."""
    from recunlearn.data.acquire import acquire
    from recunlearn.data.registry import get_dataset

    spec = get_dataset(dataset, cfg["custom_datasets"])
    return acquire(spec, Path(layout.raw_dir(cfg, dataset)))


def preprocess(cfg: dict, dataset: str) -> dict:
    """Raw files -> binarised, deduplicated, per-user split with id maps and statistics; returns the stats."""
    from recunlearn.data.parsers import read_raw
    from recunlearn.data.preprocess import build_split, write_split

    raw = Path(layout.raw_dir(cfg, dataset))
    frame = read_raw(raw)
    parts, user_ids, item_ids, stats = build_split(frame, cfg["preprocess"], source=str(raw))
    write_split(Path(layout.split_dir(cfg, dataset)), parts, user_ids, item_ids, stats)
    return stats


def requests(cfg: dict, dataset: str) -> dict:
    """Write every configured random-edge and user-wise request of `dataset`, plus their summary."""
    from recunlearn.data.requests import generate_request, request_ids, write_request
    from recunlearn.data.split import load_split
    from recunlearn.io import write_json

    split = load_split(layout.split_dir(cfg, dataset))
    summary = {}
    for rid in request_ids(cfg["requests"]):
        edges = generate_request(split, rid, cfg["requests"]["seed"])
        write_request(Path(layout.request_file(cfg, dataset, rid)), edges)
        summary[rid] = {
            "edges": int(len(edges)),
            "users": int(len(set(edges[:, 0].tolist()))),
            "fraction_of_train": float(len(edges) / len(split.train)),
        }
        log.info("request %s: %d edges", rid, len(edges))
    write_json(layout.request_summary(cfg, dataset), summary)
    return summary


def validate_request(cfg: dict, dataset: str, request_file: str) -> str:
    """Check a request file (raw or internal ids) against the split of `dataset`; return a one-line summary."""
    from recunlearn.data.requests import load_request
    from recunlearn.data.split import load_split

    split = load_split(layout.split_dir(cfg, dataset))
    edges = load_request(request_file, split)
    return (
        f"{request_file}: valid request of {len(edges)} training edges "
        f"({len(set(edges[:, 0].tolist()))} users, {len(set(edges[:, 1].tolist()))} items)"
    )


def popularity(cfg: dict, dataset: str) -> dict:
    """Recall/NDCG of ranking items by training popularity: the floor a trained backbone must clear."""
    from recunlearn.data.split import load_split
    from recunlearn.evaluation.ranking import evaluate_popularity, test_mask_edges
    from recunlearn.io import write_json

    split = load_split(layout.split_dir(cfg, dataset))
    evaluation = cfg["evaluation"]
    mask = test_mask_edges(split.train, split.valid, split.test, split.n_items, evaluation["test_mask"])
    metrics = evaluate_popularity(split.train, mask, split.test, split.n_users, split.n_items, evaluation["ks"])
    write_json(layout.popularity_metrics(cfg, dataset), metrics)
    return metrics
