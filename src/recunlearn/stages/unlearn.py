"""Run unlearning methods on the plan's requests and evaluate them (the glue behind the CLI's stages).

- `prepare`: a method's one-off preparation for a trained model kind (saved as state.pt + report.json);
- `unlearn`: one method on one request: every variant it returns is evaluated against the same
  `ForgettingReference` and written as metrics.json (+ the score arrays as scores.npz for the notebooks);
- `references`: the Original model (trained on the full graph) and Retrain (trained on the remaining graph),
  evaluated in exactly the same way, so every table row is comparable.

`request_task` turns a request into its task and forgetting reference; `recunlearn.stages.forget` uses it too, so
a user's request is judged exactly as the pipeline judges a request.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import torch

from recunlearn.backbones.checkpoint import load_checkpoint
from recunlearn.data.split import Split, load_split, read_edges
from recunlearn.errors import RecUnlearnError
from recunlearn.evaluation.protocol import build_reference, evaluate_unlearned
from recunlearn.graph.edges import remove_request
from recunlearn.io import atomic_path, read_json, write_json
from recunlearn.pipeline import layout
from recunlearn.pipeline.kinds import original_kind, retrain_kind
from recunlearn.stages._graphs import load_graph
from recunlearn.stages._runtime import configure_torch, run_conditions
from recunlearn.unlearning import build_method
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings

log = logging.getLogger(__name__)


def load_original(cfg: dict, dataset: str, backbone: str, seed: int, kind: str) -> OriginalModel:
    """A trained model, frozen, with the graph it was trained on, on the configured device.

    Args:
        cfg: the validated configuration (paths, threads, device, `train` and backbone settings).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        kind: trained model kind, 'original', 'attacked' or 'retrain/<request id>'.
    """
    device = configure_torch(cfg)
    split, trained_on = load_graph(cfg, dataset, backbone, seed, kind)
    model, _ = load_checkpoint(layout.checkpoint(cfg, dataset, backbone, seed, kind), device)
    model.requires_grad_(False)
    settings = cfg["backbone_settings"][backbone]
    return OriginalModel(
        model, trained_on, split.n_users, split.n_items, cfg["train"], settings, seed, device, valid=split.valid
    )


def method_settings(cfg: dict, method: str) -> dict:
    return cfg["method_settings"].get(method, {})


def prepare(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str) -> dict:
    """One-off preparation; the report's 'seconds' is the cost shown apart from per-request costs.

    Args:
        cfg: the validated configuration (paths, threads, device, `train` and backbone settings).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        kind: kind of the trained model to prepare for, 'original', 'attacked' or 'retrain/<request id>'.
        method: registered unlearning method name (its settings are `method_settings.<method>`).
    """
    original = load_original(cfg, dataset, backbone, seed, kind)
    runner = build_method(method, method_settings(cfg, method))
    state, report = runner.prepare(original)
    with atomic_path(layout.prepared_state(cfg, dataset, backbone, seed, kind, method)) as tmp:
        torch.save(state, tmp)
    write_json(
        layout.prepared_report(cfg, dataset, backbone, seed, kind, method), jsonable({**report, **run_conditions(cfg)})
    )
    return report


def reference_seed(cfg: dict, seed: int, request_id: str) -> int:
    """The seed of a request's forgetting reference (non-edges, attacker), fixed by the run seed and the request id.

    Why: a request scored twice (by its unlearn and reference stages, or again by `forget`) meets the same pairs.
    """
    return cfg["requests"]["seed"] + 1000 * seed + zlib.crc32(request_id.encode()) % 1000


def request_task(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, split: Split, request: np.ndarray):
    """(original model, task, forgetting reference, original final embeddings) of one request.

    Args:
        cfg: the validated configuration.
        dataset, backbone, seed: the trained model's run.
        request_id: names the request; picks the model to unlearn from (`original_kind`) and the reference seed.
        split: the dataset's split (its valid and test pairs are never sampled as non-edges).
        request: (R, 2) training edges of that model to forget.
    """
    original = load_original(cfg, dataset, backbone, seed, original_kind(request_id))
    remaining = remove_request(original.trained_on, request, split.n_items)
    ref, embeddings = forgetting_reference(cfg, split, original, request, remaining, request_id, seed)
    return original, UnlearningTask(original, request, remaining), ref, embeddings


def forgetting_reference(
    cfg: dict, split: Split, original: OriginalModel, request, remaining, request_id: str, seed: int
):
    """(the request's ForgettingReference, the original model's final (user, item) embeddings).

    The one place a request's judge is built from the config's `evaluation` section and the request's seed
    (`request_task` and benchmarks/bench_unlearning.py use it); a request it cannot judge is one RecUnlearnError.

    Args:
        cfg: the validated configuration (`evaluation`, `requests.seed`).
        split: the dataset's split.
        original: the model unlearned from, with the graph it was trained on.
        request: (R, 2) the edges to forget.
        remaining: (E_r, 2) its training edges minus the request.
        request_id: names the request (and fixes the reference's seed).
        seed: training seed of the run.
    """
    users, items = final_embeddings(original.backbone, original.backbone.embedding.detach(), original.trained_on)
    evaluation = cfg["evaluation"]
    try:
        ref = build_reference(
            users,
            items,
            original.trained_on,
            request,
            remaining,
            split,
            ks=evaluation["ks"],
            test_mask=evaluation["test_mask"],
            active_fraction=evaluation["active_fraction"],
            seed=reference_seed(cfg, seed, request_id),
        )
    except RecUnlearnError as err:
        raise RecUnlearnError(f"request {request_id}: {err}") from None
    return ref, (users, items)


def prepared_state(cfg: dict, dataset: str, backbone: str, seed: int, kind: str, method: str):
    """The saved preparation of `method` for a model kind; a missing one is a RecUnlearnError saying what to run.

    Args:
        cfg: the validated configuration (for the paths).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        kind: trained model kind, 'original', 'attacked' or 'retrain/<request id>'.
        method: registered unlearning method name.
    """
    path = Path(layout.prepared_state(cfg, dataset, backbone, seed, kind, method))
    if not path.is_file():
        raise RecUnlearnError(
            f"{path}: {method} has not been prepared for this model; run the pipeline "
            f"(or `recunlearn prepare --kind {kind} --method {method} ...`) first"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _reference(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str):
    """`request_task` of a planned request, read from the file its requests (or adversarial) stage wrote.

    Args:
        cfg: the validated configuration (paths, threads, device, `train` and backbone settings).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        request_id: id of a planned request; its prefix picks the model unlearned from (`original_kind`).
    """
    split = load_split(layout.split_dir(cfg, dataset))
    request = read_edges(Path(layout.request_path(cfg, dataset, backbone, seed, request_id)))
    return request_task(cfg, dataset, backbone, seed, request_id, split, request)


def _write(cfg, dataset, backbone, seed, request_id, method, rows: dict, scores: dict) -> None:
    """Write one request's metrics.json (every variant's row) and scores.npz (arrays named <variant>__<set>).

    Args:
        cfg: the validated configuration (for the paths).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        request_id: id of the request evaluated.
        method: registered unlearning method name, or 'reference' for the Original and Retrain rows.
        rows: variant name -> JSON-ready row (metrics, seconds, timings, info, request_edges).
        scores: variant name -> {'deleted', 'non_edges', 'remaining'} -> score array of those pairs.
    """
    write_json(
        layout.unlearn_metrics(cfg, dataset, backbone, seed, request_id, method),
        {
            "request_id": request_id,
            "method": method,
            "seed": seed,
            "backbone": backbone,
            "request_edges": None if not rows else next(iter(rows.values())).get("request_edges"),
            **run_conditions(cfg),
            "variants": rows,
        },
    )
    with atomic_path(layout.unlearn_scores(cfg, dataset, backbone, seed, request_id, method)) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{f"{v}__{k}": a for v, group in scores.items() for k, a in group.items()})


def unlearn(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str, method: str) -> dict:
    """Run one method on one request; evaluate and write each variant it returns.

    Args:
        cfg: the validated configuration (paths, threads, device, `train` and backbone settings).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        request_id: id of a planned request; its prefix picks the model unlearned from (`original_kind`).
        method: registered unlearning method name (its settings are `method_settings.<method>`).
    """
    original, task, ref, _ = _reference(cfg, dataset, backbone, seed, request_id)
    runner = build_method(method, method_settings(cfg, method))
    state = None
    if runner.needs_preparation:
        state = prepared_state(cfg, dataset, backbone, seed, original_kind(request_id), method)
    variants = runner.unlearn(task, state)
    rows, scores = {}, {}
    for name, result in variants.items():
        metrics, scores[name] = evaluate_unlearned(result.user_emb, result.item_emb, ref)
        rows[name] = {
            **metrics,
            "seconds": result.seconds,
            "timings": result.timings,
            "info": result.info,
            "request_edges": int(len(task.request)),
        }
        log.info(
            "%s %s/%s: recall@20 %.4f, MI-NG %.3f, %.2f s",
            request_id,
            method,
            name,
            metrics.get("recall@20", float("nan")),
            metrics["mi_ng"],
            result.seconds,
        )
    _write(cfg, dataset, backbone, seed, request_id, method, jsonable(rows), scores)
    return rows


def references(cfg: dict, dataset: str, backbone: str, seed: int, request_id: str) -> dict:
    """Evaluate the Original model and Retrain on one request, with their training times.

    A reference row's `seconds` is its training time to the kept epoch (`seconds_to_best`), `seconds_total`
    adds the patience epochs: the compare stage quotes speed-ups against the first.

    Args:
        cfg: the validated configuration (paths, threads, device, `train` and backbone settings).
        dataset: dataset name.
        backbone: backbone registry name.
        seed: training seed of the run.
        request_id: id of a planned request; picks the Original (`original_kind`) and Retrain (`retrain_kind`).
    """
    original, task, ref, (users, items) = _reference(cfg, dataset, backbone, seed, request_id)
    kind = original_kind(request_id)
    retrained = retrain_kind(request_id)
    retrain = load_original(cfg, dataset, backbone, seed, retrained)
    r_users, r_items = final_embeddings(retrain.backbone, retrain.backbone.embedding.detach(), retrain.trained_on)
    rows, scores = {}, {}
    for name, (u, i), model_kind in (("original", (users, items), kind), ("retrain", (r_users, r_items), retrained)):
        metrics, scores[name] = evaluate_unlearned(u, i, ref)
        trained = read_json(layout.model_metrics(cfg, dataset, backbone, seed, model_kind))
        rows[name] = {
            **metrics,
            "seconds": trained["seconds_to_best"],
            "seconds_total": trained["seconds_total"],
            "timings": {},
            "info": {"kind": model_kind},
            "request_edges": int(len(task.request)),
        }
    _write(cfg, dataset, backbone, seed, request_id, "reference", jsonable(rows), scores)
    return rows


def jsonable(obj):
    """Plain JSON values (numpy scalars and tensors turned into numbers or lists)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
