"""Train one backbone on one graph of the plan, evaluate it on the test split, and save checkpoint + metrics.

Used for the original model, the model trained on the attacked graph, and Retrain on every remaining graph:
the same code and settings, so Retrain's time and quality are a fair reference (docs/method.md, sections
"The task" and "Backbones").
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.checkpoint import data_fingerprint, save_checkpoint
from recunlearn.backbones.trainer import train_backbone
from recunlearn.evaluation.ranking import evaluate_ranking, test_mask_edges
from recunlearn.io import write_json
from recunlearn.pipeline import layout
from recunlearn.stages._graphs import load_graph
from recunlearn.stages._runtime import configure_torch, run_conditions

log = logging.getLogger(__name__)


@torch.no_grad()
def test_metrics(backbone, train_edges, split, evaluation: dict, device) -> dict:
    """Full-ranking test metrics of a backbone on the graph it was trained on, masked by the configured convention.

    Args:
        backbone: the trained model.
        train_edges: (E, 2) the graph it runs on (masked; validation too under the "known" convention).
        split: the dataset's split (its `valid` and `test` pairs).
        evaluation: the config's `evaluation` section (`ks`, `test_mask`).
        device: where the propagation and ranking run.
    """
    from recunlearn.graph.adjacency import normalized_adjacency

    adj = normalized_adjacency(train_edges, backbone.n_users, backbone.n_items, device)
    users, items = backbone.split(backbone(adj))
    mask = test_mask_edges(train_edges, split.valid, split.test, backbone.n_items, evaluation["test_mask"])
    return evaluate_ranking(users, items, mask, split.test, evaluation["ks"])


def fit(cfg: dict, backbone_name: str, split, train_edges, seed: int, device, progress: bool = True):
    """(backbone, TrainResult): a fresh backbone trained on `train_edges` with the configured recipe.

    The one place the recipe (`train` section, backbone settings) turns into a training run, so the pipeline's
    models and `benchmarks/bench_unlearning.py`'s Retrain are trained alike.

    Args:
        cfg: the validated configuration (backbone settings, `train` section).
        backbone_name: backbone registry name.
        split: the dataset's split (its `valid` pairs choose the kept epoch).
        train_edges: (E, 2) the graph to train on.
        seed: training seed (initialisation, sampling).
        device: where to train.
        progress: show a progress bar.
    """
    settings = cfg["backbone_settings"][backbone_name]
    backbone = build_backbone(backbone_name, split.n_users, split.n_items, settings, seed=seed)
    t = cfg["train"]
    result = train_backbone(
        backbone,
        train_edges,
        split.valid,
        split.n_users,
        split.n_items,
        lr=t["lr"],
        batch_size=t["batch_size"],
        epochs=t["max_epochs"],
        patience=t["patience"],
        min_delta=t["min_delta"],
        eval_every=t["eval_every"],
        ks=t["ks"],
        seed=seed,
        device=device,
        progress=progress,
    )
    return backbone, result


def train_model(cfg: dict, dataset: str, backbone_name: str, seed: int, kind: str) -> dict:
    """Train, evaluate and save the model `kind` ('original', 'attacked', 'retrain/<request>'); return metrics.

    Args:
        cfg: the validated configuration (backbone settings, `train` section, threads, device).
        dataset: dataset name.
        backbone_name: backbone registry name.
        seed: training seed (initialisation, sampling).
        kind: which graph of the plan to train on.

    Writes the checkpoint, metrics.json and the training curve of that model.
    """
    device = configure_torch(cfg)
    split, train_edges = load_graph(cfg, dataset, backbone_name, seed, kind)
    backbone, result = fit(cfg, backbone_name, split, train_edges, seed, device)
    metrics = {
        "kind": kind,
        "backbone": backbone_name,
        "readout": backbone.readout,
        "seed": seed,
        "train_edges": int(len(train_edges)),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds_to_best": result.seconds_to_best,
        "seconds_total": result.seconds_total,
        "valid": result.best_valid,
        "test": test_metrics(backbone, train_edges, split, cfg["evaluation"], device),
        **run_conditions(cfg),
    }
    meta = {
        "config": {k: v for k, v in cfg.items() if not k.startswith("_")},
        "dataset": dataset,
        "kind": kind,
        "data_fingerprint": data_fingerprint(train_edges),
        "metrics": metrics,
        "history": result.history,
    }
    save_checkpoint(layout.checkpoint(cfg, dataset, backbone_name, seed, kind), backbone, meta)
    write_json(layout.model_metrics(cfg, dataset, backbone_name, seed, kind), metrics)
    write_history(layout.training_history(cfg, dataset, backbone_name, seed, kind), result.history)
    log.info(
        "%s %s seed %d: test %s in %.1f s (best after %.1f s, %d epochs)",
        backbone_name,
        kind,
        seed,
        metrics["test"],
        result.seconds_total,
        result.seconds_to_best,
        len(result.history),
    )
    return metrics


def write_history(path: str, history: list[dict]) -> None:
    """The training curve as CSV (one row per epoch; validation columns empty between checks)."""
    import pandas as pd

    from recunlearn.io import atomic_path

    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def make_adversarial(cfg: dict, dataset: str, backbone_name: str, seed: int) -> dict:
    """Inject the noise edges chosen with the clean (original) model; write the request and the attacked set."""
    from recunlearn.backbones.checkpoint import load_checkpoint
    from recunlearn.data.adversarial import adversarial_edges, attacked_training_set
    from recunlearn.data.split import write_edges
    from recunlearn.pipeline.kinds import adversarial_id

    device = configure_torch(cfg)
    split, _ = load_graph(cfg, dataset, backbone_name, seed, "original")
    backbone, _ = load_checkpoint(layout.checkpoint(cfg, dataset, backbone_name, seed, "original"), device)
    ratio = cfg["requests"]["adversarial"]["ratio"]
    injected = adversarial_edges(
        backbone, split.train, split.valid, split.test, ratio, seed=cfg["requests"]["seed"] + seed, device=device
    )
    request_id = adversarial_id(ratio)
    write_edges(Path(layout.request_path(cfg, dataset, backbone_name, seed, request_id)), injected)
    write_edges(
        Path(layout.attacked_train(cfg, dataset, backbone_name, seed)),
        attacked_training_set(split.train, injected, split.n_items),
    )
    summary = {
        "request_id": request_id,
        "ratio": ratio,
        "injected_edges": int(len(injected)),
        "users_touched": int(len(set(injected[:, 0].tolist()))),
        "items_touched": int(len(set(injected[:, 1].tolist()))),
        **run_conditions(cfg),
    }
    write_json(layout.adversarial_summary(cfg, dataset, backbone_name, seed), summary)
    return summary
