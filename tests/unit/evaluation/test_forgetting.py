"""Forgetting metrics on hand-made score arrays, the non-edge sampler and the membership-inference attack."""

import itertools
import json

import numpy as np
import pytest
import torch

from recunlearn.evaluation.forgetting import (
    MembershipInferenceAttack,
    attack_features,
    average_ranks,
    forgetting_error,
    forgetting_metrics,
    ks_statistic,
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


def test_metric_keys_with_and_without_remaining_and_before():
    m = forgetting_metrics(None, [0.0, 1.0], [0.5])
    assert "auc_deleted_vs_remaining" not in m and "remaining_after" not in m
    assert "mi_bf" not in m and "deleted_before" not in m
    assert {"mi_ng", "auc_deleted_vs_nonedges", "deleted_after", "nonedges_after"} <= set(m)


def test_auc_deleted_vs_remaining_matches_pairwise_and_is_not_vs_nonedges():
    rng = np.random.default_rng(3)
    deleted = rng.integers(0, 5, size=19).astype(float)  # ties on purpose
    remaining = rng.integers(1, 7, size=29).astype(float)
    non = rng.integers(-3, 3, size=31).astype(float)
    m = forgetting_metrics(None, deleted, non, remaining)
    assert m["auc_deleted_vs_remaining"] == pytest.approx(pairwise_auc(deleted, remaining), abs=1e-12)
    assert m["auc_deleted_vs_nonedges"] == pytest.approx(pairwise_auc(deleted, non), abs=1e-12)
    assert m["auc_deleted_vs_remaining"] != pytest.approx(m["auc_deleted_vs_nonedges"])
    # deleted edges as the positive class: still scored like training edges -> 0.5, far above them -> 1
    assert forgetting_metrics(None, remaining, non, remaining)["auc_deleted_vs_remaining"] == 0.5
    assert forgetting_metrics(None, remaining + 100.0, non, remaining)["auc_deleted_vs_remaining"] == 1.0


def brute_force_ks(a, b):
    """sup_x |F_a(x) - F_b(x)| over the pooled sample points (where the empirical CDFs jump)."""
    return max(abs(np.mean(a <= x) - np.mean(b <= x)) for x in np.concatenate([a, b]))


def test_forgetting_error_identical_inputs_are_zero():
    p = np.random.default_rng(0).random(50)
    assert forgetting_error(p, p.copy(), 0.42, 0.42) == {"auc_error": 0.0, "rank_ks": 0.0, "rank_shift": 0.0}


def test_forgetting_error_shifted_percentiles():
    rng = np.random.default_rng(1)
    retrain = rng.random(40) * 0.8
    model = np.clip(rng.random(30) * 0.8 + 0.15, 0, 1)  # still ranks the deleted items higher: under-forgetting
    e = forgetting_error(model, retrain, auc=0.3, retrain_auc=0.7)
    assert e["rank_shift"] == pytest.approx(model.mean() - retrain.mean()) and e["rank_shift"] > 0
    assert e["rank_ks"] == pytest.approx(brute_force_ks(model, retrain), abs=1e-12) and 0 < e["rank_ks"] < 1
    assert e["auc_error"] == pytest.approx(0.4)
    back = forgetting_error(retrain, model, auc=0.7, retrain_auc=0.3)  # over-forgetting: the sign flips only
    assert back["rank_shift"] == pytest.approx(-e["rank_shift"]) and back["rank_ks"] == pytest.approx(e["rank_ks"])
    assert back["auc_error"] == pytest.approx(0.4)
    # disjoint distributions: KS is 1
    assert forgetting_error([0.9, 0.95], [0.1, 0.2, 0.3], 0.5, 0.5)["rank_ks"] == 1.0
    with pytest.raises(ValueError):
        forgetting_error([], [0.5], 0.5, 0.5)


def test_attack_features_columns():
    f = attack_features([1.5, -2.0, 0.0], np.array([0.9, 0.1, 0.5]))
    assert f.shape == (3, 2) and f.dtype == np.float64
    np.testing.assert_array_equal(f, [[1.5, 0.9], [-2.0, 0.1], [0.0, 0.5]])


def two_feature_classes(rng, n_members=800, n_non=1500):
    members = attack_features(rng.normal(3.0, 0.5, n_members), rng.uniform(0.8, 1.0, n_members))
    non = attack_features(rng.normal(-3.0, 0.5, n_non), rng.uniform(0.0, 0.4, n_non))
    return members, non


def test_membership_inference_attack_two_features():
    rng = np.random.default_rng(0)
    members, non = two_feature_classes(rng)
    mia = MembershipInferenceAttack().fit(members, non)
    test_members, test_non = two_feature_classes(rng, 300, 300)
    assert mia.member_rate(test_members) > 0.99  # still look like members
    assert mia.member_rate(test_non) < 0.01
    assert np.isnan(mia.member_rate(np.zeros((0, 2))))
    p_pos, p_neg = mia.member_probability(test_members), mia.member_probability(test_non)
    assert p_pos.shape == (300,) and np.all((p_pos >= 0) & (p_pos <= 1))
    assert mia.auc(test_members, test_non) == rank_auc(p_pos, p_neg)
    assert mia.auc(test_members, test_non) > 0.99 and mia.auc(test_non, test_members) < 0.01
    # a mixed set: the AUC is that of the probabilities, checked pairwise
    mixed = np.concatenate([test_members[:20], test_non[:20]])
    assert mia.auc(mixed, test_non[20:50]) == pytest.approx(
        pairwise_auc(mia.member_probability(mixed), mia.member_probability(test_non[20:50]))
    )
    state = mia.state()
    assert set(state) == {"weights", "bias", "mean", "scale"}
    assert len(state["weights"]) == len(state["mean"]) == len(state["scale"]) == 2
    assert all(np.isfinite(state["weights"])) and state["weights"][0] > 0 and state["weights"][1] > 0
    json.dumps(state)  # plain lists and floats: goes into a report as is


def test_attack_fit_is_invariant_to_scaling_a_feature():
    """Standardisation (and the L2 penalty on the standardised weights) make the fitted attacker the same when
    the raw-score feature of every pair, for fitting and for applying, is multiplied by c > 0."""
    rng = np.random.default_rng(2)
    members = attack_features(rng.normal(1.0, 1.0, 400), rng.uniform(0.3, 1.0, 400))  # overlapping classes
    non = attack_features(rng.normal(-0.5, 1.0, 600), rng.uniform(0.0, 0.8, 600))
    probe = attack_features(rng.normal(0.0, 2.0, 200), rng.uniform(0.0, 1.0, 200))
    base = MembershipInferenceAttack().fit(members, non)
    c = np.array([0.01, 1.0])
    scaled = MembershipInferenceAttack().fit(members * c, non * c)
    np.testing.assert_allclose(scaled.member_probability(probe * c), base.member_probability(probe), atol=1e-9)
    np.testing.assert_allclose(scaled.state()["weights"], base.state()["weights"], atol=1e-9)
    assert scaled.state()["scale"][0] == pytest.approx(0.01 * base.state()["scale"][0])
    # ... but an attacker fitted once is not invariant to a model that shrinks its scores afterwards
    assert base.member_rate(probe * c) != base.member_rate(probe)


def test_membership_inference_attack_one_feature_still_works():
    rng = np.random.default_rng(0)
    members = rng.normal(3.0, 1.0, 2000)
    non = rng.normal(-1.0, 1.0, 5000)  # unequal sizes: class weights keep the threshold in the middle
    mia = MembershipInferenceAttack().fit(members, non)
    s = mia.state()
    assert len(s["weights"]) == 1 and s["weights"][0] > 0
    threshold = s["mean"][0] - s["scale"][0] * s["bias"] / s["weights"][0]  # probability 0.5 here
    assert 0.5 < threshold < 1.5
    assert mia.member_probability([threshold])[0] == pytest.approx(0.5)
    assert mia.member_rate(rng.normal(3.0, 1.0, 1000)) > 0.9  # still scored like members
    assert mia.member_rate(rng.normal(-1.0, 1.0, 1000)) < 0.1  # forgotten down to the non-edge level
    # a 1-D array and an (n, 1) matrix are the same feature
    np.testing.assert_array_equal(mia.member_probability(members[:5]), mia.member_probability(members[:5, None]))
    # separable classes: the L2 penalty keeps the fit finite and the threshold between the groups
    sep = MembershipInferenceAttack().fit([5.0, 6.0, 7.0], [0.0, 1.0])
    s = sep.state()
    assert np.isfinite(s["weights"][0]) and 1.0 < s["mean"][0] - s["scale"][0] * s["bias"] / s["weights"][0] < 5.0
    assert sep.member_rate([10.0, -3.0]) == 0.5


def test_attack_errors_and_constant_feature():
    with pytest.raises(RuntimeError):
        MembershipInferenceAttack().member_probability([1.0])
    with pytest.raises(ValueError):
        MembershipInferenceAttack().fit(np.zeros((0, 2)), np.ones((3, 2)))
    # a constant column (zero spread) is left unscaled and gets no weight; the fit stays finite
    members = attack_features([2.0, 3.0, 4.0], [0.5, 0.5, 0.5])
    non = attack_features([-1.0, 0.0], [0.5, 0.5])
    mia = MembershipInferenceAttack().fit(members, non)
    assert mia.state()["scale"][1] == 1.0 and mia.state()["weights"][1] == pytest.approx(0.0, abs=1e-12)
    assert mia.member_rate(members) == 1.0 and mia.member_rate(non) == 0.0


@pytest.mark.parametrize("backbone, tied", [("simgcl", True), ("lightgcn", False)])
def test_a_user_deleted_whole_is_tied_under_simgcls_readout_so_every_model_has_zero_forgetting_error(backbone, tied):
    """Why SimGCL's user-wise requests show rank_ks 0 for every row: its readout (mean of layers 1..L) gives a user
    with no remaining edge a zero embedding, so each of their items scores 0 and sits at percentile 0.5 under any
    embedding table. LightGCN keeps layer 0 in its readout, so two tables still rank that user's items apart."""
    from recunlearn.backbones import build_backbone
    from recunlearn.evaluation.ranking import within_user_percentiles
    from recunlearn.graph.adjacency import normalized_adjacency

    n_users, n_items = 4, 6
    train = np.array([[0, 0], [0, 1], [0, 2], [1, 1], [1, 3], [2, 2], [2, 4], [3, 3], [3, 5], [1, 5]])
    request = train[train[:, 0] == 0]  # user 0's every edge: a user-wise request
    adj = normalized_adjacency(train[train[:, 0] != 0], n_users, n_items, "cpu")
    percentiles = []
    for seed in (0, 1):  # two different trained tables stand in for two unlearned models
        model = build_backbone(backbone, n_users, n_items, {"dim": 8}, seed=seed)
        with torch.no_grad():
            model.embedding.normal_(generator=torch.Generator().manual_seed(seed))
            users, items = model.split(model.propagate(model.embedding, adj))
        percentiles.append(within_user_percentiles(users, items, request))
    error = forgetting_error(percentiles[0], percentiles[1], 0.5, 0.5)["rank_ks"]
    if tied:
        assert np.all(percentiles[0] == 0.5) and np.all(percentiles[1] == 0.5) and error == 0.0
    else:
        assert error > 0.0


@pytest.mark.parametrize("seed", range(5))
def test_average_ranks_and_ks_statistic_match_scipy(seed):
    """The numpy versions (kept off scipy.stats for start-up time) against scipy, with many ties."""
    from scipy.stats import ks_2samp, rankdata

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=rng.integers(1, 40)).astype(float)  # few distinct values: ties everywhere
    b = rng.normal(size=rng.integers(1, 40)).round(1)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(average_ranks(both), rankdata(both))
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic)
    assert ks_statistic(a, a) == 0.0
    assert ks_statistic([0.0, 0.1], [0.5, 0.9]) == 1.0


def test_average_ranks_of_nothing_and_of_equal_values():
    assert average_ranks([]).shape == (0,)
    np.testing.assert_array_equal(average_ranks([3.0, 3.0, 3.0]), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(average_ranks([2.0, 1.0, 2.0, 0.0]), [3.5, 2.0, 3.5, 1.0])
