"""Vectorised BPR sampling: a shuffled pass over the training edges, one uniform negative per positive.

Why vectorised: the original code drew negatives in a Python loop per sample, which dominated the epoch time.
Here a whole epoch's negatives are drawn at once and the ones that hit a training item of their user are redrawn
(rejection sampling); membership is a binary search in the globally sorted keys user * n_items + item, which
the row-sorted CSR of positives gives for free. Everything runs from one seeded numpy Generator, so an epoch is
a deterministic function of the seed and the epoch order (docs/method.md, section "Backbones").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from recunlearn.errors import DataError
from recunlearn.graph.adjacency import check_edges, user_item_csr
from recunlearn.graph.edges import edge_keys, pair_keys

__all__ = ["BPRSampler", "sorted_keys", "is_member", "sample_non_edges"]

# Below this many (user, item) cells, rejection sampling of a nearly full matrix falls back to enumerating
# the free cells (exact, and cheap at that size).
_ENUMERATE_LIMIT = 5_000_000


def sorted_keys(user_items: sp.csr_matrix) -> np.ndarray:
    """user * n_items + item for every positive, ascending (CSR rows in order, columns sorted per row)."""
    rows = np.repeat(np.arange(user_items.shape[0], dtype=np.int64), np.diff(user_items.indptr))
    return pair_keys(rows, user_items.indices, user_items.shape[1])


def is_member(keys: np.ndarray, users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Boolean mask: is (users[k], items[k]) among the sorted `keys`?"""
    q = pair_keys(users, items, n_items)
    if len(keys) == 0:
        return np.zeros(len(q), dtype=bool)
    pos = np.searchsorted(keys, q)
    pos[pos == len(keys)] = 0  # past the end: cannot match, compare with any valid key
    return keys[pos] == q


class BPRSampler:
    """Epochs of (users, pos, neg) int64 torch batches over `edges`, negatives never a training item of the user.

    `exclude` (defaults to the edges themselves) is the set of (user, item) pairs a negative must avoid; the
    unlearning code may pass the full original positives while iterating over the remaining edges only.

    Args:
        edges: (E, 2) training pairs the epochs iterate over.
        n_users: number of users (ids in [0, n_users)).
        n_items: number of items (ids in [0, n_items)).
        seed: seed of the one numpy Generator behind shuffling and negatives.
        exclude: user x item CSR (sorted columns) of pairs no negative may hit; None: `edges` themselves.
        max_rounds: rejection rounds before giving up with RuntimeError.

    Raises DataError when a user of `edges` has every item excluded (no negative exists).
    """

    def __init__(
        self,
        edges: np.ndarray,
        n_users: int,
        n_items: int,
        seed: int = 0,
        exclude: sp.csr_matrix | None = None,
        max_rounds: int = 1000,
    ):
        self.edges = check_edges(edges, n_users, n_items)
        self.n_users, self.n_items = n_users, n_items
        exclude = user_item_csr(self.edges, n_users, n_items) if exclude is None else exclude
        full = np.flatnonzero(np.diff(exclude.indptr) >= n_items)
        if np.isin(self.edges[:, 0], full).any():
            raise DataError(f"users {full[:5].tolist()} interacted with every item: no negative exists")
        self.keys = sorted_keys(exclude)
        self.rng = np.random.default_rng(seed)
        self.max_rounds = max_rounds

    def negatives(self, users: np.ndarray) -> np.ndarray:
        """One uniform non-positive item per entry of `users` (vectorised rejection sampling)."""
        neg = self.rng.integers(0, self.n_items, len(users))
        bad = np.flatnonzero(is_member(self.keys, users, neg, self.n_items))
        for _ in range(self.max_rounds):
            if len(bad) == 0:
                return neg
            neg[bad] = self.rng.integers(0, self.n_items, len(bad))
            bad = bad[is_member(self.keys, users[bad], neg[bad], self.n_items)]
        raise RuntimeError(f"negative sampling did not converge in {self.max_rounds} rounds")

    def __len__(self) -> int:
        return len(self.edges)

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self.edges) // batch_size)

    def epoch(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield CPU int64 tensors (users, pos, neg) for a freshly shuffled pass over all edges."""
        order = self.rng.permutation(len(self.edges))
        users = self.edges[order, 0]
        pos = self.edges[order, 1]
        neg = self.negatives(users)
        for start in range(0, len(order), batch_size):
            sl = slice(start, start + batch_size)
            yield torch.from_numpy(users[sl]), torch.from_numpy(pos[sl]), torch.from_numpy(neg[sl])


def sample_non_edges(n_users: int, n_items: int, exclude_edges: Sequence[np.ndarray], n: int, seed: int) -> np.ndarray:
    """`n` uniformly random (user, item) pairs, none of which appears in any array of `exclude_edges`.

    Pairs are drawn with replacement (a pair may repeat), which keeps the distribution uniform over the free
    cells and works on dense tiny graphs. Rejection is vectorised: draw a block of candidate keys
    (user * n_items + item), drop the excluded ones by binary search in the sorted exclusion keys, repeat.
    Deterministic for a given seed. Raises ValueError if every pair is excluded.

    Args:
        n_users: number of users.
        n_items: number of items.
        exclude_edges: (E, 2) arrays of pairs to avoid (None or empty entries are skipped).
        n: number of pairs to return (>= 0).
        seed: seed of the draw.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    total = int(n_users) * int(n_items)
    parts = [edge_keys(e, n_items) for e in exclude_edges if e is not None and len(e)]
    excluded = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    free = total - len(excluded)
    if n == 0:
        return np.empty((0, 2), dtype=np.int64)
    if free <= 0:
        raise ValueError(f"no non-edge left to sample: all {total} (user, item) pairs are excluded")
    rng = np.random.default_rng(seed)
    if free / total < 0.05 and total <= _ENUMERATE_LIMIT:
        keys = rng.choice(np.setdiff1d(np.arange(total, dtype=np.int64), excluded, assume_unique=True), size=n)
    else:
        chunks, have = [], 0
        while have < n:
            want = int((n - have) * total / free * 1.2) + 16
            cand = rng.integers(0, total, size=want, dtype=np.int64)
            if len(excluded):
                pos = np.searchsorted(excluded, cand).clip(max=len(excluded) - 1)
                cand = cand[excluded[pos] != cand]
            chunks.append(cand)
            have += len(cand)
        keys = np.concatenate(chunks)[:n]
    return np.stack([keys // n_items, keys % n_items], axis=1).astype(np.int64)
