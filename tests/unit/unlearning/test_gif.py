"""GIF: one graph-influence step, its gradient, Hessian-vector product and both solvers (CG, GIF's LiSSA) checked
against exact oracles."""

import numpy as np
import pytest
import torch

from recunlearn.backbones.lightgcn import LightGCN
from recunlearn.config import method_settings
from recunlearn.errors import ConfigError
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.unlearning import METHODS, _influence, build_method, gif


def test_registered_and_unknown_keys_refused():
    assert METHODS["gif"] is gif.GIF
    assert isinstance(build_method("gif"), gif.GIF)
    assert build_method("gif").settings == method_settings("gif")
    with pytest.raises(ConfigError, match="unknown key 'method_settings.gif.epoch'"):
        build_method("gif", {"epoch": 3})


@pytest.mark.parametrize(
    "settings",
    [
        {"hessian_graph": "both"},
        {"damping": -0.1},
        {"curvature": "diag"},
        {"cg_max_iter": "many"},
        {"solver": "newton"},
        {"lissa_scale": 0},
        {"lissa_damping": 1.5},
    ],
)
def test_bad_setting_values_refused(settings):
    with pytest.raises(ConfigError, match="method_settings.gif"):
        build_method("gif", settings)


def small_problem(layers=1, l2=0.05, seed=0, dtype=torch.float64):
    """A 6 x 5 graph, dim 3, float64: small enough for a dense Hessian."""
    edges = np.array(
        [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [3, 3], [3, 4], [4, 4], [4, 0], [5, 0], [5, 2], [0, 3], [2, 4]]
    )
    backbone = LightGCN(6, 5, dim=3, layers=layers, l2=l2, readout="sum", seed=seed)
    neg = _influence.fixed_negatives(edges, 6, 5, seed=seed)
    theta = backbone.embedding.detach().to(dtype)
    return backbone, edges, neg, theta


def dense_hessian(backbone, theta, adj, edges, neg):
    t = torch.as_tensor
    fn = lambda x: _influence.bpr_l2_sum(backbone, x.view_as(theta), adj, t(edges[:, 0]), t(edges[:, 1]), t(neg))  # noqa: E731
    return torch.autograd.functional.hessian(fn, theta.flatten().clone())


def test_gif_gradient_and_hvp_match_autograd_and_cg_matches_dense_solve():
    backbone, edges, neg, theta = small_problem(layers=2)
    adj = normalized_adjacency(edges, 6, 5).to(torch.float64)
    t = torch.as_tensor
    obj = _influence.BPRObjective(backbone, adj, t(edges[:, 0]), t(edges[:, 1]), t(neg), theta)
    x = theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_influence.bpr_l2_sum(backbone, x, adj, t(edges[:, 0]), t(edges[:, 1]), t(neg)), x)
    assert torch.allclose(obj.gradient(), grad, atol=1e-12)
    h = dense_hessian(backbone, theta, adj, edges, neg)
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(obj.hvp(v).flatten(), h @ v.flatten(), atol=1e-10)
    # damping large enough to make H + λI positive definite (BPR's H alone need not be)
    lam = max(0.0, -float(torch.linalg.eigvalsh(h).min())) + 0.5
    b = obj.gradient()
    x_cg, info = _influence.conjugate_gradient(lambda z: obj.hvp(z) + lam * z, b, tol=1e-12, max_iter=200)
    x_direct = torch.linalg.solve(h + lam * torch.eye(len(h), dtype=h.dtype), b.flatten())
    assert info["reason"] == "converged"
    assert torch.allclose(x_cg.flatten(), x_direct, atol=1e-8)


def test_cg_on_an_indefinite_matrix_stops_or_stays_in_the_trust_region():
    a = torch.diag(torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64))
    b = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    _, info = _influence.conjugate_gradient(lambda z: a @ z, b, tol=1e-12, max_iter=10)
    assert info["reason"] == "negative_curvature"
    x, info = _influence.conjugate_gradient(lambda z: a @ z, b, tol=1e-12, max_iter=10, radius=0.5)
    assert info["reason"] in ("negative_curvature", "trust_radius")
    assert float(x.norm()) == pytest.approx(0.5)


def test_lissa_is_gifs_truncated_neumann_series_and_converges_to_the_solve():
    """On a positive-definite A: T steps give Σ_{k<=T} M^k b / scale with M = I - (A + damp·scale I) / scale; many
    steps give (A + damp·scale I)^{-1} b; with scale below half the largest eigenvalue the series grows instead."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(0.5, 10.0, 8, dtype=torch.float64)) @ q.T
    b = torch.randn(8, generator=gen, dtype=torch.float64)
    scale, damp = 10.0, 0.01
    m = torch.eye(8, dtype=torch.float64) - (a + damp * scale * torch.eye(8, dtype=torch.float64)) / scale
    x, info = _influence.lissa(lambda v: a @ v, b, 2, scale, damp)
    assert torch.allclose(x, (b + m @ b + m @ m @ b) / scale, atol=1e-14) and info["reason"] == "lissa"
    x, info = _influence.lissa(lambda v: a @ v, b, 2000, scale, damp)
    exact = torch.linalg.solve(a + damp * scale * torch.eye(8, dtype=torch.float64), b)
    assert torch.allclose(x, exact, atol=1e-10) and info["relative_residual"] < 1e-10
    assert info["effective_damping"] == pytest.approx(0.1)
    _, short = _influence.lissa(lambda v: a @ v, b, 10, 2.0, 0.0)  # 10 > (2 - 0) x 2: the largest mode grows
    _, longer = _influence.lissa(lambda v: a @ v, b, 20, 2.0, 0.0)
    assert longer["relative_residual"] > short["relative_residual"] > 1


def test_gif_lissa_solver_matches_the_dense_solve_on_the_graph():
    """`solver: lissa` on GIF's own objective: the step is -(H + damp·scale I)^{-1} g of the dense Hessian, once
    damp·scale lifts every eigenvalue above 0 and scale exceeds half the largest; the trust region plays no part."""
    backbone, edges, neg, theta = small_problem(layers=2)
    keep = np.arange(len(edges)) != 4
    adj = normalized_adjacency(edges, 6, 5).to(torch.float64)
    adj_r = normalized_adjacency(edges[keep], 6, 5).to(torch.float64)
    h = dense_hessian(backbone, theta, adj, edges, neg)
    eig = torch.linalg.eigvalsh(h)
    scale = float(eig.max())
    damp = (max(0.0, -float(eig.min())) + 0.5) / scale
    t = torch.as_tensor
    g = _influence.BPRObjective(backbone, adj_r, t(edges[keep, 0]), t(edges[keep, 1]), t(neg[keep]), theta).gradient()
    g = g - _influence.BPRObjective(backbone, adj, t(edges[:, 0]), t(edges[:, 1]), t(neg), theta).gradient()
    expected = -torch.linalg.solve(h + damp * scale * torch.eye(len(h), dtype=h.dtype), g.flatten())
    lissa = {"solver": "lissa", "lissa_iterations": 3000, "lissa_scale": scale, "lissa_damping": damp}
    settings = {**method_settings("gif"), **lissa, "trust_radius": 1e-6}
    updated, _, info = gif.influence_update(backbone, theta, edges, neg, keep, settings)
    assert info["solver"] == "lissa" and info["relative_residual"] < 1e-10
    assert torch.allclose((updated - theta).flatten(), expected, atol=1e-9)


def test_gif_lissa_with_the_official_defaults_runs_on_the_tiny_graph(clustered):
    out = clustered.run("gif", {"solver": "lissa"})["gif"]
    assert out.info["reason"] == "lissa" and out.info["iterations"] == 5 and out.info["step_norm"] > 0
    assert np.isfinite(out.info["relative_residual"])


def _minimise(backbone, theta0, adj, edges, neg):
    """The exact (local) optimum of the summed BPR + L2 objective from theta0, by full-batch L-BFGS in float64."""
    t = torch.as_tensor
    x = theta0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1,
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = _influence.bpr_l2_sum(backbone, x, adj, t(edges[:, 0]), t(edges[:, 1]), t(neg))
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return x.detach()


def test_influence_step_matches_exact_removal_on_a_convex_problem():
    """L2-regularised logistic regression, losses SUMMED as in GIF: removing 2 of 300 points moves the optimum by
    O(1/n); one step -H^{-1} g from the old optimum lands within a few percent of the exact new optimum, and with
    the new objective's Hessian (a true Newton step) closer still."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=gen, dtype=torch.float64)
    y = torch.sign(
        x @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
        + torch.randn(300, generator=gen, dtype=torch.float64)
    )
    keep = torch.ones(300, dtype=torch.bool)
    keep[:2] = False

    def loss(w, rows):
        return torch.nn.functional.softplus(-y[rows] * (x[rows] @ w)).sum() + 0.5 * w.pow(2).sum()

    def grad(w, rows):
        return torch.autograd.functional.jacobian(lambda v: loss(v, rows), w)

    def hvp(w, rows):
        return lambda v: torch.autograd.functional.hvp(lambda z: loss(z, rows), w, v)[1]

    def optimum(rows):
        w = torch.zeros(4, dtype=torch.float64)
        for _ in range(30):  # Newton's method: converges to machine precision on this strongly convex loss
            w = w - torch.linalg.solve(torch.autograd.functional.hessian(lambda z: loss(z, rows), w), grad(w, rows))
        return w

    everything = torch.ones(300, dtype=torch.bool)
    w_star, w_new = optimum(everything), optimum(keep)
    g = grad(w_star, keep) - grad(w_star, everything)
    moved = float((w_new - w_star).norm())
    step, info = _influence.influence_step(g, hvp(w_star, everything), 0.0, 1e-12, 50)
    assert info["reason"] == "converged"
    assert float((w_star + step - w_new).norm()) < 0.05 * moved
    newton, _ = _influence.influence_step(g, hvp(w_star, keep), 0.0, 1e-12, 50)
    assert float((w_star + newton - w_new).norm()) < 0.01 * moved


def test_gif_neighbour_term_tracks_the_retrained_graph_optimum():
    """On the graph model at a strict local minimum (strong L2), for single-edge deletions: GIF's step lands much
    closer to the retrained optimum than the classic influence function, which keeps propagating on the ORIGINAL
    graph and so misses the neighbours whose representations change.

    Inner-product scores and an isotropic L2 are invariant under rotating every embedding (θ -> θQ), so H has
    d(d-1)/2 zero eigenvalues and optima are orbits: models are compared by their score matrices."""
    backbone, edges, neg, theta = small_problem(layers=1, l2=0.3)
    d = theta.shape[1]
    adj = normalized_adjacency(edges, 6, 5).to(torch.float64)
    star = _minimise(backbone, theta, adj, edges, neg)
    eig = torch.linalg.eigvalsh(dense_hessian(backbone, star, adj, edges, neg))
    n_rot = d * (d - 1) // 2
    assert eig[:n_rot].abs().max() < 1e-6 and eig[n_rot] > 0.05  # flat only along rotations: a strict minimum
    settings = {**method_settings("gif"), "damping": 1e-6, "cg_tol": 1e-10, "cg_max_iter": 500, "trust_radius": 0.0}
    t = torch.as_tensor
    full = _influence.BPRObjective(backbone, adj, t(edges[:, 0]), t(edges[:, 1]), t(neg), star)
    gif_errors, classic_errors = [], []
    for deleted in range(3):
        keep = np.arange(len(edges)) != deleted
        adj_r = normalized_adjacency(edges[keep], 6, 5).to(torch.float64)
        retrained = _minimise(backbone, star, adj_r, edges[keep], neg[keep])

        def scores(x, adj_r=adj_r):
            users, items = backbone.split(backbone.propagate(x, adj_r))
            return users @ items.T

        def error(x, retrained=retrained):
            return float((scores(x) - scores(retrained)).norm() / (scores(retrained) - scores(star)).norm())

        updated, adj_out, info = gif.influence_update(backbone, star, edges, neg, keep, settings)
        assert info["reason"] == "converged", info
        assert torch.equal(adj_out.to_dense(), adj_r.to_dense())
        gif_errors.append(error(updated))
        dropped = _influence.BPRObjective(backbone, adj, t(edges[keep, 0]), t(edges[keep, 1]), t(neg[keep]), star)
        step, _ = _influence.influence_step(dropped.gradient() - full.gradient(), full.hvp, 1e-6, 1e-10, 500)
        classic_errors.append(error(star + step))
    assert np.mean(gif_errors) < 0.5 and all(g < c for g, c in zip(gif_errors, classic_errors)), (
        gif_errors,
        classic_errors,
    )
    # L_r's own Hessian at θ* is indefinite along the rotations (θ* does not minimise L_r): pure CG stops there
    _, _, info = gif.influence_update(backbone, star, edges, neg, keep, {**settings, "hessian_graph": "remaining"})
    assert info["reason"] == "negative_curvature"


def test_gif_lowers_deleted_scores_on_the_tiny_graph(clustered):
    none = clustered.run("none")["none"]
    out = clustered.run("gif")["gif"]
    assert out.info["step_norm"] > 0
    assert out.info["step_norm"] <= 0.1 * out.info["table_norm"] * (1 + 1e-5)  # the default trust region
    d_gif = clustered.deleted_mean(out.user_emb, out.item_emb)
    assert d_gif < clustered.deleted_mean(none.user_emb, none.item_emb) < clustered.original_deleted_mean()
    assert set(out.timings) == {"setup_s", "solve_s", "propagate_s"}


def test_gif_refuses_a_backbone_that_does_not_propagate_linearly():
    class Squashed(LightGCN):
        def propagate(self, e0, adj):
            return torch.tanh(super().propagate(e0, adj))

    backbone = Squashed(6, 5, dim=3, layers=1, l2=1e-4, readout="sum", seed=0)
    adj = normalized_adjacency(small_problem()[1], 6, 5)
    with pytest.raises(ConfigError, match="linearly"):
        _influence.check_linear_symmetric(backbone, adj, backbone.embedding.detach())
