"""Adversarial noise-edge requests, the paper's main protocol (docs/method.md, section "Requests used in
evaluation").

From a model trained on the clean graph, a seeded fraction r of users each get an edge to the item the model
scores lowest for them, and a fraction r of items each get an edge to the user that scores them lowest. Only
pairs that are in no split (train, valid or test) are eligible. The same pair can be picked from both sides:
the request is the set of UNIQUE injected edges, and the attacked training set is the clean one plus those.
"""

from __future__ import annotations

import numpy as np
import torch

from recunlearn.backbones.base import Backbone
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.graph.edges import edge_keys, from_keys, pair_keys


def _blocked_keys(splits: list[np.ndarray], n_items: int) -> np.ndarray:
    edges = np.concatenate(splits)
    return np.unique(edge_keys(edges, n_items))


@torch.no_grad()
def lowest_scored_pairs(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    rows: np.ndarray,
    blocked: np.ndarray,
    by_user: bool,
    chunk: int = 2048,
) -> np.ndarray:
    """For each chosen user (by_user) or item, the partner with the lowest score among non-blocked pairs.

    Args:
        user_emb: (n_users, d) final user embeddings of the clean model.
        item_emb: (n_items, d) final item embeddings.
        rows: the chosen user ids (by_user) or item ids.
        blocked: sorted edge keys of pairs that may not be picked (every split).
        by_user: True to pick an item per user, False a user per item.
        chunk: rows scored per dense block (bounds memory).

    Returns (k, 2) (user, item) pairs; a row whose every partner is blocked gives none.
    """
    n_items = item_emb.shape[0]
    own, other = (user_emb, item_emb) if by_user else (item_emb, user_emb)
    pairs = []
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        scores = own[torch.as_tensor(block)] @ other.T
        partners = np.arange(other.shape[0])
        users = block[:, None] if by_user else partners[None, :]
        items = partners[None, :] if by_user else block[:, None]
        keys = np.broadcast_to(pair_keys(users, items, n_items), scores.shape)
        scores[torch.from_numpy(np.isin(keys, blocked))] = float("inf")
        best = scores.argmin(dim=1).numpy()
        pair = np.stack([block, best], 1) if by_user else np.stack([best, block], 1)
        pairs.append(pair[np.isfinite(scores.min(dim=1).values.numpy())])
    return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


def adversarial_edges(
    backbone: Backbone, train: np.ndarray, valid: np.ndarray, test: np.ndarray, ratio: float, seed: int, device="cpu"
) -> np.ndarray:
    """The unique injected edges (sorted) for a fraction `ratio` of users and of items.

    Args:
        backbone: the model trained on the clean graph; its scores choose the partners.
        train: (E, 2) clean training edges (the graph the model runs on; blocked).
        valid: (E, 2) validation edges (blocked).
        test: (E, 2) test edges (blocked).
        ratio: fraction of users, and of items, that get one injected edge each (at least one of each).
        seed: seed of the choice of users and items.
        device: where the scores are computed.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    n_users, n_items = backbone.n_users, backbone.n_items
    adj = normalized_adjacency(train, n_users, n_items, device)
    user_emb, item_emb = (t.cpu() for t in backbone.split(backbone(adj)))
    blocked = _blocked_keys([train, valid, test], n_items)
    users = np.sort(rng.choice(n_users, size=max(1, int(round(ratio * n_users))), replace=False))
    items = np.sort(rng.choice(n_items, size=max(1, int(round(ratio * n_items))), replace=False))
    injected = np.concatenate(
        [
            lowest_scored_pairs(user_emb, item_emb, users, blocked, by_user=True),
            lowest_scored_pairs(user_emb, item_emb, items, blocked, by_user=False),
        ]
    )
    return from_keys(np.unique(edge_keys(injected, n_items)), n_items)


def attacked_training_set(train: np.ndarray, injected: np.ndarray, n_items: int) -> np.ndarray:
    """Clean training edges plus the injected ones, sorted; refuses an injected edge that was already trained on."""
    keys = np.concatenate([edge_keys(train, n_items), edge_keys(injected, n_items)])
    unique = np.unique(keys)
    if len(unique) != len(keys):
        raise ValueError("an injected edge is already a training edge")
    return from_keys(unique, n_items)
