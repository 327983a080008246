"""Full-ranking Recall@k and NDCG@k over all items, with the training items masked.

Why this shape: the original code ranked in Python loops per user; here users go in batches through one dense
score matrix, masked positions get -inf, `torch.topk` picks the top k and hits are read from a dense boolean
test matrix of the batch, so evaluating every user is cheap enough to run at every check (timings in
docs/decisions.md, section "Evaluation").

Definitions (docs/method.md, section "Metrics"): every user with at least one test item is evaluated;
Recall@k = hits in the top k / |test items of the user|; NDCG@k = DCG / IDCG with IDCG over
min(|test items|, k) hits; both averaged over the evaluated users. A test item that is also masked can never
be hit but still counts in |test items|.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["evaluate_ranking", "popularity_scores", "evaluate_popularity"]


def _csr(edges: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    m = sp.csr_matrix((np.ones(len(edges), dtype=np.float32), (edges[:, 0], edges[:, 1])), shape=(n_users, n_items))
    m.sum_duplicates()
    return m


def _rows_to_torch(m: sp.csr_matrix, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row-in-batch, column) index tensors of the nonzeros of a CSR slice."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return torch.from_numpy(rows).to(device), torch.from_numpy(m.indices.astype(np.int64)).to(device)


@torch.no_grad()
def evaluate_ranking(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    mask_edges: np.ndarray,
    test_edges: np.ndarray,
    ks=(20,),
    batch_users: int = 2048,
) -> dict:
    """Recall@k / NDCG@k for every k in `ks` ("recall@20", "ndcg@20", ...) plus "n_users" evaluated.

    Scores are user_emb @ item_emb.T (any device, any float dtype); (user, item) pairs in `mask_edges` score
    -inf. Returns plain floats.

    Args:
        user_emb: (n_users, d) final user embeddings.
        item_emb: (n_items, d) final item embeddings, on the same device.
        mask_edges: (E, 2) pairs never ranked (the training edges of the graph the model ran on).
        test_edges: (E, 2) held-out pairs; users without one are not evaluated.
        ks: cut-offs k.
        batch_users: users scored per dense block (bounds memory at batch_users x n_items).
    """
    n_users, n_items = user_emb.shape[0], item_emb.shape[0]
    ks = sorted({int(k) for k in ks})
    test = _csr(test_edges, n_users, n_items)
    mask = _csr(mask_edges, n_users, n_items)
    n_test = np.diff(test.indptr)
    users = np.flatnonzero(n_test > 0)
    kmax = min(max(ks), n_items)
    device = user_emb.device
    discount = 1.0 / torch.log2(torch.arange(2, kmax + 2, device=device, dtype=torch.float64))
    idcg_table = torch.cat([torch.zeros(1, device=device, dtype=torch.float64), discount.cumsum(0)])
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    for start in range(0, len(users), batch_users):
        b = users[start : start + batch_users]
        scores = user_emb[torch.from_numpy(b).to(device)] @ item_emb.T
        r, c = _rows_to_torch(mask[b], device)
        scores[r, c] = -torch.inf
        top = torch.topk(scores, kmax, dim=1).indices
        truth = torch.zeros(len(b), n_items, dtype=torch.bool, device=device)
        r, c = _rows_to_torch(test[b], device)
        truth[r, c] = True
        hits = truth.gather(1, top).to(torch.float64)
        nt = torch.from_numpy(n_test[b]).to(device=device, dtype=torch.float64)
        for k in ks:
            kk = min(k, n_items)
            h = hits[:, :kk]
            sums[f"recall@{k}"] += float((h.sum(1) / nt).sum())
            dcg = (h * discount[:kk]).sum(1)
            idcg = idcg_table[torch.clamp(nt, max=kk).long()]
            sums[f"ndcg@{k}"] += float((dcg / idcg).sum())
    n = len(users)
    out = {key: (value / n if n else 0.0) for key, value in sums.items()}
    out["n_users"] = int(n)
    return out


def popularity_scores(train_edges: np.ndarray, n_items: int) -> np.ndarray:
    """Interaction count per item (float64)."""
    items = np.asarray(train_edges, dtype=np.int64).reshape(-1, 2)[:, 1]
    return np.bincount(items, minlength=n_items).astype(np.float64)


def evaluate_popularity(train_edges: np.ndarray, test_edges: np.ndarray, n_users: int, n_items: int, ks=(20,)) -> dict:
    """The most-popular-items ranking for every user (training items masked): the floor a model must beat.

    Ties in popularity break towards the lower item id (a deterministic ranking), via a sub-unit offset.

    Args:
        train_edges: (E, 2) training pairs: they give the popularity and are masked.
        test_edges: (E, 2) held-out pairs.
        n_users: number of users.
        n_items: number of items.
        ks: cut-offs k.
    """
    pop = popularity_scores(train_edges, n_items) - np.arange(n_items) / (n_items + 1.0)
    user_emb = torch.ones(n_users, 1, dtype=torch.float64)
    item_emb = torch.from_numpy(pop).reshape(-1, 1)
    return evaluate_ranking(user_emb, item_emb, train_edges, test_edges, ks=ks)
