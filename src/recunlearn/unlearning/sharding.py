"""Partitions of the training edges into shards, shared by SISA and RecEraser (docs/method.md, "Baselines (each a
row of the comparison)").

Why shards: a request then only retrains the shards holding a deleted edge. SISA draws a uniform random
partition of the interactions. RecEraser (Chen et al., "Recommendation Unlearning", WWW 2022) argues that a
random split scatters each user's collaborative signal over every shard, so it groups similar users (UBP),
similar items (IBP) or similar interactions (InBP) with a balanced k-means on pre-trained embeddings:

1. pick K random anchors among the units (users, items or interactions);
2. visit every (unit, anchor) pair in order of increasing distance; a unit joins the first anchor whose shard
   still has room (capacity t = capacity_factor * n / K, 1.2 in the paper's code) and is then skipped;
3. move each anchor to the mean of its shard and repeat T times.

Distances are squared Euclidean; an interaction (u, i) against an anchor (a_u, a_i) uses the product
||p_u - a_u||^2 * ||q_i - a_i||^2, as the paper's code does. Step 2 is done exactly but vectorised (see
`greedy_balanced_assignment`). Step 3 moves an anchor to the per-dimension mean of its shard (the official code's
`np.mean` without an axis collapses it to one scalar, a bug not copied). An interaction's features are its user's
and its item's rows, gathered rather than copied per interaction, so a pass costs O(K (E + N d)) with no E x d
array (about 0.07 s per iteration on ML-100K with K = 4, so the paper's T = 50 is affordable). Every function is a
deterministic function of its inputs and `seed`.
"""

from __future__ import annotations

import math

import numpy as np

from recunlearn import components

__all__ = [
    "PARTITIONS",
    "random_partition",
    "random_user_partition",
    "greedy_balanced_assignment",
    "balanced_kmeans",
    "receraser_partition",
]

PARTITIONS = tuple(components.fragment("methods", "receraser")["properties"]["partition"]["enum"])
_NEVER = np.iinfo(np.int64).max


def random_partition(n_edges: int, shards: int, seed: int) -> np.ndarray:
    """SISA: shard id per edge, a seeded shuffle dealt round-robin, so shard sizes differ by at most one."""
    if shards < 1:
        raise ValueError(f"need at least one shard, got {shards}")
    order = np.random.default_rng(seed).permutation(n_edges)
    assignment = np.empty(n_edges, dtype=np.int64)
    assignment[order] = np.arange(n_edges) % shards
    return assignment


def random_user_partition(users: np.ndarray, shards: int, seed: int) -> np.ndarray:
    """SISA by user: shard id per edge = its user's shard; the distinct users are shuffled and dealt round-robin.

    Every user's edges land in one shard, so deleting one user touches one shard. Shards hold equal numbers of
    users (within one), not of edges.
    """
    users = np.asarray(users, dtype=np.int64)
    distinct, per_edge = np.unique(users, return_inverse=True)
    return random_partition(len(distinct), shards, seed)[per_edge]


def greedy_balanced_assignment(dist: np.ndarray, capacity: int) -> np.ndarray:
    """Shard per unit: the greedy pass of step 2 over all (unit, shard) pairs by increasing `dist` (n x K).

    Computed in at most K vectorised rounds instead of a Python loop over n*K pairs: every unassigned unit
    proposes its nearest open shard; until some shard fills, every proposal is exactly what the greedy pass
    would accept. The shard that fills first (at the global rank of its `room`-th closest proposal) closes,
    every proposal ranked before that point is accepted, and the rest propose again among the open shards.
    Ties are broken by the flattened (unit, shard) index, so the result is deterministic.
    """
    n, k = dist.shape
    if capacity * k < n:
        raise ValueError(f"capacity {capacity} x {k} shards cannot hold {n} units")
    rank = np.empty(n * k, dtype=np.int64)
    rank[np.argsort(dist, axis=None, kind="stable")] = np.arange(n * k)
    rank = rank.reshape(n, k)
    assignment = np.full(n, -1, dtype=np.int64)
    room = np.full(k, capacity, dtype=np.int64)
    is_open = np.ones(k, dtype=bool)
    while True:
        todo = np.flatnonzero(assignment < 0)
        if len(todo) == 0:
            return assignment
        ranks = np.where(is_open, rank[todo], _NEVER)
        choice = ranks.argmin(axis=1)
        first = ranks[np.arange(len(todo)), choice]
        fills_at = np.full(k, _NEVER)
        for s in np.flatnonzero(is_open):
            mine = first[choice == s]
            if len(mine) >= room[s]:
                fills_at[s] = np.partition(mine, room[s] - 1)[room[s] - 1]
        closing = int(fills_at.argmin())
        take = first <= fills_at[closing]
        assignment[todo[take]] = choice[take]
        room -= np.bincount(choice[take], minlength=k)
        if fills_at[closing] == _NEVER:
            return assignment
        is_open[closing] = False


def _sq_dist(x: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2.0 * x @ anchors.T + (anchors * anchors).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _block_means(table: np.ndarray, index: np.ndarray, assignment: np.ndarray, shards: int) -> np.ndarray:
    """(K, d) mean over each shard's units of `table[index]`; NaN rows for an empty shard.

    Computed as (K x rows count matrix) @ table, so an interaction partition never builds an E x d array.
    """
    rows = len(table)
    counts = np.bincount(assignment * rows + index, minlength=shards * rows).reshape(shards, rows)
    sizes = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ table) / sizes


def balanced_kmeans(
    blocks: list[tuple[np.ndarray, np.ndarray]], shards: int, capacity: int, iters: int, seed: int
) -> tuple[np.ndarray, dict]:
    """Balanced k-means of n units; unit j's features in block b are `table_b[index_b[j]]`; distance = product.

    Returns the shard per unit and a small report (iterations run, whether the assignment converged). Features
    are given as (table, index) pairs so that an interaction (u, i) is described by its user's and its item's
    rows without copying them per interaction: distances are computed per table row and gathered.

    Args:
        blocks: (table (rows_b, d_b), index (n,) into it) per block, e.g. the user table and each edge's user.
        shards: number of shards K (at most n).
        capacity: maximum number of units per shard (capacity * K >= n).
        iters: maximum number of assignment/update rounds (at least one runs).
        seed: seed of the choice of the K units whose features are the initial anchors.
    """
    n = len(blocks[0][1])
    if n < shards:
        raise ValueError(f"cannot split {n} units into {shards} non-empty shards")
    blocks = [(np.asarray(t, dtype=np.float64), np.asarray(i, dtype=np.int64)) for t, i in blocks]
    start = np.random.default_rng(seed).choice(n, size=shards, replace=False)
    anchors = [t[i[start]].copy() for t, i in blocks]
    assignment = None
    converged = False
    it = 0
    for it in range(1, max(iters, 1) + 1):  # noqa: B007  (the count is reported after the loop)
        dist = np.ones((n, shards))
        for (t, i), a in zip(blocks, anchors):
            dist *= _sq_dist(t, a)[i]
        new = greedy_balanced_assignment(dist, capacity)
        converged = assignment is not None and np.array_equal(new, assignment)
        assignment = new
        if converged:
            break
        for (t, i), a in zip(blocks, anchors):
            means = _block_means(t, i, assignment, shards)
            filled = ~np.isnan(means).any(1)
            a[filled] = means[filled]  # an empty shard keeps its anchor
    return assignment, {"iterations": it, "converged": bool(converged)}


def receraser_partition(
    edges: np.ndarray,
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    shards: int,
    mode: str,
    seed: int,
    iters: int,
    capacity_factor: float,
) -> tuple[np.ndarray, dict]:
    """RecEraser's UBP / IBP / InBP: shard id per row of `edges`, and a report with the capacity and sizes.

    "user" balances the number of users per shard (all of a user's edges go where the user goes), "item" the
    items, "interaction" the edges. Only users/items that occur in `edges` are partitioned.

    Args:
        edges: (E, 2) training edges.
        user_emb: (n_users, d) embeddings the distances are measured on.
        item_emb: (n_items, d) embeddings the distances are measured on.
        shards: number of shards K.
        mode: "user", "item" or "interaction" (RecEraser's `partition` setting).
        seed: seed of the initial anchors.
        iters: balanced k-means iterations T (`partition_iters`).
        capacity_factor: shard capacity = capacity_factor * units / K.
    """
    if mode not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {mode!r}")
    if capacity_factor < 1.0:
        raise ValueError(f"capacity_factor must be >= 1, got {capacity_factor}")
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    user_emb, item_emb = np.asarray(user_emb), np.asarray(item_emb)
    if mode == "interaction":
        units, blocks = None, [(user_emb, edges[:, 0]), (item_emb, edges[:, 1])]
        n_units = len(edges)
    else:
        col = 0 if mode == "user" else 1
        units, inverse = np.unique(edges[:, col], return_inverse=True)
        blocks = [(user_emb if mode == "user" else item_emb, units)]
        n_units = len(units)
    capacity = int(math.ceil(capacity_factor * n_units / shards))
    unit_shard, report = balanced_kmeans(blocks, shards, capacity, iters, seed)
    assignment = unit_shard if units is None else unit_shard[inverse]
    report.update(
        mode=mode,
        capacity=capacity,
        units=int(n_units),
        unit_sizes=np.bincount(unit_shard, minlength=shards).tolist(),
        edge_sizes=np.bincount(assignment, minlength=shards).tolist(),
    )
    return assignment, report
