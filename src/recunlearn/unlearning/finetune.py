"""Fine-tune baseline: keep training a copy of the original table on the remaining graph.

Settings: `schemas/methods/finetune.yaml`; the method in docs/method.md, "Baselines (each a row of the comparison)".

Why it is a row: it is the cheapest "do what Retrain does, but start from the trained model" method. It only sees
E_r, so the deleted edges lose their positive push and drift towards what the rest of the data implies; how far
they drift within the budget is what it is judged on. The loss is the backbone's own (BPR + L2, + SSL for
SGL/SimGCL) on batches of E_r, with negatives drawn among the items a user has no *remaining* edge with (as
Retrain would draw them), and every step costs one main propagation.

The original backbone is never modified: the trainable table is a copy. The loop's set-up (`budget`,
`training_context`) is shared with the reverse-BPR baseline through `unlearning/_training.py`.
"""

from __future__ import annotations

import time

import torch

from recunlearn.backbones.meter import LossMeter
from recunlearn.backbones.trainer import deterministic
from recunlearn.unlearning._training import budget, training_context
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["FineTune"]


class FineTune(UnlearningMethod):
    """Continue training a copy of E0 on E_r with the backbone's loss for `epochs` epochs (Adam)."""

    name = "finetune"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, backbone = task.original, task.original.backbone
        lr, batch = budget(self.settings, o.train_settings)
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
                meter = LossMeter()
                for users, pos, neg in sampler.epoch(batch):
                    loss, parts = backbone.loss(e0, ctx, users.to(o.device), pos.to(o.device), neg.to(o.device))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    meter.add({"loss": parts["loss"]})
                losses.append(meter.means().get("loss", 0.0))
            with torch.no_grad():
                users, items = backbone.split(backbone.propagate(e0.detach(), ctx.adj))
        end = time.perf_counter()
        timings = {"setup_s": t_setup - start, "train_s": end - t_setup}
        info = {"epochs": self.settings["epochs"], "lr": lr, "batch_size": batch, "epoch_loss": losses}
        return {self.name: Unlearned(users.detach(), items.detach(), end - start, timings, info)}
