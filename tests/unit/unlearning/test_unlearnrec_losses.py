"""The four UnlearnRec loss terms against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from recunlearn.backbones import build_backbone
from recunlearn.graph.adjacency import GraphContext
from recunlearn.unlearning.unlearnrec.encoder import InfluenceEncoder
from recunlearn.unlearning.unlearnrec.losses import contrastive_loss, fidelity_loss, preservation_loss, unlearning_loss


def test_unlearning_loss_one_and_two_pairs():
    u = torch.tensor([[1.0, 2.0]])
    i = torch.tensor([[0.5, 0.25]])  # score s = 1
    assert unlearning_loss(u, i).item() == pytest.approx(-math.log(1 / (1 + math.exp(1.0))))  # = log(1 + e)
    u2 = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    i2 = torch.tensor([[0.5, 0.25], [-1.0, 5.0]])  # scores 1 and -3
    expected = 0.5 * (math.log(1 + math.e) + math.log(1 + math.exp(-3.0)))
    assert unlearning_loss(u2, i2).item() == pytest.approx(expected)
    big = unlearning_loss(torch.tensor([[100.0]]), torch.tensor([[100.0]]))
    assert torch.isfinite(big) and big.item() == pytest.approx(1e4)


def test_unlearning_loss_gradient_lowers_the_score():
    u = torch.tensor([[1.0, 2.0]], requires_grad=True)
    i = torch.tensor([[0.5, 0.25]])
    unlearning_loss(u, i).backward()
    # d/du of log(1 + exp(u.i)) = σ(s) i: a gradient step moves u against i, lowering the score
    assert torch.allclose(u.grad, torch.sigmoid(torch.tensor(1.0)) * i)


def test_preservation_loss_by_hand():
    u = torch.tensor([[1.0], [2.0]])
    i = torch.tensor([[1.0], [0.0]])  # logits [[1, 0], [2, 0]]
    ref_u = torch.zeros(2, 1)  # reference logits all 0 -> log-softmax -log 2
    ref_i = torch.ones(2, 1)
    p0 = 1.0 - math.log(math.e + 1.0)  # row 0, diagonal entry 1
    p1 = 0.0 - math.log(math.exp(2.0) + 1.0)  # row 1, diagonal entry 0
    sq = [(p0 + math.log(2.0)) ** 2, (p1 + math.log(2.0)) ** 2]
    assert preservation_loss(u, i, ref_u, ref_i, tau=1.0, reduction="mean").item() == pytest.approx(sum(sq) / 2)
    assert preservation_loss(u, i, ref_u, ref_i, tau=1.0, reduction="sum").item() == pytest.approx(sum(sq))
    # tau divides the logits: tau = 2 on doubled embeddings gives the same value
    assert preservation_loss(2 * u, i, ref_u, ref_i, tau=2.0, reduction="mean").item() == pytest.approx(sum(sq) / 2)
    with pytest.raises(ValueError):
        preservation_loss(u, i, ref_u, ref_i, tau=1.0, reduction="max")


def test_preservation_loss_zero_when_equal_and_no_grad_to_reference():
    torch.manual_seed(0)
    u, i = torch.randn(5, 3), torch.randn(5, 3)
    assert preservation_loss(u, i, u.clone(), i.clone(), tau=0.5, reduction="mean").item() == 0.0
    ref_u = torch.randn(5, 3, requires_grad=True)
    x = u.clone().requires_grad_(True)
    preservation_loss(x, i, ref_u, i, tau=1.0, reduction="mean").backward()
    assert ref_u.grad is None and x.grad is not None and x.grad.abs().sum() > 0


def manual_info_nce(a, b, tau):
    """-mean_k log( exp(cos(a_k, b_k)/tau) / sum_j exp(cos(a_k, b_j)/tau) ), written out row by row."""
    total = 0.0
    for k in range(len(a)):
        # a zero row (a node isolated in the dropped view) has cosine 0 with everything, as F.normalize gives
        cos = [
            float(a[k] @ b[j] / (a[k].norm() * b[j].norm())) if a[k].norm() * b[j].norm() > 0 else 0.0
            for j in range(len(b))
        ]
        total += -(cos[k] / tau - math.log(sum(math.exp(c / tau) for c in cos)))
    return total / len(a)


def test_contrastive_loss_equals_manual_info_nce():
    torch.manual_seed(3)
    enc = InfluenceEncoder(4, 4, 3, layers=2, alpha=0.1, eta_init=0.002, leaky_slope=0.99, freeze_mlp=True)
    with torch.no_grad():
        enc.h0.normal_()
    req = enc.request_graph(np.array([[0, 0], [0, 1], [1, 1], [2, 3], [3, 2], [1, 3]]))
    layers = enc.influence_layers(req)
    drop = req.dropped_adjacency(0.6, torch.Generator().manual_seed(5))
    users, items = torch.tensor([0, 1, 3]), torch.tensor([4, 5, 6])  # local ids: users 0..3, items 4..7
    got = contrastive_loss(layers, drop, [users, items], tau=1.0)
    dense_drop = drop.to_dense()
    expected = 0.0
    for l in (1, 2):
        view_b = dense_drop @ layers[l - 1].detach()
        for idx in (users, items):
            expected += manual_info_nce(layers[l].detach()[idx], view_b[idx], 1.0)
    assert torch.isfinite(got) and got.item() == pytest.approx(expected, rel=1e-5)
    # identical views make every positive the best match: lower than with the dropped view
    same = contrastive_loss(layers, req.adj, [users, items], tau=0.1)
    assert same.item() < contrastive_loss(layers, drop, [users, items], tau=0.1).item()
    assert contrastive_loss(layers, drop, [torch.tensor([], dtype=torch.long)], tau=1.0).item() == 0.0
    got.backward()
    assert enc.h0.grad is not None and enc.h0.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["lightgcn", "sgl", "simgcl"])
def test_fidelity_loss_delegates_to_backbone(name):
    edges = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [1, 2]])
    ctx = GraphContext.from_edges(edges, 3, 3)
    bb = build_backbone(name, 3, 3, {"dim": 4, "layers": 2}, seed=0)
    e0 = bb.embedding.detach() * 1.5
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([2, 0])
    bb.start_epoch(ctx, torch.Generator().manual_seed(0))  # same views / noise stream for both calls
    got, parts = fidelity_loss(bb, e0, ctx, users, pos, neg, final=bb.propagate(e0, ctx.adj))
    bb.start_epoch(ctx, torch.Generator().manual_seed(0))
    ref, ref_parts = bb.loss(e0, ctx, users, pos, neg)
    as_floats = lambda d: {k: float(v) for k, v in d.items()}  # noqa: E731
    assert got.item() == pytest.approx(ref.item()) and as_floats(parts) == pytest.approx(as_floats(ref_parts))
    assert "bpr" in parts and (("ssl" in parts) == (name != "lightgcn"))
