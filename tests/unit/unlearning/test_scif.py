"""SCIF: only the selected rows of E0 move, the step is the restricted Newton step of the relabelled (or the
deletion) objective, it tracks that objective's exact restricted optimum, and the collaborative correction matters."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recunlearn.backbones.lightgcn import LightGCN
from recunlearn.config import method_settings
from recunlearn.errors import ConfigError, RequestError
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.unlearning import METHODS, _influence, _influence_solver, build_method, scif
from recunlearn.unlearning.base import UnlearningTask

EDGES = np.array(
    [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [3, 3], [3, 4], [4, 4], [4, 0], [5, 0], [5, 2], [0, 3], [2, 4]]
)
N_USERS, N_ITEMS, DIM = 6, 5, 3
EXACT = {"solver": "cg", "damping": 0.0, "cg_tol": 1e-12, "cg_max_iter": 500, "trust_radius": 0.0}
CG = {"solver": "cg"}  # the clustered tests of the step itself: no validation pairs, no Adam budget


def test_registered_defaults_and_bad_values_refused():
    assert METHODS["scif"] is scif.SCIF
    assert build_method("scif").settings == method_settings("scif")
    with pytest.raises(ConfigError, match="unknown key 'method_settings.scif.k_hop'"):
        build_method("scif", {"k_hop": 1})
    for bad in ({"update_rows": "neighbours"}, {"collaborative": "yes"}, {"trust_radius": -1}):
        with pytest.raises(ConfigError, match="method_settings.scif"):
            build_method("scif", bad)


def test_soft_labels_fall_back_from_user_to_item_to_no_information():
    # triplets: user 0 keeps two (σ 0.6, 0.8); user 1 keeps none, its item 1 is kept by user 0 (σ 0.8);
    # user 2 keeps none and its item 2 is kept by nobody
    sigma = torch.tensor([0.6, 0.8, 0.1, 0.3, 0.2], dtype=torch.float64)
    users, pos = torch.tensor([0, 0, 0, 1, 2]), torch.tensor([0, 1, 2, 1, 2])
    keep = torch.tensor([True, True, False, False, False])
    labels = scif.soft_labels(sigma, users, pos, keep, 3, 3)
    assert torch.allclose(labels, torch.tensor([0.7, 0.8, scif.NO_INFORMATION], dtype=torch.float64))


def at_a_minimum(l2=0.3, seed=0):
    """The 6 x 5 graph, LightGCN (1 layer, dim 3) at a strict local minimum of its summed BPR + L2, float64."""
    backbone = LightGCN(N_USERS, N_ITEMS, dim=DIM, layers=1, l2=l2, readout="sum", seed=seed)
    neg = _influence.fixed_negatives(EDGES, N_USERS, N_ITEMS, seed=seed)
    adj = normalized_adjacency(EDGES, N_USERS, N_ITEMS).to(torch.float64)
    star = minimise(lambda x: full_loss(backbone, x, adj, neg), backbone.embedding.detach().to(torch.float64))
    return backbone, neg, adj, star


def minimise(loss, theta0, free=None):
    """The (local) minimiser of `loss` from theta0 by full-batch L-BFGS, moving only the rows `free` (all if None)."""
    rows = torch.arange(len(theta0)) if free is None else torch.as_tensor(free)
    part = theta0[rows].clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [part], lr=1, max_iter=500, tolerance_grad=1e-13, tolerance_change=1e-16, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        theta = theta0.index_put((rows,), part)
        value = loss(theta)
        value.backward()
        return value

    for _ in range(5):
        opt.step(closure)
    return theta0.index_put((rows,), part.detach())


def margins(backbone, theta, adj, neg, which):
    f = backbone.propagate(theta, adj)
    u, i, j = (torch.as_tensor(a[which]) for a in (EDGES[:, 0], EDGES[:, 1], neg))
    return (f[u] * (f[N_USERS + i] - f[N_USERS + j])).sum(-1), torch.cat([u, N_USERS + i, N_USERS + j])


def full_loss(backbone, theta, adj, neg, keep=None, labels=None):
    """Summed BPR + L2 written out independently of scif.py: the kept triplets with label 1, the others dropped
    (labels None) or kept with soft labels (binary cross-entropy of the margin)."""
    keep = np.ones(len(EDGES), dtype=bool) if keep is None else keep
    m, rows = margins(backbone, theta, adj, neg, keep)
    value = F.softplus(-m).sum() + backbone.l2 * 0.5 * theta[rows].pow(2).sum()
    if labels is not None:
        m, rows = margins(backbone, theta, adj, neg, ~keep)
        value = value + F.binary_cross_entropy_with_logits(m, labels, reduction="sum")
        value = value + backbone.l2 * 0.5 * theta[rows].pow(2).sum()
    return value


def mean_labels(backbone, star, adj, neg, keep):
    """SCIF's labels by hand: each deleted edge's user's mean σ(m) over its kept edges, else its item's."""
    sigma = torch.sigmoid(margins(backbone, star, adj, neg, np.ones(len(EDGES), dtype=bool))[0])
    out = []
    for e in np.flatnonzero(~keep):
        same_user = keep & (EDGES[:, 0] == EDGES[e, 0])
        same = same_user if same_user.any() else keep & (EDGES[:, 1] == EDGES[e, 1])
        out.append(sigma[torch.as_tensor(same)].mean())
    return torch.stack(out)


REQUEST = np.array([[0, 1], [5, 0], [5, 2]])  # user 5 loses every edge: its labels fall back to the items'
SMALL = np.array([[0, 1], [2, 3]])  # two users keep most of their edges: a small change of objective


def deletion(collaborative, request=REQUEST):
    keep = ~(EDGES[:, None] == request[None]).all(-1).any(-1)
    settings = {**method_settings("scif"), **EXACT, "collaborative": collaborative}
    return keep, settings


@pytest.mark.parametrize("collaborative", [True, False])
def test_step_is_the_exact_newton_step_restricted_to_the_selected_rows(collaborative):
    """Against a dense oracle: Δθ_S = -(H_SS)^{-1} ∇_S ΔL, H the original objective's Hessian, ΔL the change of
    objective (relabelled, or deleted), all by autograd on an independently written loss."""
    backbone, neg, adj, star = at_a_minimum()
    keep, settings = deletion(collaborative)
    labels = mean_labels(backbone, star, adj, neg, keep) if collaborative else None
    x = star.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(full_loss(backbone, x, adj, neg, keep, labels) - full_loss(backbone, x, adj, neg), x)
    rows = scif.selected_rows(REQUEST, N_USERS, "users")
    assert rows.tolist() == [0, 5]
    idx = torch.as_tensor((rows[:, None] * DIM + np.arange(DIM)).ravel())
    hess = torch.autograd.functional.hessian(lambda z: full_loss(backbone, z.view_as(star), adj, neg), star.flatten())
    expected = star.clone().flatten()
    expected[idx] -= torch.linalg.solve(hess[idx][:, idx], grad.flatten()[idx])
    updated, info = scif.scif_update(backbone, star, EDGES, neg, keep, settings)
    assert info["reason"] == "converged" and info["rows_updated"] == 2
    assert torch.allclose(updated.flatten(), expected, atol=1e-9)


def test_step_tracks_the_exact_restricted_optimum_and_the_correction_changes_it():
    """The influence step approximates the exact minimiser of the changed objective over the selected rows (every
    other row held at θ*), each variant its own objective; the two variants' steps and optima differ.

    The deletion's error is the larger (about 0.3 here): it removes curvature (the deleted triplets' BPR and L2)
    that the original Hessian still counts, while relabelling keeps the triplets."""
    backbone, neg, adj, star = at_a_minimum()
    steps, optima = {}, {}
    for collaborative in (True, False):
        keep, settings = deletion(collaborative, SMALL)
        labels = mean_labels(backbone, star, adj, neg, keep) if collaborative else None
        rows = scif.selected_rows(SMALL, N_USERS, "users")
        exact = minimise(lambda x, k=keep, y=labels: full_loss(backbone, x, adj, neg, k, y), star, rows)
        updated, _ = scif.scif_update(backbone, star, EDGES, neg, keep, settings)
        steps[collaborative], optima[collaborative] = updated - star, exact - star
    for c, tolerance in ((True, 0.2), (False, 0.4)):
        assert float((steps[c] - optima[c]).norm()) < tolerance * float(optima[c].norm()), (c, steps, optima)
        assert float((steps[c] - optima[c]).norm()) < float((steps[c] - optima[not c]).norm())
    assert float((optima[True] - optima[False]).norm()) > 0.3 * float(optima[False].norm())


def selected(task: UnlearningTask, update_rows: str) -> np.ndarray:
    mask = np.zeros(task.original.n_users + task.original.n_items, dtype=bool)
    mask[scif.selected_rows(task.request, task.original.n_users, update_rows)] = True
    return mask


@pytest.mark.parametrize("update_rows", ["users", "users_and_items"])
def test_only_the_selected_rows_change(clustered, update_rows):
    """Every row of E0 outside the selection is bit-identical to the original's; every selected row moves."""
    out = clustered.run("scif", {**CG, "update_rows": update_rows})["scif"]
    theta = clustered.task.original.backbone.embedding.detach()
    mask = torch.as_tensor(selected(clustered.task, update_rows))
    assert int(mask.sum()) == out.info["rows_updated"]
    assert torch.equal(out.e0[~mask], theta[~mask])
    assert bool((out.e0[mask] != theta[mask]).any(-1).all())
    assert set(out.timings) == {"setup_s", "solve_s", "propagate_s"}


def test_the_collaborative_correction_changes_the_result(clustered):
    on = clustered.run("scif", CG)["scif"]
    off = clustered.run("scif", {**CG, "collaborative": False})["scif"]
    assert 0 < on.info["mean_label"] < 1 and off.info["mean_label"] is None
    theta = clustered.task.original.backbone.embedding.detach()
    assert float((on.e0 - off.e0).norm()) > 0.1 * float((off.e0 - theta).norm())
    assert not torch.allclose(on.user_emb, off.user_emb)


def test_a_trust_region_bounds_the_step_and_lowers_the_deleted_scores(clustered):
    none = clustered.run("none")["none"]
    out = clustered.run("scif", {**CG, "trust_radius": 0.1})["scif"]
    assert 0 < out.info["step_norm"] <= 0.1 * out.info["rows_norm"] * (1 + 1e-5)
    assert clustered.deleted_mean(out.user_emb, out.item_emb) < clustered.deleted_mean(none.user_emb, none.item_emb)


def test_a_request_of_no_training_edge_is_refused(clustered):
    original = clustered.task.original
    with pytest.raises(RequestError, match="scif"):
        METHODS["scif"]().unlearn(UnlearningTask(original, clustered.non_edges[:1], original.trained_on), None)


def test_by_default_adam_keeps_the_step_with_the_best_validation_recall_and_moves_only_the_users(clustered_wide):
    """The official solver (shared with IFRU): the kept step is the served model's best validation Recall@20 among
    the steps Adam tried, and only the request's users' rows moved."""
    o = dataclasses.replace(clustered_wide.task.original, valid=clustered_wide.test)
    remaining = clustered_wide.task.remaining
    task = UnlearningTask(o, clustered_wide.task.request, remaining)
    settings = {"adam_lr": 10.0, "patience": 3}  # a rate this 60-user graph can bear (see test_ifru.py)
    out = METHODS["scif"](settings).unlearn(task, None)["scif"]
    assert out.info["solver"] == "adam" and out.info["selection"] == _influence_solver.SELECTION["recall"]
    measured = evaluate_ranking(out.user_emb, out.item_emb, remaining, o.valid, ks=(20,))["recall@20"]
    assert out.info["best_score"] == pytest.approx(measured, abs=1e-9)
    for steps in range(1, out.info["steps"] + 1):
        tried = METHODS["scif"]({**settings, "adam_max_iter": steps, "patience": steps}).unlearn(task, None)
        assert tried["scif"].info["best_score"] <= out.info["best_score"] + 1e-12, steps
    theta = o.backbone.embedding.detach()
    mask = torch.as_tensor(selected(task, "users"))
    assert torch.equal(out.e0[~mask], theta[~mask]) and bool((out.e0[mask] != theta[mask]).any())
