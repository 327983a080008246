"""RecEraser (Chen et al., "Recommendation Unlearning", WWW 2022): SISA with collaborative shards and a learned
aggregation.

Two changes to SISA, both from the paper:
- Partition: balanced k-means on the original model's final embeddings (`sharding.receraser_partition`), by
  user (default), item or interaction, so each shard keeps whole neighbourhoods of similar users or items. With
  the user partition every user lives in exactly one shard, so a user-wise request retrains one shard.
- Aggregation: per shard k a transfer e'_k = W_k e_k + b_k (W_k starts at the identity), then an attention
  alpha_k = softmax_k(h^T ReLU(W_a e'_k + b_a)) separately for users and items, and the aggregate
  e = sum_k alpha_k e'_k; scores are <e_u, e_i>. It is trained with BPR on the training edges, shard models
  frozen, for `agg_epochs`.

Decisions:
- Shard embeddings are the sub-models' FINAL embeddings, so the aggregation is backbone-agnostic (the authors'
  LightGCN variant aggregates initial tables and propagates them again on the full graph).
- The attention only spreads over the shards that saw the node (`mask_unseen`): a shard whose graph never
  contained a user has only an untrained random row for it. A node no shard saw gets a zero embedding.
- The aggregator saw every training edge in `prepare`, so after a request it is retrained FROM ITS INITIAL
  WEIGHTS on the remaining edges (a few cheap epochs with no propagation): unlearning stays exact.
- The partition depends on the original model, which saw the deleted edges; like the paper, it is kept fixed.

Settings: `schemas/methods/receraser.yaml`, which extends SISA's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recunlearn.graph.sampling import BPRSampler
from recunlearn.unlearning.base import OriginalModel, final_embeddings
from recunlearn.unlearning.sharding import receraser_partition
from recunlearn.unlearning.sisa import SISA

__all__ = ["RecEraser", "AttentionAggregator"]


class AttentionAggregator(nn.Module):
    """RecEraser's adaptive aggregation of K shard embeddings (n x K x d) into one (n x d), users and items apart."""

    SIDES = {"user": 0, "item": 1}

    def __init__(self, shards: int, dim: int, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        att = max(dim // 2, 1)
        self.trans_w = nn.Parameter(torch.eye(dim).repeat(shards, 1, 1))
        self.trans_b = nn.Parameter(torch.zeros(shards, dim))
        self.att_w = nn.Parameter(
            torch.stack([nn.init.xavier_uniform_(torch.empty(dim, att), generator=gen) for _ in range(2)])
        )
        self.att_b = nn.Parameter(torch.zeros(2, att))
        self.att_h = nn.Parameter(torch.empty(2, att).uniform_(-0.1, 0.1, generator=gen))

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


def _node_view(state: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Shard embeddings as (N x K x d) and presence as (N x K), node-major for row gathers."""
    return state["shard_final"].to(device).permute(1, 0, 2), state["present"].to(device).T


class RecEraser(SISA):
    name = "receraser"

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

    def aggregator(self, state: dict, device) -> AttentionAggregator:
        """The aggregator at its initial weights, or loaded from `state["aggregator"]` if present."""
        k, _, d = state["shard_final"].shape
        agg = AttentionAggregator(k, d, seed=state["seeds"][0])
        if state.get("aggregator"):
            agg.load_state_dict(state["aggregator"]["weights"])
        return agg.to(device)

    def fit_aggregator(self, original: OriginalModel, state: dict) -> dict:
        """Train the aggregator from its initial weights with BPR on the state's edges, shard models frozen."""
        s, device, n_users = self.settings, original.device, original.n_users
        agg = self.aggregator({**state, "aggregator": None}, device)
        x, present = _node_view(state, device)
        edges = state["edges"].numpy()
        losses = []
        if s["agg_epochs"] and len(edges):
            sampler = BPRSampler(edges, n_users, original.n_items, seed=state["seeds"][0])
            opt = torch.optim.Adam(agg.parameters(), lr=s["agg_lr"])
            batch = original.train_settings["batch_size"]
            for _ in range(s["agg_epochs"]):
                total, steps = 0.0, 0
                for users, pos, neg in sampler.epoch(batch):
                    # aggregate each distinct node of the batch once (a batch repeats users and items a lot)
                    u_ids, u_inv = torch.unique(users.to(device), return_inverse=True)
                    i_ids, i_inv = torch.unique(torch.cat([pos, neg]).to(device) + n_users, return_inverse=True)
                    u = agg(x[u_ids], present[u_ids], "user")[u_inv]
                    p, n = agg(x[i_ids], present[i_ids], "item")[i_inv].split(len(users))
                    loss = F.softplus(-(u * (p - n)).sum(-1)).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, steps = total + float(loss.detach()), steps + 1
                losses.append(total / max(steps, 1))
        return {"weights": {k: v.detach().cpu() for k, v in agg.state_dict().items()}, "epoch_loss": losses}

    def attention(self, state: dict, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Attention weights (users x K, items x K) of the trained aggregator in `state`."""
        agg = self.aggregator(state, device)
        x, present = _node_view(state, device)
        n_users = state["n_users"]
        with torch.no_grad():
            return (
                agg.weights(agg.transfer(x[:n_users]), present[:n_users], "user"),
                agg.weights(agg.transfer(x[n_users:]), present[n_users:], "item"),
            )

    def combine(self, state: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
        agg = self.aggregator(state, device)
        x, present = _node_view(state, device)
        n_users = state["n_users"]
        with torch.no_grad():
            return (agg(x[:n_users], present[:n_users], "user"), agg(x[n_users:], present[n_users:], "item"))
