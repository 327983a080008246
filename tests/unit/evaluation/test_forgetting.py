"""Forgetting metrics on hand-made score arrays, the non-edge sampler and the membership-inference attack."""

import itertools

import numpy as np
import pytest
import torch

from recunlearn.evaluation.forgetting import (
    MembershipInferenceAttack,
    forgetting_metrics,
    rank_auc,
    score_pairs,
    sigmoid,
)
from recunlearn.graph.sampling import sample_non_edges


def pairwise_auc(pos, neg):
    """Independent O(n*m) definition: P(pos > neg) + 0.5 P(pos == neg)."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_mi_bf_mi_ng_and_auc_exact_values():
    before = np.array([2.0, 2.0])  # sigmoid(2) = 0.880797...
    after = np.array([0.0, 0.0])  # sigmoid(0) = 0.5
    non = np.array([np.log(3.0), np.log(3.0)])  # sigmoid(log 3) = 0.75
    m = forgetting_metrics(before, after, non, np.array([1.0, 3.0]))
    assert m["mi_bf"] == pytest.approx((1 / (1 + np.exp(-2.0))) / 0.5)
    assert m["mi_ng"] == pytest.approx(0.75 / 0.5)
    assert m["auc_deleted_vs_nonedges"] == 0.0  # every deleted score (0) is below every non-edge score (log 3)
    assert "df_auc" not in m and "df_auc_distance" not in m
    assert m["remaining_after"]["mean"] == 2.0 and m["remaining_after"]["std"] == 1.0
    assert m["deleted_after"]["q50"] == 0.0 and m["deleted_before"]["mean_sigmoid"] == pytest.approx(0.8807970779)


def test_auc_identical_separated_and_ties():
    x = np.array([0.1, 0.5, 0.9, 1.3])
    assert rank_auc(x, x) == 0.5
    assert rank_auc([5.0, 6.0], [1.0, 2.0, 3.0]) == 1.0
    assert rank_auc([1.0], [1.0]) == 0.5
    # deleted = [1, 2, 2], non = [2, 0]: wins 1>0, 2>0, 2>0, ties 2=2 twice -> (3 + 0.5*2) / 6
    assert rank_auc([1.0, 2.0, 2.0], [2.0, 0.0]) == pytest.approx(4.0 / 6.0)


def test_auc_matches_independent_pairwise_formula():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 6, size=37).astype(float)  # many ties on purpose
    neg = rng.integers(0, 6, size=23).astype(float) - 0.5 * rng.integers(0, 2, size=23)
    assert rank_auc(pos, neg) == pytest.approx(pairwise_auc(pos, neg), abs=1e-12)


def test_sigmoid_stable():
    s = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert np.all(np.isfinite(s)) and s[1] == 0.5 and s[0] == 0.0 and s[2] == 1.0


def test_non_edge_sampler_excludes_and_is_deterministic():
    n_users, n_items = 4, 5
    train = np.array([[u, i] for u in range(4) for i in range(5) if (u + i) % 4 != 0])  # dense: 15 of 20
    test = np.array([[0, 4], [1, 3]])
    free = {(u, i) for u in range(4) for i in range(5)} - {tuple(e) for e in train} - {tuple(e) for e in test}
    a = sample_non_edges(n_users, n_items, [train, test], 500, seed=7)
    b = sample_non_edges(n_users, n_items, [train, test], 500, seed=7)
    c = sample_non_edges(n_users, n_items, [train, test], 500, seed=8)
    assert a.shape == (500, 2) and a.dtype == np.int64
    assert {tuple(p) for p in a} <= free
    assert {tuple(p) for p in a} == free  # 500 uniform draws over 3 cells hit every one
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError):
        sample_non_edges(2, 2, [np.array([[0, 0], [0, 1], [1, 0], [1, 1]])], 3, seed=0)


def test_non_edge_sampler_rejection_path_on_sparse_graph():
    rng = np.random.default_rng(1)
    train = np.unique(np.stack([rng.integers(0, 300, 3000), rng.integers(0, 200, 3000)], 1), axis=0)
    s = sample_non_edges(300, 200, [train], 20000, seed=3)
    keys = set((train[:, 0] * 200 + train[:, 1]).tolist())
    assert not keys & set((s[:, 0] * 200 + s[:, 1]).tolist())
    assert s[:, 0].max() < 300 and s[:, 1].max() < 200 and s.min() >= 0


def test_score_pairs_numpy_and_torch_agree():
    u = np.array([[1.0, 2.0], [0.0, -1.0]])
    i = np.array([[3.0, 0.5], [2.0, 2.0], [-1.0, 1.0]])
    pairs = np.array([[0, 0], [1, 2], [0, 1]])
    expected = np.array([4.0, -1.0, 6.0])
    assert np.array_equal(score_pairs(u, i, pairs), expected)
    assert np.array_equal(score_pairs(torch.tensor(u), torch.tensor(i), pairs), expected)


def test_membership_inference_attack_rates():
    rng = np.random.default_rng(0)
    members = rng.normal(3.0, 1.0, 2000)
    non = rng.normal(-1.0, 1.0, 5000)  # unequal sizes: class weights keep the threshold in the middle
    mia = MembershipInferenceAttack().fit(members, non)
    assert mia.member_probability([0.5])[0] < 0.5 < mia.member_probability([1.5])[0]
    assert mia.member_rate(rng.normal(3.0, 1.0, 1000)) > 0.9  # still scored like members
    assert mia.member_rate(rng.normal(-1.0, 1.0, 1000)) < 0.1  # forgotten down to the non-edge level
    # separable classes: the L2 penalty keeps the fit finite and the threshold between the groups
    sep = MembershipInferenceAttack().fit([5.0, 6.0, 7.0], [0.0, 1.0])
    assert np.isfinite(sep.theta).all()
    assert sep.member_probability([1.0])[0] < 0.5 < sep.member_probability([5.0])[0]
    assert sep.member_rate([10.0, -3.0]) == 0.5
