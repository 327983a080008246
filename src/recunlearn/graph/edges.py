"""Edge sets of the bipartite user-item graph: (E, 2) int64 arrays of (user, item) rows.

Set operations go through one integer key per pair, `user * n_items + item` (unique and order-preserving for
ids in range); this module is the only place that formula is written.
"""

from __future__ import annotations

import numpy as np

__all__ = ["edge_keys", "from_keys", "unique_edges", "remove_edges", "remove_request", "contains"]


def edge_keys(edges: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 key per row of `edges` (any (E, 2) integer array; duplicates keep their keys)."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return edges[:, 0] * np.int64(n_items) + edges[:, 1]


def pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Keys of the pairs (users[k], items[k]); the arrays may broadcast against each other."""
    return np.asarray(users, dtype=np.int64) * np.int64(n_items) + np.asarray(items, dtype=np.int64)


def from_keys(keys: np.ndarray, n_items: int) -> np.ndarray:
    """The (E, 2) int64 edges behind `keys`, in the keys' order."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([keys // n_items, keys % n_items], axis=1).astype(np.int64)


def unique_edges(edges: np.ndarray, n_items: int) -> np.ndarray:
    """Distinct (user, item) rows sorted by user then item."""
    return from_keys(np.unique(edge_keys(edges, n_items)), n_items)


def contains(edges: np.ndarray, query: np.ndarray, n_items: int) -> np.ndarray:
    """Boolean mask over the rows of `edges`: is the row one of the pairs in `query`?"""
    return np.isin(edge_keys(edges, n_items), edge_keys(query, n_items))


def remove_edges(edges: np.ndarray, request: np.ndarray, n_items: int) -> np.ndarray:
    """`edges` minus `request`, as sets of pairs: every copy of a deleted pair goes, so none survives in a
    remaining graph (a matrix subtraction would keep a duplicated pair)."""
    return edges[~contains(edges, request, n_items)]


def remove_request(edges: np.ndarray, request: np.ndarray, n_items: int) -> np.ndarray:
    """`remove_edges`, refusing a request with a pair that is not among `edges` (a plan's requests never are)."""
    remaining = remove_edges(edges, request, n_items)
    if len(edges) - len(remaining) != len(np.unique(edge_keys(request, n_items))):
        raise ValueError("some request edges are not in the training graph")
    return remaining
