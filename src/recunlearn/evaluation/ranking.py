"""Full-ranking Recall@k and NDCG@k over all items, with the user's known interactions masked.

Why this shape: the original code ranked in Python loops per user; here users go in batches through one dense
score matrix, masked positions get -inf, `torch.topk` picks the top k and hits are read from a dense boolean
test matrix of the batch, so evaluating every user is cheap enough to run at every check (timings in
docs/decisions.md, section "Evaluation").

Definitions (docs/method.md, section "Metrics"): every user with at least one test item is evaluated;
Recall@k = hits in the top k / |test items of the user|; NDCG@k = DCG / IDCG with IDCG over
min(|test items|, k) hits; both averaged over the evaluated users. A test item that is also masked can never
be hit but still counts in |test items|.

Which pairs are masked is the convention `test_mask_edges` names (`TEST_MASKS`): "known", the field's (RecBole,
LightGCN's code, CURE4Rec): every known interaction of the user except the test ones, i.e. the graph the model
ran on plus the validation pairs; "train", the graph the model ran on only (validation items then compete in
the test ranking and count as misses), kept for comparison with papers that evaluate that way.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recunlearn.graph.edges import remove_edges

__all__ = [
    "TEST_MASKS",
    "test_mask_edges",
    "ranking_per_user",
    "evaluate_ranking",
    "within_user_percentiles",
    "popularity_scores",
    "evaluate_popularity",
]

TEST_MASKS = ("known", "train")


def test_mask_edges(
    trained_on: np.ndarray, valid: np.ndarray, test: np.ndarray, n_items: int, convention: str
) -> np.ndarray:
    """The pairs a test ranking masks under `convention` ("known" or "train", see the module docstring).

    Test pairs are never masked, whatever the convention, so a test item can always be hit.

    Args:
        trained_on: (E, 2) the graph the evaluated model ran on (for an unlearned model, the remaining graph).
        valid: (V, 2) validation pairs (masked under "known" only).
        test: (T, 2) test pairs.
        n_items: number of items (for the edge keys).
        convention: one of `TEST_MASKS`.
    """
    if convention not in TEST_MASKS:
        raise ValueError(f"unknown test mask {convention!r}; choose one of {TEST_MASKS}")
    known = [trained_on, valid] if convention == "known" else [trained_on]
    edges = np.concatenate([np.asarray(e, dtype=np.int64).reshape(-1, 2) for e in known])
    return remove_edges(edges, test, n_items)


test_mask_edges.__test__ = False  # its name starts with "test_": keep pytest from collecting it where imported


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
def ranking_per_user(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    mask_edges: np.ndarray,
    test_edges: np.ndarray,
    ks=(20,),
    batch_users: int = 2048,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(evaluated user ids, {"recall@k" / "ndcg@k": per-user values}) for every k in `ks`.

    Scores are user_emb @ item_emb.T (any device, any float dtype); (user, item) pairs in `mask_edges` score
    -inf. The evaluated users are those with at least one test pair, in increasing id order.

    Args:
        user_emb: (n_users, d) final user embeddings.
        item_emb: (n_items, d) final item embeddings, on the same device.
        mask_edges: (E, 2) pairs never ranked (`test_mask_edges` builds them).
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
    parts: dict[str, list[np.ndarray]] = {f"{m}@{k}": [] for k in ks for m in ("recall", "ndcg")}
    for start in range(0, len(users), batch_users):
        b = users[start : start + batch_users]
        scores = user_emb[torch.from_numpy(b).to(device)] @ item_emb.T
        r, c = _rows_to_torch(mask[b], device)
        scores[r, c] = -torch.inf
        top_scores, top = torch.topk(scores, kmax, dim=1)
        truth = torch.zeros(len(b), n_items, dtype=torch.bool, device=device)
        r, c = _rows_to_torch(test[b], device)
        truth[r, c] = True
        # when k exceeds a user's unmasked items, top-k returns masked (-inf) items too: they are never hits
        hits = (truth.gather(1, top) & (top_scores > -torch.inf)).to(torch.float64)
        nt = torch.from_numpy(n_test[b]).to(device=device, dtype=torch.float64)
        for k in ks:
            kk = min(k, n_items)
            h = hits[:, :kk]
            parts[f"recall@{k}"].append((h.sum(1) / nt).cpu().numpy())
            dcg = (h * discount[:kk]).sum(1)
            idcg = idcg_table[torch.clamp(nt, max=kk).long()]
            parts[f"ndcg@{k}"].append((dcg / idcg).cpu().numpy())
    empty = np.zeros(0, dtype=np.float64)
    return users, {key: (np.concatenate(v) if v else empty) for key, v in parts.items()}


def evaluate_ranking(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    mask_edges: np.ndarray,
    test_edges: np.ndarray,
    ks=(20,),
    batch_users: int = 2048,
) -> dict:
    """Recall@k / NDCG@k averaged over the evaluated users ("recall@20", "ndcg@20", ...) plus "n_users".

    Returns plain floats (0.0 when no user has a test pair).

    Args: those of `ranking_per_user`, which this averages.
    """
    users, per_user = ranking_per_user(user_emb, item_emb, mask_edges, test_edges, ks, batch_users)
    out = {key: (float(values.mean()) if len(users) else 0.0) for key, values in per_user.items()}
    out["n_users"] = int(len(users))
    return out


@torch.no_grad()
def within_user_percentiles(
    user_emb: torch.Tensor, item_emb: torch.Tensor, pairs: np.ndarray, chunk: int = 2048
) -> np.ndarray:
    """Where each pair's item sits in its user's ranking of all items: 1 = top, 0 = bottom (float64).

    percentile(u, i) = (#items j != i scoring below i + 0.5 #ties) / (n_items - 1), from user_emb @ item_emb.T.
    Why a within-user rank and not the raw score: score scales differ between users and between models (an
    unlearning method may shrink every score), while "how high would this item be recommended" does not.

    Args:
        user_emb: (n_users, d) final user embeddings.
        item_emb: (n_items, d) final item embeddings, on the same device.
        pairs: (P, 2) (user, item) pairs.
        chunk: pairs scored per dense block (bounds memory at chunk x n_items).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n_items = item_emb.shape[0]
    out = np.empty(len(pairs), dtype=np.float64)
    device = user_emb.device
    for start in range(0, len(pairs), chunk):
        p = torch.from_numpy(pairs[start : start + chunk]).to(device)
        rows = user_emb[p[:, 0]] @ item_emb.T
        own = rows.gather(1, p[:, 1:2])
        below = (rows < own).sum(1).to(torch.float64)
        ties = (rows == own).sum(1).to(torch.float64) - 1.0  # the item itself ties with its own score
        out[start : start + len(p)] = ((below + 0.5 * ties) / max(n_items - 1, 1)).cpu().numpy()
    return out


def popularity_scores(train_edges: np.ndarray, n_items: int) -> np.ndarray:
    """Interaction count per item (float64)."""
    items = np.asarray(train_edges, dtype=np.int64).reshape(-1, 2)[:, 1]
    return np.bincount(items, minlength=n_items).astype(np.float64)


def evaluate_popularity(
    train_edges: np.ndarray, mask_edges: np.ndarray, test_edges: np.ndarray, n_users: int, n_items: int, ks=(20,)
) -> dict:
    """The most-popular-items ranking for every user: the floor a model must beat.

    Ties in popularity break towards the lower item id (a deterministic ranking), via a sub-unit offset.

    Args:
        train_edges: (E, 2) training pairs: they give the popularity.
        mask_edges: (M, 2) pairs never ranked (`test_mask_edges` of the training graph).
        test_edges: (E, 2) held-out pairs.
        n_users: number of users.
        n_items: number of items.
        ks: cut-offs k.
    """
    pop = popularity_scores(train_edges, n_items) - np.arange(n_items) / (n_items + 1.0)
    user_emb = torch.ones(n_users, 1, dtype=torch.float64)
    item_emb = torch.from_numpy(pop).reshape(-1, 1)
    return evaluate_ranking(user_emb, item_emb, mask_edges, test_edges, ks=ks)
