"""Run unlearning methods on the plan's requests and evaluate them (the glue behind the CLI's stages).

- `prepare`: a method's one-off preparation for a trained model kind (saved as state.pt + report.json);
- `unlearn`: one method on one request: every variant it returns is evaluated against the same
  `ForgettingReference` and written as metrics.json (+ the score arrays as scores.npz for the notebooks);
- `references`: the Original model (trained on the full graph) and Retrain (trained on the remaining graph),
  evaluated in exactly the same way, so every table row is comparable.
"""
from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import torch

from recunlearn.pipeline import layout
from recunlearn.evaluation.protocol import build_reference, evaluate_unlearned
from recunlearn.pipeline.kinds import original_kind, retrain_kind
from recunlearn.stages._graphs import load_graph, request_graphs
from recunlearn.io import atomic_path, read_json, write_json
from recunlearn.backbones.checkpoint import load_checkpoint
from recunlearn.stages._runtime import configure_torch
from recunlearn.unlearning import build_method
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings

log = logging.getLogger(__name__)


def load_original(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> OriginalModel:
    device = configure_torch(cfg)
    split, trained_on = load_graph(cfg, dataset, backbone, seed, kind)
    model, _ = load_checkpoint(layout.checkpoint(cfg, dataset, backbone, seed, kind), device)
    model.requires_grad_(False)
    return OriginalModel(model, trained_on, split.n_users, split.n_items, cfg["train"],
                         cfg["backbone_settings"][backbone], seed, device)


def _settings(cfg: dict, method: str) -> dict:
    return cfg["method_settings"].get(method, {})


def prepare(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> dict:
    """One-off preparation; the report's 'seconds' is the cost shown apart from per-request costs."""
    original = load_original(cfg, dataset, backbone, seed, kind)
    runner = build_method(method, _settings(cfg, method))
    state, report = runner.prepare(original)
    with atomic_path(layout.prepared_state(cfg, dataset, backbone, seed, kind, method)) as tmp:
        torch.save(state, tmp)
    write_json(layout.prepared_report(cfg, dataset, backbone, seed, kind, method), _jsonable(report))
    return report


def _reference(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str):
    """(original model, task, forgetting reference, split) of one request."""
    split, trained_on, request, remaining = request_graphs(cfg, dataset, backbone, seed, request_id)
    original = load_original(cfg, dataset, backbone, seed, original_kind(request_id))
    users, items = final_embeddings(original.backbone, original.backbone.embedding.detach(), trained_on)
    ref_seed = cfg["requests"]["seed"] + 1000 * seed + zlib.crc32(request_id.encode()) % 1000
    ref = build_reference(users, items, trained_on, request, remaining, [split.train, split.valid, split.test],
                          split.test, cfg["train"]["ks"], ref_seed)
    return original, UnlearningTask(original, request, remaining), ref, (users, items)


def _write(cfg, dataset, backbone, seed, request_id, method, rows: dict, scores: dict) -> None:
    write_json(layout.unlearn_metrics(cfg, dataset, backbone, seed, request_id, method),
               {"request_id": request_id, "method": method, "seed": seed, "backbone": backbone,
                "request_edges": None if not rows else next(iter(rows.values())).get("request_edges"),
                "variants": rows})
    with atomic_path(layout.unlearn_scores(cfg, dataset, backbone, seed, request_id, method)) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{f"{v}__{k}": a for v, group in scores.items() for k, a in group.items()})


def unlearn(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> dict:
    """Run one method on one request; evaluate and write each variant it returns."""
    original, task, ref, _ = _reference(cfg, dataset, backbone, seed, request_id)
    runner = build_method(method, _settings(cfg, method))
    state = None
    if runner.needs_preparation:
        state_path = layout.prepared_state(cfg, dataset, backbone, seed, original_kind(request_id), method)
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    variants = runner.unlearn(task, state)
    rows, scores = {}, {}
    for name, result in variants.items():
        metrics, scores[name] = evaluate_unlearned(result.user_emb, result.item_emb, ref)
        rows[name] = {**metrics, "seconds": result.seconds, "timings": result.timings, "info": result.info,
                      "request_edges": int(len(task.request))}
        log.info("%s %s/%s: recall@20 %.4f, MI-NG %.3f, %.2f s", request_id, method, name,
                 metrics.get("recall@20", float("nan")), metrics["mi_ng"], result.seconds)
    _write(cfg, dataset, backbone, seed, request_id, method, _jsonable(rows), scores)
    return rows


def references(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str) -> dict:
    """Evaluate the Original model and Retrain on one request, with their training times."""
    original, task, ref, (users, items) = _reference(cfg, dataset, backbone, seed, request_id)
    kind = original_kind(request_id)
    retrained = retrain_kind(request_id)
    retrain = load_original(cfg, dataset, backbone, seed, retrained)
    r_users, r_items = final_embeddings(retrain.backbone, retrain.backbone.embedding.detach(), retrain.trained_on)
    rows, scores = {}, {}
    for name, (u, i), model_kind in (("original", (users, items), kind), ("retrain", (r_users, r_items), retrained)):
        metrics, scores[name] = evaluate_unlearned(u, i, ref)
        trained = read_json(layout.model_metrics(cfg, dataset, backbone, seed, model_kind))
        rows[name] = {**metrics, "seconds": trained["train_seconds"], "timings": {}, "info": {"kind": model_kind},
                      "request_edges": int(len(task.request))}
    _write(cfg, dataset, backbone, seed, request_id, "reference", _jsonable(rows), scores)
    return rows


def _jsonable(obj):
    """Plain JSON values (numpy scalars and tensors turned into numbers or lists)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def forget(cfg: dict, dataset: str, backbone: str, seed: int, request_file: str, out_dir: str,
           method: str = "unlearnrec", variant: str | None = None) -> dict:
    """Unlearn a user-supplied request (raw or internal ids) from the pipeline's original model.

    Writes `out_dir/` atomically: `model.pt` (a backbone checkpoint whose initial table is the unlearned one;
    run it on `remaining_train.tsv`), `remaining_train.tsv`, `request.tsv` (internal ids) and `report.json`
    (time, utility on the test split, forgetting of the request). A request naming unknown users or items, pairs
    that were never trained on, duplicates or nothing at all is refused before any work is done.
    """
    from recunlearn.data.requests import load_request
    from recunlearn.data.split import write_edges
    from recunlearn.errors import RecUnlearnError
    from recunlearn.evaluation.protocol import build_reference
    from recunlearn.graph.edges import remove_request
    from recunlearn.io import atomic_dir
    from recunlearn.backbones.checkpoint import data_fingerprint, save_checkpoint

    original = load_original(cfg, dataset, backbone, seed, "original")
    split, _ = load_graph(cfg, dataset, backbone, seed, "original")
    request = load_request(request_file, split)
    runner = build_method(method, _settings(cfg, method))
    state = None
    if runner.needs_preparation:
        state_path = Path(layout.prepared_state(cfg, dataset, backbone, seed, "original", method))
        if not state_path.is_file():
            raise RecUnlearnError(f"{state_path}: {method} has not been prepared for this model; run the pipeline "
                                  f"(or `recunlearn prepare --kind original --method {method} ...`) first")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    remaining = remove_request(original.trained_on, request, split.n_items)
    variants = runner.unlearn(UnlearningTask(original, request, remaining), state)
    name = variant or list(variants)[-1]
    if name not in variants:
        raise RecUnlearnError(f"--variant: {method} has variants {', '.join(variants)}, not '{name}'")
    result = variants[name]
    users, items = final_embeddings(original.backbone, original.backbone.embedding.detach(), original.trained_on)
    ref = build_reference(users, items, original.trained_on, request, remaining,
                          [split.train, split.valid, split.test], split.test, cfg["train"]["ks"], cfg["requests"]["seed"])
    metrics, _ = evaluate_unlearned(result.user_emb, result.item_emb, ref)
    report = _jsonable({"method": method, "variant": name, "request_file": str(request_file),
                        "request_edges": len(request), "seconds": result.seconds, "timings": result.timings,
                        "utility": {k: metrics[k] for k in metrics if "@" in k},
                        "forgetting": {k: metrics[k] for k in ("mi_bf", "mi_ng", "df_auc", "mia_member_rate")},
                        "deleted_score_mean": metrics["deleted_after"]["mean"],
                        "non_edge_score_mean": metrics["nonedges_after"]["mean"]})
    with atomic_dir(out_dir) as tmp:
        if result.e0 is not None:
            model = original.backbone
            with torch.no_grad():
                saved = model.embedding.detach().clone()
                model.embedding.copy_(result.e0)
            save_checkpoint(tmp / "model.pt", model, {"dataset": dataset, "kind": "unlearned", "method": method,
                                                      "variant": name, "data_fingerprint": data_fingerprint(remaining),
                                                      "report": report})
            with torch.no_grad():
                model.embedding.copy_(saved)
        write_edges(tmp / "remaining_train.tsv", remaining)
        write_edges(tmp / "request.tsv", request)
        write_json(tmp / "report.json", report)
    return report
