"""Full-ranking Recall/NDCG under both test-mask conventions, and within-user percentiles, against plain
per-user loops written here with sets (the loops are the model; the library is checked against them)."""

import math

import numpy as np
import pytest
import torch

from recunlearn.evaluation import evaluate_popularity, evaluate_ranking, popularity_scores
from recunlearn.evaluation.ranking import TEST_MASKS, ranking_per_user, within_user_percentiles

# imported under another name: pytest would otherwise collect the library function `test_mask_edges` as a test
from recunlearn.evaluation.ranking import test_mask_edges as mask_for

N_USERS, N_ITEMS = 20, 25


def by_user(pairs):
    out = {}
    for u, i in np.asarray(pairs).reshape(-1, 2).tolist():
        out.setdefault(u, set()).add(i)
    return out


def loop_masked(train, valid, test, convention):
    """Independent statement of the conventions: "known" hides train + valid, "train" hides train; never a test
    pair."""
    train, valid, test = by_user(train), by_user(valid), by_user(test)
    users = set(train) | set(valid)
    if convention == "known":
        return {u: (train.get(u, set()) | valid.get(u, set())) - test.get(u, set()) for u in users}
    return {u: train.get(u, set()) - test.get(u, set()) for u in users}


def loop_ranking(scores, masked, test_pairs, k):
    """{user: (recall@k, ndcg@k)} for every user with a test item; `masked` items are never ranked."""
    test = by_user(test_pairs)
    out = {}
    for u in sorted(test):
        candidates = [i for i in range(len(scores[u])) if i not in masked.get(u, set())]
        ranked = sorted(candidates, key=lambda i: -scores[u][i])[:k]
        hits = [1 if i in test[u] else 0 for i in ranked]
        dcg = sum(h / math.log2(pos + 2) for pos, h in enumerate(hits))
        idcg = sum(1 / math.log2(pos + 2) for pos in range(min(len(test[u]), k)))
        out[u] = (sum(hits) / len(test[u]), dcg / idcg)
    return out


def random_split(seed):
    """train / valid / test with deliberate overlaps: a few test pairs are also train pairs, a few also valid
    pairs (they must stay rankable), and one train row is duplicated. User 0 has no test pair."""
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([rng.integers(0, N_USERS, 400), rng.integers(0, N_ITEMS, 400)], 1), axis=0)
    role = rng.choice(3, size=len(pairs), p=[0.55, 0.15, 0.3])
    train, valid, test = pairs[role == 0], pairs[role == 1], pairs[role == 2]
    test = test[test[:, 0] != 0]
    train = np.concatenate([train, test[:4], train[:1]])
    valid = np.concatenate([valid, test[4:8]])
    return train, valid, test


def embeddings(seed, d=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N_USERS, d, generator=g), torch.randn(N_ITEMS, d, generator=g)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("convention", TEST_MASKS)
def test_per_user_values_match_loop_under_both_conventions(seed, convention):
    train, valid, test = random_split(seed)
    assert np.bincount(test[:, 0]).max() > 3  # users with more test items than k=3
    u, i = embeddings(seed)
    scores = (u @ i.T).tolist()
    mask = mask_for(train, valid, test, N_ITEMS, convention)
    ks = (3, 10, 30)  # 30 > N_ITEMS: masked items reach the top k at -inf and must not count
    users, per_user = ranking_per_user(u, i, mask, test, ks=ks, batch_users=7)
    expected_users = sorted(set(test[:, 0].tolist()))
    assert users.tolist() == expected_users and 0 not in expected_users
    assert set(per_user) == {f"{m}@{k}" for k in ks for m in ("recall", "ndcg")}
    masked = loop_masked(train, valid, test, convention)
    means = evaluate_ranking(u, i, mask, test, ks=ks, batch_users=5)
    assert means["n_users"] == len(expected_users)
    for k in ks:
        ref = loop_ranking(scores, masked, test, k)
        np.testing.assert_allclose(per_user[f"recall@{k}"], [ref[v][0] for v in users], atol=1e-6)
        np.testing.assert_allclose(per_user[f"ndcg@{k}"], [ref[v][1] for v in users], atol=1e-6)
        assert means[f"recall@{k}"] == pytest.approx(np.mean([r for r, _ in ref.values()]), abs=1e-6)
        assert means[f"ndcg@{k}"] == pytest.approx(np.mean([n for _, n in ref.values()]), abs=1e-6)


@pytest.mark.parametrize("convention", TEST_MASKS)
def test_mask_edges_are_the_convention_sets(convention):
    train, valid, test = random_split(3)
    mask = mask_for(train, valid, test, N_ITEMS, convention)
    got = {(u, i) for u, i in mask.tolist()}
    known = {tuple(p) for p in train.tolist()} | (
        {tuple(p) for p in valid.tolist()} if convention == "known" else set()
    )
    test_set = {tuple(p) for p in test.tolist()}
    assert got == known - test_set
    assert not got & test_set  # a test pair is never masked, even when it is also a train or valid pair
    assert mask.dtype == np.int64 and mask.shape[1] == 2


def test_unknown_convention_raises():
    train, valid, test = random_split(0)
    with pytest.raises(ValueError, match="unknown test mask"):
        mask_for(train, valid, test, N_ITEMS, "all")


@pytest.mark.parametrize("convention", TEST_MASKS)
def test_test_pair_also_in_train_or_valid_stays_rankable_and_hittable(convention):
    # user 0: train {0, 1}, valid {2}, test {1, 2}: test item 1 is also a train pair, 2 also a valid pair
    train, valid, test = np.array([[0, 0], [0, 1]]), np.array([[0, 2]]), np.array([[0, 1], [0, 2]])
    user = torch.ones(1, 1)
    items = torch.tensor([[9.0], [8.0], [7.0], [6.0], [5.0]])  # item 0 (train, masked) scores highest
    mask = mask_for(train, valid, test, 5, convention)
    assert mask.tolist() == [[0, 0]]
    got = evaluate_ranking(user, items, mask, test, ks=(2,))
    assert got["recall@2"] == 1.0 and got["ndcg@2"] == pytest.approx(1.0)


def test_conventions_give_different_numbers():
    # the validation item 0 scores highest: "known" hides it, "train" ranks it first and the test item misses @1
    train, valid, test = np.array([[0, 3]]), np.array([[0, 0]]), np.array([[0, 1]])
    user = torch.ones(1, 1)
    items = torch.tensor([[9.0], [8.0], [7.0], [10.0]])  # item 3 (train) above all: masked under both
    known = evaluate_ranking(user, items, mask_for(train, valid, test, 4, "known"), test, ks=(1, 2))
    only_train = evaluate_ranking(user, items, mask_for(train, valid, test, 4, "train"), test, ks=(1, 2))
    assert known["recall@1"] == 1.0 and known["ndcg@1"] == 1.0
    assert only_train["recall@1"] == 0.0 and only_train["ndcg@1"] == 0.0
    assert only_train["recall@2"] == 1.0 and only_train["ndcg@2"] == pytest.approx(1 / math.log2(3))
    # the same on random data: the two conventions are not interchangeable
    tr, va, te = random_split(0)
    u, i = embeddings(0)
    a = evaluate_ranking(u, i, mask_for(tr, va, te, N_ITEMS, "known"), te, ks=(5,))
    b = evaluate_ranking(u, i, mask_for(tr, va, te, N_ITEMS, "train"), te, ks=(5,))
    assert a["recall@5"] != pytest.approx(b["recall@5"])


def test_raw_mask_containing_a_test_item_never_hits():
    user, items = torch.ones(1, 1), torch.tensor([[3.0], [2.0], [1.0]])
    mask, test = np.array([[0, 0], [0, 1]]), np.array([[0, 1]])  # test item 1 masked by a hand-made mask
    assert evaluate_ranking(user, items, mask, test, ks=(3,))["recall@3"] == 0.0


def test_masked_items_never_rank_and_perfect_model_scores_one():
    train, valid, test = random_split(2)
    mask = mask_for(train, valid, test, N_ITEMS, "known")
    # one-hot "embeddings" that score the test items highest among the rankable ones, the masked items higher
    u = torch.zeros(N_USERS, N_ITEMS)
    u[mask[:, 0], mask[:, 1]] = 5.0
    u[test[:, 0], test[:, 1]] = 1.0
    got = evaluate_ranking(u, torch.eye(N_ITEMS), mask, test, ks=(N_ITEMS,))
    assert got["recall@25"] == pytest.approx(1.0) and got["ndcg@25"] == pytest.approx(1.0)
    unmasked = evaluate_ranking(u, torch.eye(N_ITEMS), np.zeros((0, 2), np.int64), test, ks=(3,))
    assert unmasked["recall@3"] < 0.5


def test_no_test_pair_gives_no_users_and_zero_means():
    u, i = embeddings(0)
    users, per_user = ranking_per_user(u, i, np.zeros((0, 2)), np.zeros((0, 2)), ks=(5,))
    assert len(users) == 0 and len(per_user["recall@5"]) == 0
    assert evaluate_ranking(u, i, np.zeros((0, 2)), np.zeros((0, 2)), ks=(5,)) == {
        "recall@5": 0.0,
        "ndcg@5": 0.0,
        "n_users": 0,
    }


def loop_percentile(scores, u, i):
    row = scores[u]
    below = sum(1 for j, s in enumerate(row) if j != i and s < row[i])
    ties = sum(1 for j, s in enumerate(row) if j != i and s == row[i])
    return (below + 0.5 * ties) / (len(row) - 1)


def test_within_user_percentiles_match_loop_with_ties():
    g = torch.Generator().manual_seed(0)
    u = torch.randint(-2, 3, (N_USERS, 3), generator=g).float()  # integer scores: many exact ties
    i = torch.randint(-2, 3, (N_ITEMS, 3), generator=g).float()
    scores = (u @ i.T).tolist()
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.integers(0, N_USERS, 300), rng.integers(0, N_ITEMS, 300)], 1)
    got = within_user_percentiles(u, i, pairs, chunk=17)
    assert got.dtype == np.float64 and got.shape == (300,)
    assert any(scores[a].count(scores[a][b]) > 1 for a, b in pairs.tolist())  # ties really occur
    np.testing.assert_allclose(got, [loop_percentile(scores, a, b) for a, b in pairs.tolist()], atol=1e-12)
    assert got.min() >= 0.0 and got.max() <= 1.0


def test_within_user_percentiles_top_bottom_and_all_tied():
    user = torch.tensor([[1.0], [0.0]])  # user 1 scores every item 0: all tied
    items = torch.tensor([[2.0], [5.0], [-1.0], [3.0]])
    got = within_user_percentiles(user, items, np.array([[0, 1], [0, 2], [0, 3], [0, 0], [1, 2]]))
    np.testing.assert_allclose(got, [1.0, 0.0, 2 / 3, 1 / 3, 0.5])
    assert within_user_percentiles(user, items, np.zeros((0, 2))).shape == (0,)


@pytest.mark.parametrize("convention", TEST_MASKS)
def test_popularity_baseline(convention):
    rng = np.random.default_rng(0)
    items = np.minimum(rng.geometric(0.15, 1500) - 1, N_ITEMS - 1)  # strongly skewed popularity
    pairs = np.unique(np.stack([rng.integers(0, N_USERS, 1500), items], 1), axis=0)
    role = rng.choice(3, size=len(pairs), p=[0.7, 0.1, 0.2])
    train, valid, test = pairs[role == 0], pairs[role == 1], pairs[role == 2]
    pop = popularity_scores(train, N_ITEMS)
    assert pop.sum() == len(train) and pop[0] == np.sum(train[:, 1] == 0)
    mask = mask_for(train, valid, test, N_ITEMS, convention)
    got = evaluate_popularity(train, mask, test, N_USERS, N_ITEMS, ks=(5,))
    scores = np.tile(pop - np.arange(N_ITEMS) * 1e-6, (N_USERS, 1)).tolist()  # ties towards the lower id
    ref = loop_ranking(scores, loop_masked(train, valid, test, convention), test, 5)
    assert got["recall@5"] == pytest.approx(np.mean([r for r, _ in ref.values()]))
    assert got["ndcg@5"] == pytest.approx(np.mean([n for _, n in ref.values()]))
    u, i = embeddings(0, d=4)
    assert got["recall@5"] > evaluate_ranking(u, i, mask, test, ks=(5,))["recall@5"]
