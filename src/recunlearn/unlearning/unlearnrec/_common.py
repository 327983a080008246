"""What UnlearnRec's pre-training (`pretrain.py`) and per-request unlearning (`unlearn.py`) share: the original
model's final embeddings, the capped samples the losses use, and L_p on such a sample.

Why a module of its own: the two entry points stay independent of each other (neither imports the other).
"""

from __future__ import annotations

import numpy as np
import torch

from recunlearn.backbones.base import Backbone
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.unlearning.unlearnrec.losses import preservation_loss

__all__ = ["cap", "original_final", "preservation", "sample_rows"]


def sample_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Row indices: all n when k <= 0 or k >= n, else k drawn without replacement."""
    return np.arange(n) if k <= 0 or k >= n else rng.choice(n, size=k, replace=False)


def preservation(final, ebar, users, pos, n_users, k, tau, reduction, gen) -> torch.Tensor:
    """L_p on at most k of the batch's positive pairs (the in-batch softmax is O(k^2)).

    Args:
        final: (N, d) final embeddings being trained.
        ebar: (N, d) the original model's final embeddings Ē.
        users: the batch's users.
        pos: their positive items (item ids).
        n_users: number of users (item rows start there).
        k: at most this many pairs; 0 = all.
        tau: softmax temperature.
        reduction: "mean" or "sum".
        gen: generator of the subsample.
    """
    keep = cap(torch.arange(len(users), device=users.device), k, gen)
    u, i = users[keep], n_users + pos[keep]
    return preservation_loss(final[u], final[i], ebar[u], ebar[i], tau, reduction)


def cap(idx: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """At most k of `idx` (a random subset when there are more; all when k <= 0)."""
    if k <= 0 or len(idx) <= k:
        return idx
    return idx[torch.randperm(len(idx), generator=gen)[:k].to(idx.device)]


@torch.no_grad()
def original_final(backbone: Backbone, train_edges, n_users, n_items, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(E0, Ē): the frozen table and its final embeddings on the full training graph.

    Args:
        backbone: the trained original backbone (its `embedding` is E0).
        train_edges: (E, 2) the original model's training edges.
        n_users: number of users.
        n_items: number of items.
        device: where the adjacency is built and the propagation runs.
    """
    e0 = backbone.embedding.detach()
    return e0, backbone.propagate(e0, normalized_adjacency(train_edges, n_users, n_items, device))
