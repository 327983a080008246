"""Gradient-ascent baseline with MMRecUn's reverse BPR (docs/method.md, "Baselines (each a row of the comparison)").

Why: fine-tuning on E_r alone forgets only as fast as the remaining data happens to pull the deleted pairs down.
MMRecUn adds an explicit push: the forward BPR (the backbone's own loss) on batches of E_r keeps utility, and a
*reverse* BPR on sampled deleted edges ranks each deleted item below a random non-item of the same user:

    L = L_backbone(E_r batch) + lambda_reverse * mean_{(u,i) in E_del sample, j random} softplus(s_ui - s_uj)

softplus(s_ui - s_uj) = -log σ(s_uj - s_ui) is BPR with the roles of i and j swapped ("swapped", the default): it
saturates once i is below j, so it cannot run away. `reverse_form: ascent` instead minimises log σ(s_ui - s_uj),
plain gradient ascent on the deleted edges' BPR loss, which is unbounded below and keeps pushing forever.

Everything runs on the remaining graph with a copy of E0, one propagation per step. With `stop_when_forgotten`
training stops (before the step's update, so the returned model is the one that met it) as soon as the mean score
of ALL deleted edges is at or below the mean over a fixed sample of random non-edges: scoring deleted pairs below
non-edges is no extra credit (docs/method.md, "Pitfalls seen when the authors' code was run here") and costs
utility. Settings: `schemas/methods/reverse_bpr.yaml` (the training budget shared with fine-tune included).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn import components
from recunlearn.backbones.trainer import deterministic
from recunlearn.graph.adjacency import user_item_csr
from recunlearn.graph.sampling import BPRSampler, sample_non_edges
from recunlearn.unlearning._training import budget, training_context
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["ReverseBPR", "reverse_bpr_loss"]

FORMS = tuple(components.fragment("methods", "reverse_bpr")["properties"]["reverse_form"]["enum"])


def reverse_bpr_loss(s_deleted: torch.Tensor, s_negative: torch.Tensor, form: str) -> torch.Tensor:
    """Mean reverse-BPR term for paired scores s_ui (deleted) and s_uj (random non-item); see the module docstring."""
    if form == "swapped":
        return F.softplus(s_deleted - s_negative).mean()
    if form == "ascent":
        return -F.softplus(s_negative - s_deleted).mean()
    raise ValueError(f"reverse_form must be one of {FORMS}, got {form!r}")


class ReverseBPR(UnlearningMethod):
    """Forward BPR on E_r + lambda_reverse * reverse BPR on E_del, with an early stop once forgotten."""

    name = "reverse_bpr"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, backbone, s = task.original, task.original.backbone, self.settings
        lr, batch = budget(s, o.train_settings)
        dev = o.device
        start = time.perf_counter()
        with deterministic(o.seed):
            ctx, sampler, rng = training_context(task, tag=12)
            request = np.asarray(task.request, dtype=np.int64).reshape(-1, 2)
            # negatives of deleted pairs: items the user never had in the ORIGINAL data (true non-edges)
            rev = BPRSampler(
                request,
                o.n_users,
                o.n_items,
                seed=int(rng.integers(2**62)),
                exclude=user_item_csr(o.trained_on, o.n_users, o.n_items),
            )
            non = torch.as_tensor(
                sample_non_edges(o.n_users, o.n_items, [o.trained_on], s["nonedge_pairs"], int(rng.integers(2**62))),
                device=dev,
            )
            deleted = torch.as_tensor(request, device=dev)
            e0 = torch.nn.Parameter(backbone.embedding.detach().clone())  # a copy: the original stays as it was
            opt = torch.optim.Adam([e0], lr=lr)
            gen = torch.Generator().manual_seed(o.seed)
            t_setup = time.perf_counter()
            history, step, reason, final = [], 0, "max_epochs", None
            for epoch in range(1, s["epochs"] + 1):
                backbone.start_epoch(ctx, gen)
                for users, pos, neg in sampler.epoch(batch):
                    final = backbone.propagate(e0, ctx.adj)
                    if s["stop_when_forgotten"] and step % s["check_every"] == 0:
                        with torch.no_grad():
                            f = final.detach()
                            d_mean = float(backbone.score(f, deleted[:, 0], deleted[:, 1]).mean())
                            n_mean = float(backbone.score(f, non[:, 0], non[:, 1]).mean())
                        history.append({"step": step, "epoch": epoch, "deleted_mean": d_mean, "nonedge_mean": n_mean})
                        if d_mean <= n_mean:
                            reason = "forgotten"
                            break
                    l_fwd, parts = backbone.loss(e0, ctx, users.to(dev), pos.to(dev), neg.to(dev), final=final)
                    k = len(request) if s["reverse_batch_size"] == 0 else min(s["reverse_batch_size"], len(request))
                    rows = rng.choice(len(request), size=k, replace=False)
                    u, i = request[rows, 0], request[rows, 1]
                    j = torch.as_tensor(rev.negatives(u), device=dev)
                    u, i = torch.as_tensor(u, device=dev), torch.as_tensor(i, device=dev)
                    l_rev = reverse_bpr_loss(
                        backbone.score(final, u, i), backbone.score(final, u, j), s["reverse_form"]
                    )
                    loss = l_fwd + s["lambda_reverse"] * l_rev
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                if reason == "forgotten":
                    break
            with torch.no_grad():
                if reason != "forgotten":  # the last update has not been propagated yet
                    final = backbone.propagate(e0.detach(), ctx.adj)
                users_emb, items_emb = backbone.split(final.detach())
        end = time.perf_counter()
        timings = {"setup_s": t_setup - start, "train_s": end - t_setup}
        info = {"steps": step, "stop_reason": reason, "lr": lr, "batch_size": batch, "checks": history[-20:]}
        return {self.name: Unlearned(users_emb, items_emb, end - start, timings, info)}
