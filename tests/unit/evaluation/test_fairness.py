"""Active/inactive user groups and the utility gap between them (A-IGF), against hand computations."""

import math

import numpy as np
import pytest
import torch

from recunlearn.evaluation.fairness import active_users, group_gap
from recunlearn.evaluation.ranking import ranking_per_user


def edges_with_counts(counts):
    """Training pairs giving user u exactly counts[u] interactions."""
    return np.array([[u, i] for u, c in enumerate(counts) for i in range(c)], dtype=np.int64).reshape(-1, 2)


COUNTS = [3, 5, 5, 1, 0, 5]  # users 1, 2, 5 tie for the most interactions; user 4 has none


def loop_active(counts, fraction):
    n = len(counts)
    n_active = min(max(round(fraction * n), 1), max(n - 1, 1))
    chosen = sorted(range(n), key=lambda u: (-counts[u], u))[:n_active]
    return [u in chosen for u in range(n)]


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.5, [1, 2, 5]),  # 3 users: the three with 5 interactions
        (0.34, [1, 2]),  # 2 users among the tied three: the lower ids
        (0.01, [1]),  # rounds to 0: at least one user
        (0.99, [0, 1, 2, 3, 5]),  # rounds to all 6: at most all but one, the least active (user 4) stays out
        (0.6, [0, 1, 2, 5]),
    ],
)
def test_active_users_top_fraction_with_tie_break(fraction, expected):
    mask = active_users(edges_with_counts(COUNTS), len(COUNTS), fraction)
    assert mask.dtype == bool and mask.shape == (len(COUNTS),)
    assert np.flatnonzero(mask).tolist() == expected
    assert mask.tolist() == loop_active(COUNTS, fraction)


def test_active_users_random_counts_match_loop():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=40).tolist()  # many ties
    edges = edges_with_counts(counts)
    edges = edges[rng.permutation(len(edges))]  # row order does not matter
    for fraction in (0.1, 0.2, 0.5, 0.9):
        assert active_users(edges, 40, fraction).tolist() == loop_active(counts, fraction)


def test_active_users_counts_users_without_edges_and_trailing_users():
    # n_users larger than any id in the edges: the trailing users have 0 interactions and are inactive
    mask = active_users(np.array([[0, 0], [0, 1], [2, 0]]), 5, 0.4)
    assert np.flatnonzero(mask).tolist() == [0, 2]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_active_fraction_out_of_range_raises(fraction):
    with pytest.raises(ValueError, match="active fraction"):
        active_users(edges_with_counts(COUNTS), len(COUNTS), fraction)


def test_group_gap_hand_computed():
    users = np.array([0, 2, 3, 5])
    per_user = {"ndcg@20": np.array([0.1, 0.4, 0.2, 0.9]), "recall@20": np.array([1.0, 0.0, 0.5, 0.5])}
    active = np.array([True, False, False, True, False, False])  # evaluated active users: 0, 3
    gap = group_gap(users, per_user, active, "ndcg@20")
    assert set(gap) == {"ndcg@20_active", "ndcg@20_inactive", "a_igf@20"}
    assert gap["ndcg@20_active"] == pytest.approx(0.15)  # (0.1 + 0.2) / 2
    assert gap["ndcg@20_inactive"] == pytest.approx(0.65)  # (0.4 + 0.9) / 2
    assert gap["a_igf@20"] == pytest.approx(0.5)  # |0.15 - 0.65|, never negative
    rec = group_gap(users, per_user, active, "recall@20")
    assert rec == pytest.approx({"recall@20_active": 0.75, "recall@20_inactive": 0.25, "a_igf@20": 0.5})


@pytest.mark.parametrize("active_ids", [[1, 4], [0, 2, 3, 5]])
def test_group_gap_nan_when_a_group_has_no_evaluated_user(active_ids):
    users = np.array([0, 2, 3, 5])
    per_user = {"ndcg@5": np.array([0.1, 0.4, 0.2, 0.9])}
    active = np.isin(np.arange(6), active_ids)
    gap = group_gap(users, per_user, active, "ndcg@5")
    empty, full = ("active", "inactive") if active_ids == [1, 4] else ("inactive", "active")
    assert math.isnan(gap[f"ndcg@5_{empty}"]) and math.isnan(gap["a_igf@5"])
    assert gap[f"ndcg@5_{full}"] == pytest.approx(0.4)


def test_group_gap_on_ranking_per_user_output():
    """The users returned by `ranking_per_user` index the user mask: the groups are the evaluated users'."""
    g = torch.Generator().manual_seed(0)
    u, i = torch.randn(8, 3, generator=g), torch.randn(10, 3, generator=g)
    test = np.array([[1, 0], [1, 3], [3, 2], [4, 4], [6, 7], [6, 1]])
    users, per_user = ranking_per_user(u, i, np.zeros((0, 2)), test, ks=(3,))
    active = active_users(np.array([[1, 0], [1, 1], [1, 2], [6, 0], [6, 1], [2, 0]]), 8, 0.25)  # users 1, 6
    gap = group_gap(users, per_user, active, "ndcg@3")
    values = dict(zip(users.tolist(), per_user["ndcg@3"].tolist()))
    assert gap["ndcg@3_active"] == pytest.approx((values[1] + values[6]) / 2)
    assert gap["ndcg@3_inactive"] == pytest.approx((values[3] + values[4]) / 2)
