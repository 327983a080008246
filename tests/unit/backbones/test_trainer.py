"""Sampling, deterministic training with early stopping, and checkpoint round-trips."""

import numpy as np
import pytest
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones import trainer as train_mod
from recunlearn.backbones.checkpoint import data_fingerprint, load_checkpoint, save_checkpoint
from recunlearn.backbones.trainer import train_backbone
from recunlearn.errors import DataError
from recunlearn.graph.sampling import BPRSampler

N_USERS, N_ITEMS = 40, 50


def split_graph(seed=0):
    rng = np.random.default_rng(seed)
    # two taste groups so the model can learn something in a few epochs
    users = rng.integers(0, N_USERS, 1200)
    items = (users % 2) * 25 + rng.integers(0, 25, 1200)
    edges = np.unique(np.stack([users, items], 1), axis=0)
    rng.shuffle(edges)
    return edges[: int(0.8 * len(edges))], edges[int(0.8 * len(edges)) :]


def test_sampler_never_returns_a_positive_and_is_deterministic():
    rng = np.random.default_rng(0)
    n_users, n_items = 6, 8
    dense = rng.random((n_users, n_items)) < 0.8  # dense graph: most draws are rejected
    dense[:, 0] = False  # every user keeps at least one negative
    edges = np.argwhere(dense)
    positives = set(map(tuple, edges.tolist()))
    seen = []
    for _ in range(2):
        s = BPRSampler(edges, n_users, n_items, seed=7)
        run = [tuple(t.clone() for t in b) for _ in range(3) for b in s.epoch(batch_size=5)]
        seen.append(run)
        for users, pos, neg in run:
            assert all((u, p) in positives for u, p in zip(users.tolist(), pos.tolist()))
            assert not any((u, n) in positives for u, n in zip(users.tolist(), neg.tolist()))
    assert all(torch.equal(a, b) for ra, rb in zip(*seen) for a, b in zip(ra, rb))
    epoch = list(BPRSampler(edges, n_users, n_items, seed=7).epoch(5))
    assert sorted(zip(torch.cat([b[0] for b in epoch]).tolist(), torch.cat([b[1] for b in epoch]).tolist())) == sorted(
        positives
    )
    other = list(BPRSampler(edges, n_users, n_items, seed=8).epoch(5))
    assert not all(torch.equal(a[2], b[2]) for a, b in zip(epoch, other))


def test_sampler_rejects_user_with_every_item():
    edges = np.array([[0, 0], [0, 1], [1, 0]])
    with pytest.raises(DataError):
        BPRSampler(edges, 2, 2)


def _train(name="lightgcn", **kw):
    train, valid = split_graph()
    m = build_backbone(name, N_USERS, N_ITEMS, {"dim": 8, "layers": 2}, seed=0)
    args = dict(
        lr=0.01, batch_size=128, epochs=4, patience=10, eval_every=1, ks=(20,), seed=3, device="cpu", progress=False
    )
    args.update(kw)
    return m, train_backbone(m, train, valid, N_USERS, N_ITEMS, **args)


@pytest.mark.parametrize("name", ["lightgcn", "sgl", "simgcl"])
def test_training_is_deterministic(name):
    m1, r1 = _train(name, epochs=2)
    m2, r2 = _train(name, epochs=2)
    assert torch.equal(m1.embedding, m2.embedding)
    assert [h["loss"] for h in r1.history] == [h["loss"] for h in r2.history]
    m3, _ = _train(name, epochs=2, seed=4)
    assert not torch.equal(m1.embedding, m3.embedding)


def test_training_learns_and_logs(tmp_path):
    log = tmp_path / "logs" / "train.log"
    m, r = _train(epochs=6, log_path=log)
    assert r.history[-1]["loss"] < r.history[0]["loss"]
    assert r.best_valid["recall@20"] > 0 and 0 < r.seconds_to_best <= r.seconds_total
    assert {"epoch", "bpr", "l2", "loss", "recall@20", "ndcg@20", "seconds"} <= set(r.history[0])
    text = log.read_text()
    assert "best epoch" in text and text.count("epoch {") == 6


def _fake_checks(monkeypatch, recalls) -> dict:
    """Make the validation checks return `recalls` in turn; the returned dict fills with each check's table."""
    fake = iter(recalls)
    snapshots = {}

    def fake_validate(backbone, ctx, valid_edges, ks):
        snapshots[len(snapshots) + 1] = backbone.embedding.detach().clone()
        return {"recall@20": next(fake), "ndcg@20": 0.0}

    monkeypatch.setattr(train_mod, "_validate", fake_validate)
    return snapshots


def test_early_stopping_restores_best_epoch(monkeypatch):
    snapshots = _fake_checks(monkeypatch, [0.1, 0.5, 0.3, 0.2, 0.4, 0.9])
    m, r = _train(epochs=6, patience=2)
    assert r.best_epoch == 2 and r.best_valid["recall@20"] == 0.5
    assert len(r.history) == 4  # epochs 3 and 4 did not improve: stop
    assert torch.equal(m.embedding, snapshots[2])
    assert not torch.equal(m.embedding, snapshots[4])


def test_min_delta_ignores_small_gains(monkeypatch):
    """A creeping plateau (gains of 0.001 < min_delta) stops the training; the best check seen is kept."""
    creeping = [0.1, 0.5, 0.501, 0.499, 0.503, 0.9]
    snapshots = _fake_checks(monkeypatch, creeping)
    m, r = _train(epochs=6, patience=2, min_delta=0.005)
    assert r.best_epoch == 3 and r.best_valid["recall@20"] == 0.501
    assert len(r.history) == 4  # epochs 3 and 4 gained less than 0.005 over epoch 2: stop
    assert torch.equal(m.embedding, snapshots[3])
    _fake_checks(monkeypatch, creeping)
    _, r0 = _train(epochs=6, patience=2)  # without a threshold every gain counts and training goes on
    assert r0.best_epoch == 6 and len(r0.history) == 6


def test_checkpoint_round_trip(tmp_path):
    train, _ = split_graph()
    m = build_backbone("sgl", N_USERS, N_ITEMS, {"dim": 8, "layers": 2, "ssl_weight": 0.05}, seed=2)
    with torch.no_grad():
        m.embedding.add_(1.0)
    meta = {"fingerprint": data_fingerprint(train), "metrics": {"recall@20": 0.1}, "config": {"lr": 1e-3}}
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(path, m, meta)
    loaded, got = load_checkpoint(path, device="cpu")
    assert type(loaded) is type(m) and loaded.settings == m.settings and loaded.layers == 2
    assert torch.equal(loaded.embedding, m.embedding)
    assert got["fingerprint"] == meta["fingerprint"] and got["metrics"] == meta["metrics"]
    assert got["backbone"]["name"] == "sgl"
    assert data_fingerprint(train.astype(np.int32)) == meta["fingerprint"]
    assert data_fingerprint(train[1:]) != meta["fingerprint"]
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError):
        load_checkpoint(path)
