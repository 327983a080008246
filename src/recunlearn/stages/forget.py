"""Unlearn a user's own request file from a trained pipeline model: the `recunlearn forget` step.

The flow is the unlearn stage's (`stages.unlearn.request_task`: same task, same forgetting reference, same
reference seed rule), so a request whose edges equal a pipeline request gets that request's numbers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from recunlearn.backbones.checkpoint import data_fingerprint, save_checkpoint
from recunlearn.data.requests import load_request, request_ids
from recunlearn.data.split import Split, load_split, read_edges, write_edges
from recunlearn.errors import RecUnlearnError
from recunlearn.evaluation.protocol import FORGETTING_KEYS as PROTOCOL_FORGETTING_KEYS
from recunlearn.evaluation.protocol import evaluate_unlearned
from recunlearn.graph.edges import edge_keys
from recunlearn.io import atomic_dir, write_json
from recunlearn.pipeline import layout
from recunlearn.stages._runtime import run_conditions
from recunlearn.stages.unlearn import jsonable, method_settings, prepared_state, request_task
from recunlearn.unlearning import build_method

USER_PREFIX = "user-"
# The report's forgetting figures are the raw ones: the forgetting error needs a Retrain of the same request,
# which `forget` does not train (the pipeline's tables have it for the configured requests).
FORGETTING_KEYS = (*PROTOCOL_FORGETTING_KEYS, "deleted_percentile_mean")


def user_request_id(request: np.ndarray) -> str:
    """`user-<12 hex>`: a digest of the request's sorted internal edges, so the same set always has the same id
    (whether its file used raw or internal ids, and in whatever row order)."""
    edges = np.ascontiguousarray(request[np.lexsort((request[:, 1], request[:, 0]))], dtype="<i8")
    return USER_PREFIX + hashlib.sha256(edges.tobytes()).hexdigest()[:12]


def identify_request(cfg: dict, dataset: str, split: Split, request: np.ndarray) -> tuple[str, np.ndarray]:
    """(request id, edges) of a user's request on the original model.

    A request with the same edge set as one of the configured random-edge or user-wise requests (whose file the
    requests stage wrote) takes that request's id and its edges in the file's order: the unlearn stage ran on
    exactly those. Any other request gets `user_request_id`.
    """
    wanted = np.sort(edge_keys(request, split.n_items))
    for rid in request_ids(cfg["requests"]):
        path = Path(layout.request_file(cfg, dataset, rid))
        if not path.is_file():
            continue
        theirs = read_edges(path)
        if len(theirs) == len(request) and np.array_equal(np.sort(edge_keys(theirs, split.n_items)), wanted):
            return rid, theirs
    return user_request_id(request), request


def forget(
    cfg: dict,
    dataset: str,
    backbone: str,
    seed: int,
    request_file: str,
    out_dir: str,
    method: str = "unlearnrec",
    variant: str | None = None,
) -> dict:
    """Unlearn a user-supplied request (raw or internal ids) from the pipeline's original model.

    Writes `out_dir/` atomically: `model.pt` (a backbone checkpoint whose initial table is the unlearned one;
    run it on `remaining_train.tsv`), `remaining_train.tsv`, `request.tsv` (internal ids) and `report.json`
    (request id, time, utility on the test split, forgetting of the request). A request naming unknown users or
    items, pairs that were never trained on, duplicates or nothing at all is refused before any work is done.

    Args:
        cfg: the validated configuration of the run that trained the model.
        dataset, backbone, seed: which trained original model to unlearn from.
        request_file: TSV with header `user<TAB>item` (raw ids) or `user_idx<TAB>item_idx` (internal ids).
        out_dir: the folder to write (replaced as a whole).
        method: an unlearning method; one that needs preparation must have been prepared for the original model.
        variant: which of the method's variants to keep (default: its last one).
    """
    split = load_split(layout.split_dir(cfg, dataset))
    request_id, request = identify_request(cfg, dataset, split, load_request(request_file, split))
    runner = build_method(method, method_settings(cfg, method))
    state = prepared_state(cfg, dataset, backbone, seed, "original", method) if runner.needs_preparation else None
    original, task, ref, _ = request_task(cfg, dataset, backbone, seed, request_id, split, request)
    variants = runner.unlearn(task, state)
    name = variant or list(variants)[-1]
    if name not in variants:
        raise RecUnlearnError(f"--variant: {method} has variants {', '.join(variants)}, not '{name}'")
    result = variants[name]
    metrics, _ = evaluate_unlearned(result.user_emb, result.item_emb, ref)
    report = jsonable(
        {
            "request_id": request_id,
            "method": method,
            "variant": name,
            "request_file": str(request_file),
            "request_edges": len(request),
            "seconds": result.seconds,
            "timings": result.timings,
            "utility": {k: metrics[k] for k in metrics if "@" in k},
            "forgetting": {k: metrics[k] for k in FORGETTING_KEYS},
            "deleted_score_mean": metrics["deleted_after"]["mean"],
            "non_edge_score_mean": metrics["nonedges_after"]["mean"],
            **run_conditions(cfg),
        }
    )
    with atomic_dir(out_dir) as tmp:
        if result.e0 is not None:
            model = original.backbone
            with torch.no_grad():
                saved = model.embedding.detach().clone()
                model.embedding.copy_(result.e0)
            meta = {
                "dataset": dataset,
                "kind": "unlearned",
                "method": method,
                "variant": name,
                "data_fingerprint": data_fingerprint(task.remaining),
                "report": report,
            }
            save_checkpoint(tmp / "model.pt", model, meta)
            with torch.no_grad():
                model.embedding.copy_(saved)
        write_edges(tmp / "remaining_train.tsv", task.remaining)
        write_edges(tmp / "request.tsv", request)
        write_json(tmp / "report.json", report)
    return report
