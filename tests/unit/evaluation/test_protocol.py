"""The per-request reference and the judging of an unlearned model, on a tiny random graph."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from recunlearn.errors import RecUnlearnError
from recunlearn.evaluation import evaluate_ranking
from recunlearn.evaluation.fairness import active_users, group_gap
from recunlearn.evaluation.forgetting import rank_auc, score_pairs, sigmoid
from recunlearn.evaluation.protocol import build_reference, evaluate_unlearned
from recunlearn.evaluation.ranking import ranking_per_user, within_user_percentiles
from recunlearn.evaluation.ranking import test_mask_edges as mask_for  # not collected as a test under this name
from recunlearn.graph.edges import edge_keys, remove_edges

N_USERS, N_ITEMS, DIM = 16, 20, 4
KS = (3, 10)


def make_case(seed=0):
    """A split, an original model trained on train + a few injected edges, and a request deleting them."""
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([rng.integers(0, N_USERS, 150), rng.integers(0, N_ITEMS, 150)], 1), axis=0)
    role = rng.choice(3, size=len(pairs), p=[0.6, 0.15, 0.25])
    split = SimpleNamespace(train=pairs[role == 0], valid=pairs[role == 1], test=pairs[role == 2])
    known = set(edge_keys(pairs, N_ITEMS).tolist())
    free = np.array([k for k in range(N_USERS * N_ITEMS) if k not in known])
    injected_keys = rng.choice(free, size=6, replace=False)
    injected = np.stack([injected_keys // N_ITEMS, injected_keys % N_ITEMS], 1)  # in trained_on, not in the split
    trained_on = np.concatenate([split.train, injected])
    request = np.concatenate([injected, split.train[:4]])
    remaining = remove_edges(trained_on, request, N_ITEMS)
    g = torch.Generator().manual_seed(seed)
    users, items = torch.randn(N_USERS, DIM, generator=g), torch.randn(N_ITEMS, DIM, generator=g)
    return SimpleNamespace(
        split=split, trained_on=trained_on, injected=injected, request=request, remaining=remaining, u=users, i=items
    )


def reference(case, test_mask="known", seed=7, **kw):
    args = dict(
        original_users=case.u,
        original_items=case.i,
        trained_on=case.trained_on,
        request=case.request,
        remaining=case.remaining,
        split=case.split,
        ks=KS,
        test_mask=test_mask,
        active_fraction=0.25,
        seed=seed,
    )
    args.update(kw)
    return build_reference(**args)


@pytest.fixture(scope="module")
def case():
    return make_case()


def unlearned_embeddings(case, seed=1):
    g = torch.Generator().manual_seed(seed)
    return case.u + 0.3 * torch.randn(case.u.shape, generator=g), case.i + 0.3 * torch.randn(case.i.shape, generator=g)


def test_metric_and_score_keys(case):
    ref = reference(case)
    metrics, scores = evaluate_unlearned(*unlearned_embeddings(case), ref)
    expected = {f"{m}@{k}" for k in KS for m in ("recall", "ndcg")}
    expected |= {f"a_igf@{k}" for k in KS} | {f"ndcg@{k}_{g}" for k in KS for g in ("active", "inactive")}
    expected |= {"n_users", "auc_deleted_vs_nonedges", "auc_deleted_vs_remaining", "mi_bf", "mi_ng"}
    expected |= {"mia_member_rate", "mia_auc", "deleted_percentile_mean"}
    expected |= {"deleted_after", "deleted_before", "nonedges_after", "remaining_after"}
    assert expected <= set(metrics)
    assert not {"df_auc", "df_auc_distance"} & set(metrics)
    assert set(scores) == {"deleted", "non_edges", "remaining", "deleted_percentile"}
    for key in expected - {"deleted_after", "deleted_before", "nonedges_after", "remaining_after"}:
        assert np.isfinite(metrics[key]), key
    assert 0.0 <= metrics["mia_member_rate"] <= 1.0 and 0.0 <= metrics["mia_auc"] <= 1.0


@pytest.mark.parametrize("convention", ["known", "train"])
def test_utility_is_evaluate_ranking_on_the_remaining_graph_mask(case, convention):
    ref = reference(case, test_mask=convention)
    users, items = unlearned_embeddings(case)
    metrics, _ = evaluate_unlearned(users, items, ref)
    s = case.split
    mask = mask_for(case.remaining, s.valid, s.test, N_ITEMS, convention)
    assert {tuple(p) for p in ref.test_mask.tolist()} == {tuple(p) for p in mask.tolist()}
    expected = evaluate_ranking(users, items, mask, s.test, ks=KS)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    # the deleted edges are not masked: they compete in the ranking (the unlearned model no longer knows them)
    assert not set(edge_keys(case.request, N_ITEMS).tolist()) & set(edge_keys(ref.test_mask, N_ITEMS).tolist())


def test_conventions_give_different_references(case):
    known, train = reference(case, test_mask="known"), reference(case, test_mask="train")
    assert len(known.test_mask) == len(train.test_mask) + len(remove_edges(case.split.valid, case.split.test, N_ITEMS))
    with pytest.raises(ValueError, match="unknown test mask"):
        reference(case, test_mask="everything")


def test_forgetting_numbers_are_those_of_the_reference_pairs(case):
    ref = reference(case)
    users, items = unlearned_embeddings(case)
    metrics, scores = evaluate_unlearned(users, items, ref)
    np.testing.assert_array_equal(scores["deleted"], score_pairs(users, items, case.request))
    np.testing.assert_array_equal(scores["non_edges"], score_pairs(users, items, ref.non_edges))
    np.testing.assert_array_equal(scores["remaining"], score_pairs(users, items, ref.remaining_sample))
    np.testing.assert_array_equal(scores["deleted_percentile"], within_user_percentiles(users, items, case.request))
    assert metrics["auc_deleted_vs_nonedges"] == rank_auc(scores["deleted"], scores["non_edges"])
    assert metrics["auc_deleted_vs_remaining"] == rank_auc(scores["deleted"], scores["remaining"])
    before = score_pairs(case.u, case.i, case.request)
    np.testing.assert_array_equal(ref.before, before)
    assert metrics["mi_bf"] == pytest.approx(sigmoid(before).mean() / sigmoid(scores["deleted"]).mean())
    assert metrics["deleted_percentile_mean"] == pytest.approx(scores["deleted_percentile"].mean())
    # fairness: the groups are the original training split's, the gap is group_gap's
    np.testing.assert_array_equal(ref.active, active_users(case.split.train, N_USERS, 0.25))
    evaluated, per_user = ranking_per_user(users, items, ref.test_mask, case.split.test, KS)
    for k in KS:
        assert metrics[f"a_igf@{k}"] == pytest.approx(
            group_gap(evaluated, per_user, ref.active, f"ndcg@{k}")[f"a_igf@{k}"]
        )


def test_original_model_against_itself(case):
    ref = reference(case)
    metrics, _ = evaluate_unlearned(case.u, case.i, ref)
    assert metrics["mi_bf"] == pytest.approx(1.0)  # nothing moved


def test_reference_is_reproducible_with_the_same_seed(case):
    a, b, c = reference(case, seed=3), reference(case, seed=3), reference(case, seed=4)
    for field in ("non_edges", "remaining_sample", "test_mask", "active", "before"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.attack.state() == b.attack.state()
    users, items = unlearned_embeddings(case)
    assert evaluate_unlearned(users, items, a)[0] == evaluate_unlearned(users, items, b)[0]
    assert not np.array_equal(a.non_edges, c.non_edges)  # the seed really drives the draw


def test_non_edges_avoid_every_known_pair_and_samples_come_from_their_sets(case):
    ref = reference(case)
    s = case.split
    known = set(edge_keys(np.concatenate([case.trained_on, s.train, s.valid, s.test]), N_ITEMS).tolist())
    non = edge_keys(ref.non_edges, N_ITEMS)
    assert len(non) >= 2000  # at least MIN_PAIRS, so the tiny request still gets stable AUCs
    assert not set(non.tolist()) & known
    assert not set(non.tolist()) & set(edge_keys(case.injected, N_ITEMS).tolist())  # injected: in trained_on only
    assert ref.non_edges[:, 0].max() < N_USERS and ref.non_edges[:, 1].max() < N_ITEMS
    remaining = set(edge_keys(case.remaining, N_ITEMS).tolist())
    assert set(edge_keys(ref.remaining_sample, N_ITEMS).tolist()) <= remaining
    assert len(np.unique(edge_keys(ref.remaining_sample, N_ITEMS))) == len(ref.remaining_sample)  # no repeats


def test_unjudgeable_requests_raise(case):
    with pytest.raises(RecUnlearnError, match="nothing to forget"):
        reference(case, request=np.zeros((0, 2), dtype=np.int64))
    with pytest.raises(RecUnlearnError, match="deletes every one of the .* training edges"):
        reference(case, request=case.trained_on, remaining=np.zeros((0, 2), dtype=np.int64))
    no_test = SimpleNamespace(train=case.split.train, valid=case.split.valid, test=np.zeros((0, 2), dtype=np.int64))
    with pytest.raises(RecUnlearnError, match="no user has a test pair"):
        reference(case, split=no_test)
