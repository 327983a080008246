"""Full-ranking Recall/NDCG against a plain per-user reference written here with loops and sets."""

import math

import numpy as np
import pytest
import torch

from recunlearn.evaluation import evaluate_popularity, evaluate_ranking, popularity_scores

N_USERS, N_ITEMS = 30, 40


def reference(scores, train_pairs, test_pairs, k):
    train, test = {}, {}
    for u, i in train_pairs:
        train.setdefault(u, set()).add(i)
    for u, i in test_pairs:
        test.setdefault(u, set()).add(i)
    recalls, ndcgs = [], []
    for u in sorted(test):
        candidates = [i for i in range(len(scores[u])) if i not in train.get(u, set())]
        ranked = sorted(candidates, key=lambda i: -scores[u][i])[:k]
        hits = [1 if i in test[u] else 0 for i in ranked]
        recalls.append(sum(hits) / len(test[u]))
        dcg = sum(h / math.log2(pos + 2) for pos, h in enumerate(hits))
        idcg = sum(1 / math.log2(pos + 2) for pos in range(min(len(test[u]), k)))
        ndcgs.append(dcg / idcg)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs), len(recalls)


def random_split(seed):
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([rng.integers(0, N_USERS, 700), rng.integers(0, N_ITEMS, 700)], 1), axis=0)
    is_test = rng.random(len(pairs)) < 0.4
    test = pairs[is_test]
    test = test[test[:, 0] != 0]  # user 0 has no test item: not evaluated
    # a few train/test overlaps: the masked test item can never be hit but still counts
    overlap = test[:5]
    return np.concatenate([pairs[~is_test], overlap]), test


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference_with_masking_and_many_test_items(seed):
    train, test = random_split(seed)
    assert np.bincount(test[:, 0]).max() > 5  # users with more test items than k=5 exist
    g = torch.Generator().manual_seed(seed)
    u, i = torch.randn(N_USERS, 6, generator=g), torch.randn(N_ITEMS, 6, generator=g)
    scores = (u @ i.T).tolist()
    got = evaluate_ranking(u, i, train, test, ks=(5, 20), batch_users=7)
    for k in (5, 20):
        recall, ndcg, n = reference(scores, train.tolist(), test.tolist(), k)
        assert got[f"recall@{k}"] == pytest.approx(recall, abs=1e-6)
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg, abs=1e-6)
    assert got["n_users"] == n == len(np.unique(test[:, 0]))


def test_masked_items_never_rank_and_perfect_model_scores_one():
    train, test = random_split(2)
    test = test[~np.isin(test[:, 0] * N_ITEMS + test[:, 1], train[:, 0] * N_ITEMS + train[:, 1])]
    # one-hot "embeddings" that score the test items highest and the training items even higher
    u = torch.zeros(N_USERS, N_ITEMS)
    u[test[:, 0], test[:, 1]] = 1.0
    u[train[:, 0], train[:, 1]] = 5.0
    got = evaluate_ranking(u, torch.eye(N_ITEMS), train, test, ks=(50,))
    assert got["recall@50"] == pytest.approx(1.0) and got["ndcg@50"] == pytest.approx(1.0)
    unmasked = evaluate_ranking(u, torch.eye(N_ITEMS), np.zeros((0, 2), np.int64), test, ks=(3,))
    assert unmasked["recall@3"] < 0.5


def test_popularity_baseline():
    rng = np.random.default_rng(0)
    items = np.minimum(rng.geometric(0.15, 2000) - 1, N_ITEMS - 1)  # strongly skewed popularity
    pairs = np.unique(np.stack([rng.integers(0, N_USERS, 2000), items], 1), axis=0)
    is_test = rng.random(len(pairs)) < 0.2
    train, test = pairs[~is_test], pairs[is_test]
    pop = popularity_scores(train, N_ITEMS)
    assert pop.sum() == len(train) and pop[0] == np.sum(train[:, 1] == 0)
    got = evaluate_popularity(train, train, test, N_USERS, N_ITEMS, ks=(5,))
    scores = np.tile(pop - np.arange(N_ITEMS) * 1e-6, (N_USERS, 1)).tolist()
    recall, ndcg, _ = reference(scores, train.tolist(), test.tolist(), 5)
    assert got["recall@5"] == pytest.approx(recall) and got["ndcg@5"] == pytest.approx(ndcg)
    g = torch.Generator().manual_seed(0)
    rand = evaluate_ranking(
        torch.randn(N_USERS, 4, generator=g), torch.randn(N_ITEMS, 4, generator=g), train, test, ks=(5,)
    )
    assert got["recall@5"] > rand["recall@5"]
