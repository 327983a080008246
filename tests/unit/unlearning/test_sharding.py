"""Shard partitions (SISA, RecEraser): balanced, seeded; RecEraser's vectorised greedy pass equals the paper's loop;
the k-means on gathered rows equals the k-means on per-interaction copies, and its centroids are per-dimension means."""

import numpy as np
import pytest

from recunlearn.graph.edges import unique_edges
from recunlearn.unlearning.base import final_embeddings
from recunlearn.unlearning.sharding import (
    balanced_kmeans,
    greedy_balanced_assignment,
    random_partition,
    random_user_partition,
    receraser_partition,
)

N_USERS, N_ITEMS = 30, 20  # the two-block graph of conftest.py


def test_random_partition_is_balanced_and_seeded():
    a = random_partition(103, 4, seed=3)
    assert sorted(np.bincount(a).tolist()) == [25, 26, 26, 26]
    assert np.array_equal(a, random_partition(103, 4, seed=3))
    assert not np.array_equal(a, random_partition(103, 4, seed=4))


def test_random_user_partition_keeps_each_user_in_one_shard_and_balances_users():
    users = np.random.default_rng(0).integers(0, 23, size=300)
    a = random_user_partition(users, 4, seed=3)
    shard_of = {}
    for u, k in zip(users.tolist(), a.tolist()):
        assert shard_of.setdefault(u, k) == k  # one shard per user
    per_shard = np.bincount(list(shard_of.values()), minlength=4)
    assert per_shard.max() - per_shard.min() <= 1 and per_shard.sum() == len(set(users.tolist()))
    assert np.array_equal(a, random_user_partition(users, 4, seed=3))
    assert not np.array_equal(a, random_user_partition(users, 4, seed=4))


def test_greedy_assignment_equals_the_pairwise_greedy_pass():
    def naive(dist, cap):  # the paper's loop: visit (unit, shard) pairs by distance, join if both free
        out, room = np.full(len(dist), -1), np.full(dist.shape[1], cap)
        for flat in np.argsort(dist, axis=None, kind="stable"):
            u, s = divmod(int(flat), dist.shape[1])
            if out[u] < 0 and room[s] > 0:
                out[u], room[s] = s, room[s] - 1
        return out

    rng = np.random.default_rng(0)
    for case in range(60):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        cap = int(np.ceil(rng.uniform(1.0, 1.5) * n / k))
        dist = rng.random((n, k)).round(1 if case % 2 else 6)  # rounded: many ties
        got = greedy_balanced_assignment(dist, cap)
        assert np.array_equal(got, naive(dist, cap))
        assert np.bincount(got, minlength=k).max() <= cap


@pytest.mark.parametrize("mode", ["user", "item", "interaction"])
def test_receraser_partition_is_balanced_and_deterministic(original, mode):
    edges = unique_edges(original.trained_on, N_ITEMS)
    users, items = (t.numpy() for t in final_embeddings(original.backbone, original.backbone.embedding, edges))
    a, report = receraser_partition(edges, users, items, 4, mode, seed=5, iters=10, capacity_factor=1.2)
    b, _ = receraser_partition(edges, users, items, 4, mode, seed=5, iters=10, capacity_factor=1.2)
    assert np.array_equal(a, b)
    assert max(report["unit_sizes"]) <= report["capacity"] == int(np.ceil(1.2 * report["units"] / 4))
    assert sum(report["unit_sizes"]) == report["units"] and sum(report["edge_sizes"]) == len(edges)
    if mode != "interaction":  # every user (item) lives in exactly one shard
        col = 0 if mode == "user" else 1
        for node in np.unique(edges[:, col]):
            assert len(np.unique(a[edges[:, col] == node])) == 1


def test_kmeans_on_gathered_rows_equals_kmeans_on_per_interaction_copies(original):
    edges = unique_edges(original.trained_on, N_ITEMS)
    users, items = (t.numpy() for t in final_embeddings(original.backbone, original.backbone.embedding, edges))
    n, every = len(edges), np.arange(len(edges))
    capacity = int(np.ceil(1.2 * n / 4))
    gathered, rep_a = balanced_kmeans([(users, edges[:, 0]), (items, edges[:, 1])], 4, capacity, 10, seed=2)
    copied, rep_b = balanced_kmeans([(users[edges[:, 0]], every), (items[edges[:, 1]], every)], 4, capacity, 10, seed=2)
    assert np.array_equal(gathered, copied) and rep_a == rep_b


def test_kmeans_centroids_are_per_dimension_means():
    # two well-separated groups in 2-D; scalar centroids (the official np.mean without an axis) cannot part them
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal([0, 10], 0.3, (20, 2)), rng.normal([10, 0], 0.3, (20, 2))])
    for seed in range(5):
        assignment, report = balanced_kmeans([(points, np.arange(40))], 2, 24, 20, seed=seed)
        assert report["converged"]
        assert len(set(assignment[:20])) == 1 and len(set(assignment[20:])) == 1 and assignment[0] != assignment[20]
