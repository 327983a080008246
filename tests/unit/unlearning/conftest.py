"""Synthetic graphs shared by the per-method tests: small enough to train a backbone in about a second.

- `clustered`: three taste groups, LightGCN trained on them, 12 training edges to delete (fine-tune, reverse BPR,
  GIF); `clustered_wide` the same with 60 users x 90 items, where Recall@20 is informative;
- `original`: two disconnected blocks (users 0-14 x items 0-9, users 15-29 x items 10-19), so "far from the
  request" has an exact meaning: a request inside block A cannot reach block B (sharding, SISA, RecEraser,
  GNNDelete, D2DGN).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.lightgcn import LightGCN
from recunlearn.backbones.trainer import train_backbone
from recunlearn.config import default_config
from recunlearn.evaluation.forgetting import score_pairs
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.edges import remove_edges
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.unlearning import METHODS
from recunlearn.unlearning.base import OriginalModel, UnlearningTask, final_embeddings

N_USERS, N_ITEMS = 30, 20
# the schema's `train` defaults (every key a method may read), with a budget for the tiny graphs
TRAIN = {
    **default_config()["train"],
    "lr": 0.05,
    "batch_size": 64,
    "max_epochs": 20,
    "patience": 2,
    "eval_every": 5,
    "ks": [5],
}


def clustered_edges(n_users: int, n_items: int, seed: int) -> np.ndarray:
    """Three taste groups: each user has 5 items of its own group and 1 random item (learnable structure)."""
    rng = np.random.default_rng(seed)
    group_u, group_i = np.arange(n_users) % 3, np.arange(n_items) % 3
    pairs = set()
    for u in range(n_users):
        pairs.update((u, int(i)) for i in rng.choice(np.flatnonzero(group_i == group_u[u]), 5, replace=False))
        pairs.add((u, int(rng.integers(n_items))))
    edges = np.array(sorted(pairs), dtype=np.int64)
    return edges[rng.permutation(len(edges))]


class Clustered:
    """The task (LightGCN dim 8, 2 layers, trained ~1 s; 12 training edges deleted), test edges, random non-edges,
    and the measurements the method tests compare."""

    def __init__(self, n_users: int = N_USERS, n_items: int = N_ITEMS, n_test: int = 20, n_deleted: int = 12):
        edges = clustered_edges(n_users, n_items, seed=0)
        rng = np.random.default_rng(1)
        is_test = np.zeros(len(edges), dtype=bool)
        is_test[rng.choice(len(edges), n_test, replace=False)] = True
        train, self.test = edges[~is_test], edges[is_test]
        backbone = LightGCN(n_users, n_items, dim=8, layers=2, l2=1e-3, readout="sum", seed=0)
        train_backbone(
            backbone,
            train,
            None,
            n_users,
            n_items,
            lr=0.05,
            batch_size=64,
            epochs=30,
            patience=1,
            eval_every=1,
            ks=(20,),
            progress=False,
        )
        original = OriginalModel(
            backbone, train, n_users, n_items, {"lr": 0.05, "batch_size": 64}, {}, seed=0, device=torch.device("cpu")
        )
        deleted = np.zeros(len(train), dtype=bool)
        deleted[rng.choice(len(train), n_deleted, replace=False)] = True
        self.task = UnlearningTask(original, train[deleted], train[~deleted])
        self.non_edges = sample_non_edges(n_users, n_items, [edges], 400, seed=0)

    def run(self, name: str, settings: dict | None = None):
        """`METHODS[name](settings).unlearn(task)`, checking that the original table is left untouched."""
        before = self.task.original.backbone.embedding.detach().clone()
        out = METHODS[name](settings).unlearn(self.task, None)
        assert torch.equal(self.task.original.backbone.embedding, before), f"{name} changed the original table"
        return out

    def deleted_mean(self, user_emb, item_emb) -> float:
        return float(score_pairs(user_emb, item_emb, self.task.request).mean())

    def original_deleted_mean(self) -> float:
        backbone = self.task.original.backbone
        return self.deleted_mean(
            *final_embeddings(backbone, backbone.embedding.detach(), self.task.original.trained_on)
        )

    def recall(self, user_emb, item_emb) -> float:
        return evaluate_ranking(user_emb, item_emb, self.task.remaining, self.test, ks=(5,))["recall@5"]


@pytest.fixture(scope="session")
def clustered() -> Clustered:
    return Clustered()


@pytest.fixture(scope="session")
def clustered_wide() -> Clustered:
    """The clustered task with 90 items, 60 test and 40 deleted edges: a top-20 list leaves most items out, so
    Recall@20 on the test edges can tell models apart."""
    return Clustered(n_users=60, n_items=90, n_test=60, n_deleted=40)


def two_block_edges(seed=0):
    rng = np.random.default_rng(seed)
    edges = []
    for u in range(N_USERS):
        pool = np.arange(10) if u < 15 else np.arange(10, 20)
        edges += [(u, i) for i in rng.choice(pool, rng.integers(3, 7), replace=False)]
    return np.array(edges, dtype=np.int64)


@pytest.fixture(scope="session")
def original() -> OriginalModel:
    """LightGCN (dim 8, 3 layers) trained on the two-block graph, frozen."""
    edges = two_block_edges()
    bb = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 8, "layers": 3}, seed=0)
    train_backbone(
        bb,
        edges,
        None,
        N_USERS,
        N_ITEMS,
        lr=0.05,
        batch_size=64,
        epochs=30,
        patience=1,
        eval_every=1,
        ks=(20,),
        seed=0,
        progress=False,
    )
    bb.requires_grad_(False)
    return OriginalModel(bb, edges, N_USERS, N_ITEMS, TRAIN, {"dim": 8, "layers": 3}, 0, torch.device("cpu"))


@pytest.fixture
def count_trainings(monkeypatch):
    """The edge counts of every shard training `sisa.train_shard` (SISA and RecEraser) runs from now on."""
    from recunlearn.unlearning import sisa

    calls = []
    real = sisa.train_shard

    def counting(original, edges, *args):
        calls.append(len(edges))
        return real(original, edges, *args)

    monkeypatch.setattr(sisa, "train_shard", counting)
    return calls


@pytest.fixture(scope="session")
def task_for():
    """`task_for(original, request)`: the task of deleting `request` (any (R, 2) array) from the original."""

    def make(original: OriginalModel, request) -> UnlearningTask:
        request = np.asarray(request, dtype=np.int64).reshape(-1, 2)
        return UnlearningTask(original, request, remove_edges(original.trained_on, request, original.n_items))

    return make


@pytest.fixture(scope="session")
def block_a_request():
    """`block_a_request(original, n=6, seed=1)`: n training edges drawn from block A."""

    def make(original: OriginalModel, n: int = 6, seed: int = 1) -> np.ndarray:
        edges = original.trained_on[original.trained_on[:, 0] < 15]
        return edges[np.random.default_rng(seed).choice(len(edges), n, replace=False)]

    return make
