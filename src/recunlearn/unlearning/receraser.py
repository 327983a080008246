"""RecEraser (Chen et al., "Recommendation Unlearning", WWW 2022): SISA with collaborative shards and a learned
attention aggregation (official code: chenchongthu/Recommendation-Unlearning).

Two changes to SISA, both from the paper:
- Partition: balanced k-means (`sharding.receraser_partition`) by interaction (InBP, the official default), user
  (UBP) or item (IBP), so each shard keeps similar interactions, or whole neighbourhoods of similar users/items,
  together. Shard sizes are capped at `capacity_factor` * units / K (1.2 in the paper's code).
- Aggregation: per shard k a transfer e'_k = W_k e_k + b_k, then an attention
  alpha_k = softmax_k(h^T ReLU(W_a e'_k + b_a)), users and items with their own (W_a, b_a, h), and the aggregate
  e = sum_k alpha_k e'_k. With `agg_input: initial` (the official LightGCN variant) e is built from the shards'
  trained E0 tables and then propagated by the backbone on the current training graph; with `final` (the
  official BPR/WMF variant) from the shards' final embeddings, used as they are. Scores are inner products.
  Training as in the official code: BPR on the training edges with the shard models frozen, dropout (keep
  `agg_keep`) on the aggregated user embeddings, Adam; initialisation W_k, b_k ~ N(0, 0.01^2), W_a truncated
  normal (std sqrt(2 / (d + d/2))), b_a = 0, h = 0.01.

A request retrains the touched shards (SISA), then re-fits the aggregator; `timings["shards"]` and
`timings["aggregator"]` report the two costs apart, `info["shards_retrained"]` how many shards were retrained.

The project's adaptations (docs/method.md, section "Baselines (each a row of the comparison)"):
- Partition embeddings: the original model's final embeddings; the official code clusters on WMF-pretrained
  embeddings, a model the pipeline does not train. The centroid update is the per-dimension mean of the shard
  (the official `np.mean` without an axis collapses a centroid to a scalar; that bug is not copied). Like the
  paper, the partition is kept fixed after a request.
- Stopping: shards early-stop like Retrain (see `sisa.py`); the aggregator is checked every epoch, as in the
  official code, but on the split's validation pairs (the official code stops on the test users, a leak), and
  stops after `agg_patience` checks without gain, best epoch kept. Without validation pairs both train their
  fixed budget (`epochs`, `agg_epochs`) and the reports say so.
- The attention spreads only over the shards that saw the node (`mask_unseen`): a shard whose graph never
  contained a node has only an untrained row for it (in the official code a near-zero N(0, 0.01) row that still
  takes part). A node no shard saw gets a zero aggregate.
- Per request the aggregator is re-fitted FROM ITS INITIAL WEIGHTS on the remaining edges: it was trained on every
  edge, the deleted ones included, so reusing or fine-tuning it would leak them. The official code has no
  unlearning step to compare with; re-fitting keeps the result exact (the whole output is then a deterministic
  function of the remaining edges, the partition and the seeds), at the cost reported in `timings["aggregator"]`.

Settings: `schemas/methods/receraser.yaml`, which extends `_sharding.yaml` (shared with SISA).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recunlearn.backbones.trainer import deterministic
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler
from recunlearn.unlearning.base import OriginalModel, final_embeddings
from recunlearn.unlearning.sharding import receraser_partition
from recunlearn.unlearning.sisa import SISA, shard_seed

__all__ = ["RecEraser", "AttentionAggregator"]

# The official code's initialisation (part of the method's definition, not a tuning knob).
TRANSFER_STD = 0.01  # W_k and b_k ~ N(0, 0.01^2)
ATTENTION_H = 0.01  # h starts constant


class AttentionAggregator(nn.Module):
    """RecEraser's adaptive aggregation of K shard embeddings (n x K x d) into one (n x d), users and items apart.

    Args:
        shards: number of shards K.
        dim: embedding width d (the attention's hidden width is d / 2, as in the official code).
        seed: seed of the initialisation.
    """

    SIDES = {"user": 0, "item": 1}

    def __init__(self, shards: int, dim: int, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        att = max(dim // 2, 1)
        std = math.sqrt(2.0 / (att + dim))
        self.trans_w = nn.Parameter(torch.randn(shards, dim, dim, generator=gen) * TRANSFER_STD)
        self.trans_b = nn.Parameter(torch.randn(shards, dim, generator=gen) * TRANSFER_STD)
        self.att_w = nn.Parameter(
            torch.stack(
                [nn.init.trunc_normal_(torch.empty(dim, att), 0.0, std, -2 * std, 2 * std, gen) for _ in self.SIDES]
            )
        )
        self.att_b = nn.Parameter(torch.zeros(2, att))
        self.att_h = nn.Parameter(torch.full((2, att), ATTENTION_H))

    def transfer(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nkd,kde->nke", x, self.trans_w) + self.trans_b

    def weights(self, transferred: torch.Tensor, present: torch.Tensor, side: str) -> torch.Tensor:
        """Attention (n x K) over the shards present for each node; rows sum to 1 (0 if no shard saw it)."""
        s = self.SIDES[side]
        logits = torch.relu(transferred @ self.att_w[s] + self.att_b[s]) @ self.att_h[s]
        seen = present.any(dim=1, keepdim=True)
        logits = logits.masked_fill(~present & seen, float("-inf"))
        return torch.softmax(logits, dim=1) * seen

    def forward(self, x: torch.Tensor, present: torch.Tensor, side: str) -> torch.Tensor:
        t = self.transfer(x)
        return (self.weights(t, present, side).unsqueeze(-1) * t).sum(1)

    def aggregate(self, x: torch.Tensor, present: torch.Tensor, n_users: int) -> torch.Tensor:
        """(N x d) aggregate of all nodes: the user rows with the user attention, the item rows with the item one."""
        users = self(x[:n_users], present[:n_users], "user")
        items = self(x[n_users:], present[n_users:], "item")
        return torch.cat([users, items])


def _target(ks) -> str:
    """The validation metric, as the backbone trainer picks it: Recall@20, or Recall@k for the first k."""
    return "recall@20" if 20 in ks else f"recall@{ks[0]}"


class RecEraser(SISA):
    name = "receraser"
    learns_aggregator = True

    def partition(self, original: OriginalModel, edges: np.ndarray) -> tuple[np.ndarray, dict]:
        bb = original.backbone
        users, items = final_embeddings(bb, bb.embedding.detach(), original.trained_on)
        s = self.settings
        return receraser_partition(
            edges,
            users.cpu().numpy(),
            items.cpu().numpy(),
            s["shards"],
            s["partition"],
            seed=original.seed,
            iters=s["partition_iters"],
            capacity_factor=s["capacity_factor"],
        )

    # ---- the aggregator's pieces --------------------------------------------------------------------------
    def _tables(self, state: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The aggregated shard tables as (N x K x d) and presence as (N x K), node-major."""
        key = "shard_initial" if self.settings["agg_input"] == "initial" else "shard_final"
        return state[key].to(device).permute(1, 0, 2), state["present"].to(device).T

    def _output(self, original: OriginalModel, agg, x, present, adj) -> torch.Tensor:
        """Final (N x d) embeddings: the aggregate, propagated on `adj` when it aggregates initial tables.

        Args:
            original: the trained model (its backbone's propagation is reused, weights-free).
            agg: the aggregator.
            x: (N, K, d) shard tables (`_tables`).
            present: (N, K) which shards saw each node.
            adj: normalised adjacency of the current training graph.
        """
        e = agg.aggregate(x, present, original.n_users)
        return original.backbone.propagate(e, adj) if self.settings["agg_input"] == "initial" else e

    def aggregator(self, state: dict, device) -> AttentionAggregator:
        """The trained aggregator stored in `state["aggregator"]`."""
        k, _, d = state["shard_final"].shape
        agg = AttentionAggregator(k, d, seed=0)
        agg.load_state_dict(state["aggregator"]["weights"])
        return agg.to(device)

    def _validate(self, original: OriginalModel, agg, x, present, ctx: GraphContext) -> float:
        ks = tuple(original.train_settings["ks"])
        with torch.no_grad():
            users, items = original.backbone.split(self._output(original, agg, x, present, ctx.adj))
            return evaluate_ranking(users, items, ctx.edges, original.valid, ks=ks)[_target(ks)]

    def _epoch(self, original: OriginalModel, agg, x, present, ctx, sampler, opt) -> float:
        """One BPR pass over the edges (users dropped out, shards frozen); the mean batch loss.

        Args:
            original: the trained model (its backbone propagates; `train.batch_size` sets the batches).
            agg: the aggregator being trained.
            x: (N, K, d) frozen shard tables.
            present: (N, K) which shards saw each node.
            ctx: the current training graph.
            sampler: BPR batches over `ctx.edges`.
            opt: the aggregator's optimiser.
        """
        keep, n_users, device = self.settings["agg_keep"], original.n_users, original.device
        total, steps = 0.0, 0
        for users, pos, neg in sampler.epoch(original.train_settings["batch_size"]):
            users, pos, neg = users.to(device), pos.to(device), neg.to(device)
            final = self._output(original, agg, x, present, ctx.adj)
            u = F.dropout(final[users], p=1.0 - keep, training=keep < 1.0)
            margin = (u * (final[n_users + pos] - final[n_users + neg])).sum(-1)
            loss = F.softplus(-margin).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        return total / max(steps, 1)

    def _train(self, original: OriginalModel, agg, x, present, ctx: GraphContext, seed: int) -> dict:
        """Train `agg` in place, checked every epoch (best validation epoch restored); return its report.

        Args:
            original: the trained model (`train` section, validation pairs, backbone).
            agg: the aggregator at its initial weights.
            x: (N, K, d) frozen shard tables.
            present: (N, K) which shards saw each node.
            ctx: the current training graph.
            seed: seed of the BPR sampler.
        """
        s, ts = self.settings, original.train_settings
        has_valid = original.valid is not None and len(original.valid) > 0
        sampler = BPRSampler(ctx.edges, original.n_users, original.n_items, seed=seed, exclude=ctx.user_items)
        opt = torch.optim.Adam(agg.parameters(), lr=s["agg_lr"] if s["agg_lr"] is not None else ts["lr"])
        best = {"epoch": 0, "metric": -np.inf, "weights": None}
        losses, checks, stale = [], [], 0
        for epoch in range(1, s["agg_epochs"] + 1):
            losses.append(self._epoch(original, agg, x, present, ctx, sampler, opt))
            if not has_valid:
                continue
            checks.append(self._validate(original, agg, x, present, ctx))
            if checks[-1] > best["metric"]:
                best.update(epoch=epoch, metric=checks[-1], weights={k: v.clone() for k, v in agg.state_dict().items()})
                stale = 0
            else:
                stale += 1
            if stale >= s["agg_patience"]:
                break
        if best["weights"] is not None:
            agg.load_state_dict(best["weights"])
        return self._report(losses, checks, best["epoch"], has_valid)

    def _report(self, losses: list, checks: list, best_epoch: int, has_valid: bool) -> dict:
        """The aggregator's training report: epochs run, the kept epoch, why it stopped, its curves."""
        if not has_valid:
            stop = "fixed budget (no validation pairs)"
        else:
            stop = "early stop on validation" if len(losses) < self.settings["agg_epochs"] else "epoch cap reached"
        return {
            "epochs": len(losses),
            "best_epoch": best_epoch if has_valid else len(losses),
            "stop": stop,
            "best_valid": max(checks) if checks else None,
            "valid": checks,
            "loss": losses,
        }

    def fit_aggregator(self, original: OriginalModel, state: dict) -> tuple[dict, dict]:
        """Train the aggregator from its initial weights on the state's edges, shard models frozen.

        Deterministic in (the state's edges and shard tables, the validation pairs, the run seed): re-fitting
        after a request gives exactly the aggregator a preparation on the remaining edges would have.
        """
        start = time.perf_counter()
        k, _, d = state["shard_final"].shape
        seed = shard_seed(original.seed, k)  # the stream after the K shards'
        agg = AttentionAggregator(k, d, seed).to(original.device)
        edges = state["edges"].numpy()
        if len(edges):
            ctx = GraphContext.from_edges(edges, original.n_users, original.n_items, original.device)
            x, present = self._tables(state, original.device)
            with deterministic(seed):
                report = self._train(original, agg, x, present, ctx, seed)
        else:  # every edge deleted: nothing to train on
            report = self._report([], [], 0, has_valid=False)
        report["seconds"] = time.perf_counter() - start
        return {"weights": {key: v.detach().cpu() for key, v in agg.state_dict().items()}}, report

    # ---- output -------------------------------------------------------------------------------------------
    def attention(self, state: dict, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Attention weights (users x K, items x K) of the trained aggregator in `state`."""
        agg = self.aggregator(state, device)
        x, present = self._tables(state, device)
        n_users = state["n_users"]
        with torch.no_grad():
            return (
                agg.weights(agg.transfer(x[:n_users]), present[:n_users], "user"),
                agg.weights(agg.transfer(x[n_users:]), present[n_users:], "item"),
            )

    def combine(self, original: OriginalModel, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The aggregate's final user and item embeddings on the state's (current) training graph."""
        device = original.device
        agg = self.aggregator(state, device)
        x, present = self._tables(state, device)
        ctx = GraphContext.from_edges(state["edges"].numpy(), original.n_users, original.n_items, device)
        with torch.no_grad():
            final = self._output(original, agg, x, present, ctx.adj)
        return final[: original.n_users].detach(), final[original.n_users :].detach()
