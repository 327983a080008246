"""Each backbone: its settings from its fragment, a finite, decreasing loss; SSL present where expected;
propagation from any (e0, adj)."""

import inspect

import numpy as np
import pytest
import torch

from recunlearn import components
from recunlearn.backbones import BACKBONES, Backbone, build_backbone
from recunlearn.backbones.base import apply_readout, layer_stack
from recunlearn.errors import ConfigError
from recunlearn.graph.adjacency import GraphContext

N_USERS, N_ITEMS = 20, 30


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(0)
    edges = np.unique(np.stack([rng.integers(0, N_USERS, 200), rng.integers(0, N_ITEMS, 200)], 1), axis=0)
    return GraphContext.from_edges(edges, N_USERS, N_ITEMS)


def batch(ctx, seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.from_numpy(ctx.edges)
    return e[:, 0], e[:, 1], torch.randint(0, N_ITEMS, (len(e),), generator=g)


def test_registry_builds_all_three_and_rejects_unknown():
    assert set(BACKBONES) >= {"lightgcn", "sgl", "simgcl"}
    for name in ("lightgcn", "sgl", "simgcl"):
        m = build_backbone(name, N_USERS, N_ITEMS, {"dim": 8, "layers": 2}, seed=1)
        assert isinstance(m, Backbone) and m.name == name
        assert [n for n, _ in m.named_parameters()] == ["embedding"]
        assert m.embedding.shape == (N_USERS + N_ITEMS, 8)
    with pytest.raises(ValueError, match="lightgcn"):
        build_backbone("nope", N_USERS, N_ITEMS, {}, seed=0)
    with pytest.raises(ConfigError, match="unknown key 'backbone_settings.lightgcn.ssl_weight'"):
        build_backbone("lightgcn", N_USERS, N_ITEMS, {"ssl_weight": 0.1}, seed=0)
    with pytest.raises(ConfigError, match="backbone_settings.sgl.keep: 0 is less than or equal to the minimum of 0"):
        build_backbone("sgl", N_USERS, N_ITEMS, {"keep": 0}, seed=0)


def test_registry_and_fragments_name_the_same_backbones():
    assert set(BACKBONES) == set(components.names("backbones"))


@pytest.mark.parametrize("name", ["lightgcn", "sgl", "simgcl"])
def test_settings_are_required_keywords_and_explicit_attributes(name):
    """No default in the constructor: every fragment key is a keyword-only parameter without one, and each
    setting is an attribute of the instance; `settings` holds the backbone's own keys in fragment order."""
    params = inspect.signature(BACKBONES[name].__init__).parameters
    keys = list(components.defaults("backbones", name))
    for key in keys:
        assert params[key].kind is inspect.Parameter.KEYWORD_ONLY and params[key].default is inspect.Parameter.empty
    overrides = {
        "dim": 8,
        "layers": 1,
        "l2": 0.5,
        **({"keep": 0.5} if name == "sgl" else {}),
        **({"eps": 0.3} if name == "simgcl" else {}),
    }
    m = build_backbone(name, N_USERS, N_ITEMS, overrides, seed=0)
    full = components.backbone_settings(name, overrides)
    assert all(getattr(m, key) == value for key, value in full.items())
    assert list(m.settings) == [k for k in keys if k not in ("dim", "layers", "l2")]
    assert m.config()["settings"] == {k: full[k] for k in m.settings}


def test_init_is_seeded_xavier():
    a = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 8}, seed=5).embedding
    b = build_backbone("sgl", N_USERS, N_ITEMS, {"dim": 8}, seed=5).embedding
    c = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 8}, seed=6).embedding
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a[:N_USERS].abs().max() <= (6 / (N_USERS + 8)) ** 0.5


def test_readouts_follow_the_spec(graph):
    e0 = torch.randn(N_USERS + N_ITEMS, 4)
    stack = layer_stack(e0, graph.adj, 3)
    expect = {
        "lightgcn": apply_readout(stack, "sum"),
        "sgl": torch.stack(stack).mean(0),
        "simgcl": torch.stack(stack[1:]).mean(0),
    }
    for name, want in expect.items():
        m = build_backbone(name, N_USERS, N_ITEMS, {"dim": 4}, seed=0)
        assert torch.allclose(m.propagate(e0, graph.adj), want, atol=1e-6)
    assert torch.allclose(expect["lightgcn"], sum(stack), atol=1e-6)


@pytest.mark.parametrize("name", ["lightgcn", "sgl", "simgcl"])
def test_loss_finite_decreasing_with_ssl(name, graph):
    m = build_backbone(name, N_USERS, N_ITEMS, {"dim": 16}, seed=0)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    users, pos, neg = batch(graph)
    m.start_epoch(graph, torch.Generator().manual_seed(0))
    losses = []
    for _ in range(15):
        loss, parts = m.loss(m.embedding, graph, users, pos, neg)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(parts["loss"]))
    assert losses[-1] < losses[0]
    assert {"bpr", "l2", "loss"} <= set(parts)
    # the parts stay detached tensors on the loss's device: reading them is the caller's, once per epoch
    assert all(v.dim() == 0 and not v.requires_grad and v.device == loss.device for v in parts.values())
    parts = {k: float(v) for k, v in parts.items()}
    assert ("ssl" in parts) == (name != "lightgcn")
    if name != "lightgcn":
        assert parts["ssl"] > 0
        assert parts["loss"] == pytest.approx(parts["bpr"] + parts["l2"] + parts["ssl"], rel=1e-5)


@pytest.mark.parametrize("name", ["lightgcn", "sgl", "simgcl"])
def test_loss_and_propagation_use_the_given_e0_and_adj(name, graph):
    m = build_backbone(name, N_USERS, N_ITEMS, {"dim": 8}, seed=0)
    other = torch.nn.Parameter(torch.randn(N_USERS + N_ITEMS, 8))
    sub = GraphContext.from_edges(graph.edges[::2], N_USERS, N_ITEMS)
    assert not torch.allclose(m.propagate(other, sub.adj), m.propagate(other, graph.adj))
    assert not torch.allclose(m.propagate(other, sub.adj), m(sub.adj))
    # a graph the backbone never saw in start_epoch (SGL must draw its views lazily from it)
    loss, _ = m.loss(other, sub, *batch(sub))
    loss.backward()
    assert other.grad is not None and other.grad.abs().sum() > 0
    assert m.embedding.grad is None


def test_score_and_split(graph):
    m = build_backbone("lightgcn", N_USERS, N_ITEMS, {"dim": 8}, seed=0)
    final = m(graph.adj)
    u, i = m.split(final)
    users, items = torch.tensor([0, 3]), torch.tensor([5, 1])
    assert torch.allclose(m.score(final, users, items), (u[users] * i[items]).sum(1))


def test_sgl_views_are_dropped_versions_of_the_context(graph):
    m = build_backbone("sgl", N_USERS, N_ITEMS, {"dim": 8, "keep": 0.5}, seed=0)
    m.start_epoch(graph, torch.Generator().manual_seed(0))
    full = graph.adj.to_dense() != 0
    for view in m._views:
        nz = view.to_dense() != 0
        assert nz.sum() < full.sum() and not (nz & ~full).any()
