"""Train a backbone with Adam and BPR batches, early-stopping on validation Recall@20.

Why it is shaped this way: each step costs exactly one main propagation (the backbone's `loss` propagates once;
SGL/SimGCL add their two views), sampling is vectorised per epoch, and evaluation is one extra no-grad
propagation per check. Determinism: the backbone's init, the sampler and the per-epoch generator are all seeded
from `seed`, and deterministic algorithms are switched on for the duration of the call (warn-only, then restored),
so two CPU runs with the same seed give identical weights.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from recunlearn.backbones.base import Backbone
from recunlearn.backbones.meter import LossMeter
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler
from recunlearn.io import atomic_path

__all__ = ["TrainResult", "train_backbone", "deterministic", "set_deterministic_algorithms"]

log = logging.getLogger("recunlearn.train")


@dataclass
class TrainResult:
    """The outcome of `train_backbone`.

    `seconds_to_best` is the wall time from the start to the end of the validation check that found the kept
    epoch (training and the checks so far); `seconds_total` adds the patience epochs after it. Speed-ups are quoted
    against `seconds_to_best`, the conservative choice: a retraining that knew where to stop would cost that.
    """

    best_epoch: int
    best_valid: dict
    history: list[dict] = field(default_factory=list)
    seconds_to_best: float = 0.0
    seconds_total: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def set_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """`torch.use_deterministic_algorithms(mode, warn_only=...)` for eager code, without importing torch's compiler.

    The public call also sets the flag of torch's compiler (`torch._inductor.config.deterministic`), and importing
    that config imports the whole compiler stack: seconds per process, i.e. per pipeline job
    (docs/decisions.md, section "Stages and runtime"). The project never compiles a model, so only the eager flag
    that every operator reads is set; a backbone that adopts `torch.compile` must call the public function.
    """
    torch._C._set_deterministic_algorithms(bool(mode), warn_only=bool(warn_only))


@contextlib.contextmanager
def deterministic(seed: int):
    """Seed torch and turn on deterministic algorithms (warn-only) for the block; restore the old mode after."""
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    set_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        set_deterministic_algorithms(was_on, warn_only=was_warn)


@contextlib.contextmanager
def _log_file(log_path):
    """Attach a file handler writing to a temporary sibling of log_path, renamed into place on success."""
    if log_path is None:
        yield
        return
    with atomic_path(log_path) as tmp:
        handler = logging.FileHandler(tmp, mode="w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        old_level = log.level
        log.setLevel(logging.INFO)
        try:
            yield
        finally:
            log.removeHandler(handler)
            handler.close()
            log.setLevel(old_level)


def train_backbone(
    backbone: Backbone,
    train_edges: np.ndarray,
    valid_edges: np.ndarray | None,
    n_users: int,
    n_items: int,
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    patience: int,
    eval_every: int,
    ks,
    min_delta: float = 0.0,
    seed: int = 0,
    device="cpu",
    log_path=None,
    progress: bool = True,
) -> TrainResult:
    """Train `backbone` in place on `train_edges`; return the best epoch, its validation metrics and the history.

    Early stopping: validation Recall@20 (or the first k in `ks` if 20 is absent) is checked every `eval_every`
    epochs, training items masked; training stops after `patience` checks without improvement and the best
    embedding table is restored. Only a gain of more than `min_delta` (absolute) over the last such gain resets the
    patience, so a noisy plateau that creeps up by a few thousandths ends the training instead of stretching it;
    the kept table is still the best check seen. With no validation edges it trains all `epochs` and keeps the
    last table.
    The budget has no defaults here (but `min_delta`, whose 0 is no threshold): it is the config's `train` section
    (`schemas/config.schema.yaml`).

    Args:
        backbone: the model to train (its table E0 is updated in place).
        train_edges: (E, 2) training edges.
        valid_edges: (V, 2) validation edges for early stopping, or None to train every epoch.
        n_users: number of users.
        n_items: number of items.
        lr: Adam learning rate.
        batch_size: training edges per step.
        epochs: epochs at most.
        patience: validation checks without improvement before stopping.
        eval_every: epochs between validation checks (the last epoch is always checked).
        ks: cut-offs of the validation metrics.
        min_delta: the gain over the last reset a check needs to reset the patience (0: any gain).
        seed: seed of the sampler, the per-epoch generator and torch.
        device: torch device.
        log_path: a file for the training log (written atomically), or None.
        progress: show a progress bar.
    """
    device = torch.device(device)
    backbone.to(device)
    ctx = GraphContext.from_edges(train_edges, n_users, n_items, device)
    sampler = BPRSampler(ctx.edges, n_users, n_items, seed=seed, exclude=ctx.user_items)
    has_valid = valid_edges is not None and len(valid_edges) > 0
    ks = tuple(ks)
    target = "recall@20" if 20 in ks else f"recall@{ks[0]}"
    opt = torch.optim.Adam([backbone.embedding], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    best = {"epoch": 0, "metric": -np.inf, "valid": {}, "state": None, "seconds": 0.0}
    history: list[dict] = []
    stale, progress_ref = 0, -np.inf  # checks since the last gain of more than min_delta, and that gain's value
    t_start = time.perf_counter()
    with deterministic(seed), _log_file(log_path):
        log.info(
            "training %s on %d edges (%d users, %d items), device %s, config %s",
            backbone.name,
            len(ctx.edges),
            n_users,
            n_items,
            device,
            backbone.config(),
        )
        bar = tqdm(range(1, epochs + 1), desc=f"train {backbone.name}", disable=not progress, leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            backbone.train()
            backbone.start_epoch(ctx, gen)
            meter = LossMeter()
            for users, pos, neg in sampler.epoch(batch_size):
                users, pos, neg = users.to(device), pos.to(device), neg.to(device)
                loss, parts = backbone.loss(backbone.embedding, ctx, users, pos, neg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                meter.add(parts)
            row = {"epoch": epoch, **meter.means()}
            if has_valid and (epoch % eval_every == 0 or epoch == epochs):
                row.update(_validate(backbone, ctx, valid_edges, ks))
                if row[target] > best["metric"]:
                    best.update(
                        epoch=epoch,
                        metric=row[target],
                        valid={k: row[k] for k in row if "@" in k},
                        state=backbone.embedding.detach().clone(),
                        seconds=time.perf_counter() - t_start,
                    )
                if row[target] > progress_ref + min_delta:
                    progress_ref, stale = row[target], 0
                else:
                    stale += 1
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            log.info("epoch %s", {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
            bar.set_postfix({k: f"{row[k]:.4f}" for k in ("loss", target) if k in row})
            if has_valid and stale >= patience:
                log.info("early stop at epoch %d: no %s gain above %g in %d checks", epoch, target, min_delta, patience)
                break
        bar.close()
        if best["state"] is not None:
            with torch.no_grad():
                backbone.embedding.copy_(best["state"])
        seconds = time.perf_counter() - t_start
        if best["state"] is None:  # no validation: the last epoch is the result
            best.update(epoch=len(history), valid={}, seconds=seconds)
        log.info(
            "best epoch %d, valid %s, %.1f s to best, %.1f s in all",
            best["epoch"],
            best["valid"],
            best["seconds"],
            seconds,
        )
    return TrainResult(
        best_epoch=best["epoch"],
        best_valid=best["valid"],
        history=history,
        seconds_to_best=best["seconds"],
        seconds_total=seconds,
    )


@torch.no_grad()
def _validate(backbone: Backbone, ctx: GraphContext, valid_edges: np.ndarray, ks) -> dict:
    backbone.eval()
    user_emb, item_emb = backbone.split(backbone(ctx.adj))
    out = evaluate_ranking(user_emb, item_emb, ctx.edges, valid_edges, ks=ks)
    out.pop("n_users")
    return out
