"""Normalised adjacency and propagation against torch_geometric's LightGCN, and the custom backward."""

import numpy as np
import pytest
import torch

from recunlearn.backbones import build_backbone
from recunlearn.errors import DataError
from recunlearn.graph.adjacency import GraphContext, normalized_adjacency, propagate

N_USERS, N_ITEMS = 7, 9


def tiny_edges(seed=0, n=25):
    rng = np.random.default_rng(seed)
    e = np.stack([rng.integers(0, N_USERS - 1, n), rng.integers(0, N_ITEMS - 1, n)], 1)
    return np.unique(e, axis=0)  # user N_USERS-1 and item N_ITEMS-1 stay isolated


def edge_index(edges):
    u = torch.from_numpy(edges[:, 0])
    i = torch.from_numpy(edges[:, 1]) + N_USERS
    return torch.stack([torch.cat([u, i]), torch.cat([i, u])])


def test_adjacency_matches_definition_and_isolated_rows_are_zero():
    edges = tiny_edges()
    adj = normalized_adjacency(edges, N_USERS, N_ITEMS).to_dense()
    a = torch.zeros(N_USERS + N_ITEMS, N_USERS + N_ITEMS)
    a[edges[:, 0], edges[:, 1] + N_USERS] = 1
    a = a + a.T
    deg = a.sum(1)
    dinv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    assert torch.allclose(adj, dinv[:, None] * a * dinv[None, :], atol=1e-6)
    assert torch.isfinite(adj).all()
    assert adj[N_USERS - 1].abs().sum() == 0 and adj[-1].abs().sum() == 0
    assert torch.equal(adj, adj.T)


def test_duplicate_edges_count_once_and_bad_ids_raise():
    edges = tiny_edges()
    twice = np.concatenate([edges, edges[:3]])
    assert torch.equal(
        normalized_adjacency(twice, N_USERS, N_ITEMS).to_dense(),
        normalized_adjacency(edges, N_USERS, N_ITEMS).to_dense(),
    )
    with pytest.raises(DataError):
        normalized_adjacency(np.array([[0, N_ITEMS]]), N_USERS, N_ITEMS)


@pytest.mark.parametrize("readout", ["sum", "mean"])
def test_propagation_equals_torch_geometric_lightgcn(readout):
    from torch_geometric.nn.models import LightGCN as PygLightGCN

    edges = tiny_edges(1)
    ours = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 8, "layers": 3, "readout": readout}, seed=3)
    alpha = torch.ones(4) if readout == "sum" else None  # None = 1/(L+1): the mean
    pyg = PygLightGCN(N_USERS + N_ITEMS, 8, 3, alpha=alpha)
    with torch.no_grad():
        pyg.embedding.weight.copy_(ours.embedding)
    adj = normalized_adjacency(edges, N_USERS, N_ITEMS)
    expected = pyg.get_embedding(edge_index(edges))
    assert torch.allclose(ours(adj), expected, atol=1e-5)


def test_single_layer_equals_lgconv():
    from torch_geometric.nn import LGConv

    edges = tiny_edges(2)
    x = torch.randn(N_USERS + N_ITEMS, 5)
    adj = normalized_adjacency(edges, N_USERS, N_ITEMS)
    assert torch.allclose(propagate(adj, x), LGConv()(x, edge_index(edges)), atol=1e-5)


def test_custom_backward_equals_dense_autograd():
    edges = tiny_edges(3)
    adj = normalized_adjacency(edges, N_USERS, N_ITEMS)
    x = torch.randn(N_USERS + N_ITEMS, 4, requires_grad=True)
    w = torch.randn(N_USERS + N_ITEMS, 4)
    (propagate(adj, propagate(adj, x)) * w).sum().backward()
    g_ours = x.grad.clone()
    x.grad = None
    dense = adj.to_dense()
    (dense @ (dense @ x) * w).sum().backward()
    assert torch.allclose(g_ours, x.grad, atol=1e-5)


def test_dropped_adjacency_is_renormalised_and_seeded():
    ctx = GraphContext.from_edges(tiny_edges(4, 40), N_USERS, N_ITEMS)
    assert torch.allclose(ctx.dropped_adjacency(1.0, torch.Generator().manual_seed(0)).to_dense(), ctx.adj.to_dense())
    d1 = ctx.dropped_adjacency(0.5, torch.Generator().manual_seed(0)).to_dense()
    d2 = ctx.dropped_adjacency(0.5, torch.Generator().manual_seed(0)).to_dense()
    assert torch.equal(d1, d2) and torch.equal(d1, d1.T)
    assert (d1 != 0).sum() < (ctx.adj.to_dense() != 0).sum()
    kept = d1[:N_USERS, N_USERS:] != 0
    deg_u, deg_i = kept.sum(1).float(), kept.sum(0).float()
    expect = kept / (deg_u.clamp(min=1).sqrt()[:, None] * deg_i.clamp(min=1).sqrt()[None, :])
    assert torch.allclose(d1[:N_USERS, N_USERS:], expect, atol=1e-6)
    assert ctx.user_items.shape == (N_USERS, N_ITEMS) and ctx.user_items.nnz == len(ctx.edges)
