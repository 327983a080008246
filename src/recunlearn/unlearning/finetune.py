"""Fine-tune baseline: keep training a copy of the original table on the remaining graph (method.md section 8).

Why it is a row: it is the cheapest "do what Retrain does, but start from the trained model" method. It only sees
E_r, so the deleted edges lose their positive push and drift towards what the rest of the data implies; how far
they drift within the budget is what it is judged on. The loss is the backbone's own (BPR + L2, + SSL for
SGL/SimGCL) on batches of E_r, with negatives drawn among the items a user has no *remaining* edge with (as
Retrain would draw them), and every step costs one main propagation.

The original backbone is never modified: the trainable table is a copy. The helpers `budget` and `training_context`
are shared with the reverse-BPR baseline, which trains the same way plus one extra term.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from recunlearn.errors import ConfigError
from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler
from recunlearn.backbones.trainer import deterministic
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["FineTune", "budget", "check_common", "training_context"]


def budget(name: str, settings: dict, train_settings: dict) -> tuple[float, int]:
    """(lr, batch_size): the method's own values, or the original training's when left at None."""
    lr = settings["lr"] if settings["lr"] is not None else train_settings.get("lr", 1e-3)
    batch = settings["batch_size"] if settings["batch_size"] is not None else train_settings.get("batch_size", 4096)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError(f"method_settings.{name}.lr: expected a positive number or null, got {lr!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"method_settings.{name}.batch_size: expected a positive integer or null, got {batch!r}")
    return float(lr), int(batch)


def check_common(name: str, settings: dict) -> None:
    """Validate what `resolve_settings` cannot (it accepts anything for a None default)."""
    budget(name, settings, {"lr": 1e-3, "batch_size": 1})
    if isinstance(settings["epochs"], bool) or not isinstance(settings["epochs"], int) or settings["epochs"] < 0:
        raise ConfigError(f"method_settings.{name}.epochs: expected an integer >= 0, got {settings['epochs']!r}")


def training_context(task: UnlearningTask, tag: int) -> tuple[GraphContext, BPRSampler, np.random.Generator]:
    """The remaining graph, a BPR sampler over it (negatives avoid remaining positives) and a seeded rng.

    `tag` separates the random streams of different methods that share the original seed.
    """
    o = task.original
    ctx = GraphContext.from_edges(task.remaining, o.n_users, o.n_items, o.device)
    rng = np.random.default_rng([o.seed, tag])
    sampler = BPRSampler(ctx.edges, o.n_users, o.n_items, seed=int(rng.integers(2**62)), exclude=ctx.user_items)
    return ctx, sampler, rng


class FineTune(UnlearningMethod):
    """Continue training a copy of E0 on E_r with the backbone's loss for `epochs` epochs (Adam)."""

    name = "finetune"
    defaults = {
        "epochs": 3,          # passes over E_r
        "lr": None,           # None: the original training's lr
        "batch_size": None,   # None: the original training's batch size
    }

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        check_common(self.name, self.settings)

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, backbone = task.original, task.original.backbone
        lr, batch = budget(self.name, self.settings, o.train_settings)
        start = time.perf_counter()
        with deterministic(o.seed):
            ctx, sampler, _ = training_context(task, tag=11)
            e0 = torch.nn.Parameter(backbone.embedding.detach().clone())  # a copy: the original stays as it was
            opt = torch.optim.Adam([e0], lr=lr)
            gen = torch.Generator().manual_seed(o.seed)
            t_setup = time.perf_counter()
            losses = []
            for _ in range(self.settings["epochs"]):
                backbone.start_epoch(ctx, gen)
                total, steps = 0.0, 0
                for users, pos, neg in sampler.epoch(batch):
                    loss, parts = backbone.loss(e0, ctx, users.to(o.device), pos.to(o.device), neg.to(o.device))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, steps = total + parts["loss"], steps + 1
                losses.append(total / max(steps, 1))
            with torch.no_grad():
                users, items = backbone.split(backbone.propagate(e0.detach(), ctx.adj))
        end = time.perf_counter()
        timings = {"setup_s": t_setup - start, "train_s": end - t_setup}
        info = {"epochs": self.settings["epochs"], "lr": lr, "batch_size": batch, "epoch_loss": losses}
        return {self.name: Unlearned(users.detach(), items.detach(), end - start, timings, info)}
