"""SCIF, the Selective and Collaborative Influence Function (Li et al., arXiv 2304.10199, 2023).

Settings: `schemas/methods/scif.yaml`. The paper has no code of its own; the implementation its comparisons use
is the one in the IFRU repository (baiyimeng/IFRU, `scif_*_khop0.py`), read for the details below.

Idea. An influence function estimates the retrained parameters by one Newton step from the trained ones, θ*:
Δθ = -H^{-1} ∇ΔL(θ*), where ΔL is how the request changes the summed training objective and H is the original
objective's Hessian. SCIF makes two changes to the classic one:

- Selective: only the request's users' parameters move (`update_rows: users`, the paper's "selectively updating
  user embedding"); every other parameter is held at θ*, so the step solves the Hessian restricted to those rows,
  H_SS Δθ_S = -g_S, and is exactly zero elsewhere. The official script's k_hop=0 row set, the request's users AND
  items, is `update_rows: users_and_items`.
- Collaborative: a deleted interaction is not dropped from the objective (which would leave a hole in the user's
  and item's collaborative signal) but relabelled with the user's mean label in the retained data, or the item's
  when the user keeps none (`_scif_generate_labels.py`); `collaborative: false` is the plain deletion.

Adaptations (this project trains BPR on the user-item bipartite graph with GNN backbones):

- Parameters. A backbone's parameters are the initial table E0 (n_users + n_items rows); final embeddings are
  propagated from it. "A user's embedding" is that user's row of E0: updating it moves, through propagation, the
  final embedding of every node within the backbone's reach, but no other row of E0 changes.
- Loss. The backbone's BPR + L2, summed, with one fixed seeded negative per edge (`_influence.fixed_negatives`, as GIF),
  on propagated scores. The official LightGCN script scores raw E0 rows, without propagation, in its influence
  loss; that is a quirk, not kept. The objective and its Hessian are on the ORIGINAL graph: SCIF accounts for the
  loss only, not for the neighbours whose propagation changes when edges go (IFRU's and GIF's spill-over term).
  Serving, as for every method here, propagates on the remaining graph: the deleted edges must not be used.
- Labels. Every BPR triplet (u, i, j) has label 1, so the literal "user's mean label" is 1 and relabelling would do
  nothing. The soft analogue: a triplet's label is its model probability σ(m), m = f_u·(f_i - f_j), and the user's
  mean label is the mean σ(m) over their retained triplets at θ* (the item's as positive if the user keeps none;
  0.5, "i as likely as a random item", if neither keeps any). The relabelled term is the soft-label cross-entropy
  ℓ(m; ȳ) = softplus(-m) + (1 - ȳ) m, so ΔL = Σ_deleted (1 - ȳ) m (L2 unchanged: the pair stays in the objective).
  Deletion is ΔL = -Σ_deleted [softplus(-m) + L2 terms].
- The full gradient ∇L_G(θ*) is left out (the classic influence function assumes θ* optimal; with one fixed
  negative per edge it is sampling noise, not the request's effect). The official code adds n ∇L_G with a plus
  sign, the opposite of a Newton step's.
- Solver. The official code minimises the quadratic by Adam on p = n Δθ (learning rate 1e4 by default, 5e4 in one
  script, up to 5,000 steps) and keeps the step with the best validation AUC, stopping after 10 steps without a
  better one: IFRU's solver, and here the same code (`_influence_solver.solve_step`, `solver: adam`, with
  `select: recall`). Without that selection a Newton step can leave the region where the quadratic model
  holds: the CG solve ran into negative curvature on the adversarial request, whose rows are every user, and one
  seed's truncated step was four times the rows' norm (Recall@20 0.242 against Retrain's 0.377).
  `solver: cg` is Steihaug's trust-region CG (`_influence.conjugate_gradient`; BPR's Hessian is indefinite, see
  gif.py) with a radius relative to the selected rows' norm.

Cost: a Hessian-vector product is a full one (two propagations, `_influence.BPRObjective`) masked to the selected rows;
for a GNN the restricted Hessian is not block-diagonal per user as it is for MF, so selection shrinks the unknowns,
not the cost of a product.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.unlearning._influence import (
    BPRObjective,
    check_linear_symmetric,
    deletion_triplets,
)
from recunlearn.unlearning._influence_solver import solve_step
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask, final_embeddings

__all__ = ["SCIF", "objective_change", "scif_update", "selected_rows", "soft_labels"]

NO_INFORMATION = 0.5  # σ(m) of a pair the model knows nothing about: i as likely as the random negative j


def selected_rows(request: np.ndarray, n_users: int, update_rows: str) -> np.ndarray:
    """Sorted rows of E0 that SCIF updates: the request's users, and with `users_and_items` its items too
    (offset by n_users, as in the table)."""
    rows = np.unique(request[:, 0])
    if update_rows == "users_and_items":
        rows = np.concatenate([rows, n_users + np.unique(request[:, 1])])
    return rows


def soft_labels(
    sigma: torch.Tensor, users: torch.Tensor, pos: torch.Tensor, keep: torch.Tensor, n_users: int, n_items: int
) -> torch.Tensor:
    """ȳ of each deleted triplet: its user's mean σ(m) over the user's retained triplets, else its item's mean over
    the item's retained triplets, else NO_INFORMATION (SCIF's user-then-item mean label, for BPR: see above).

    Args:
        sigma: (T,) σ(m) of every triplet at θ*.
        users: (T,) user of every triplet.
        pos: (T,) positive item of every triplet (0-based).
        keep: (T,) bool, False for the deleted triplets.
        n_users: number of users.
        n_items: number of items.
    """

    def means(ids: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        total = torch.zeros(size, dtype=sigma.dtype, device=sigma.device).index_add_(0, ids[keep], sigma[keep])
        count = torch.bincount(ids[keep], minlength=size).to(sigma.dtype)
        return total / count.clamp(min=1), count > 0

    user_mean, user_has = means(users, n_users)
    item_mean, item_has = means(pos, n_items)
    u, i = users[~keep], pos[~keep]
    fallback = torch.where(item_has[i], item_mean[i], torch.full_like(item_mean[i], NO_INFORMATION))
    return torch.where(user_has[u], user_mean[u], fallback)


def objective_change(
    backbone: Backbone,
    theta: torch.Tensor,
    adj: torch.Tensor,
    users: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    labels: torch.Tensor | None,
) -> torch.Tensor:
    """ΔL(θ): how the request changes the summed objective on the graph `adj`, over the deleted triplets.

    With `labels` ȳ (collaborative): Σ (1 - ȳ) m, the relabelled soft-label BPR minus the original term
    (ℓ(m; ȳ) - ℓ(m; 1) = (1 - ȳ) m). Without (deletion): minus the triplets' BPR + L2 (as in `_influence.bpr_l2_sum`).

    Args:
        backbone: the backbone whose propagation and `l2` define the loss.
        theta: (n_users + n_items, dim) table θ.
        adj: normalised adjacency propagated over (the original graph).
        users: (R,) users of the deleted triplets.
        pos: (R,) their positive items (0-based).
        neg: (R,) their fixed negatives.
        labels: (R,) soft labels ȳ, or None for the plain deletion.
    """
    f = backbone.propagate(theta, adj)
    rows = torch.cat([users, backbone.n_users + pos, backbone.n_users + neg])
    fu, fi, fj = f[rows].split(len(users))
    margin = (fu * (fi - fj)).sum(-1)
    if labels is not None:
        return ((1 - labels) * margin).sum()
    return -(F.softplus(-margin).sum() + backbone.l2 * 0.5 * theta[rows].pow(2).sum())


def scif_update(
    backbone: Backbone,
    theta: torch.Tensor,
    edges: np.ndarray,
    neg: np.ndarray,
    keep: np.ndarray,
    settings: dict,
    valid: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, dict]:
    """θ with the selected rows moved by SCIF's step Δθ_S ≈ -(H_SS + λI)^{-1} ∇_S ΔL(θ*), every other row left
    bit-identical; returns it and an info dict (solver report, norms, rows, timings).

    Args:
        backbone: the trained backbone (its propagation must be linear and symmetric in E0).
        theta: the trained table θ*.
        edges: (E, 2) training edges of the original model.
        neg: one fixed negative item per edge (`_influence.fixed_negatives`).
        keep: (E,) bool, False for the deleted edges.
        settings: SCIF's complete settings (`schemas/methods/scif.yaml`).
        valid: (V, 2) validation pairs the Adam solver keeps its step by; None: the last step is kept.
        seed: seed of the linearity check's random probes and of the AUC rule's non-edges.
    """
    s, nu, ni, dev = settings, backbone.n_users, backbone.n_items, theta.device
    start = time.perf_counter()
    theta = theta.detach()
    t = lambda a: torch.as_tensor(a, device=dev)  # noqa: E731
    users, pos, negs, kept = t(edges[:, 0]), t(edges[:, 1]), t(neg), t(keep)
    adj = normalized_adjacency(edges, nu, ni, dev).to(theta.dtype)
    check_linear_symmetric(backbone, adj, theta, seed=seed)
    full = BPRObjective(backbone, adj, users, pos, negs, theta)
    labels = soft_labels(1 - full.s, users, pos, kept, nu, ni) if s["collaborative"] else None
    x = theta.clone().requires_grad_(True)
    change = objective_change(backbone, x, adj, users[~kept], pos[~kept], negs[~kept], labels)
    (grad,) = torch.autograd.grad(change, x)
    rows = t(selected_rows(edges[~keep], nu, s["update_rows"]))

    hvp_rows = functools.partial(full.hvp_rows, rows)  # H_SS on steps of the rows S
    remaining = normalized_adjacency(edges[keep], nu, ni, dev).to(theta.dtype) if s["solver"] == "adam" else None
    t_setup = time.perf_counter()
    step, info = solve_step(s, grad[rows], hvp_rows, backbone, theta, rows, remaining, valid, edges, keep, seed)
    updated = theta.clone()
    updated[rows] = theta[rows] + step  # only the selected rows are written
    end = time.perf_counter()
    info.update(
        solver=s["solver"],
        rows_updated=len(rows),
        grad_norm=float(grad[rows].norm()),
        step_norm=float(step.norm()),
        rows_norm=float(theta[rows].norm()),
        mean_label=float(labels.mean()) if labels is not None else None,
        setup_s=t_setup - start,
        solve_s=end - t_setup,
    )
    return updated, info


class SCIF(UnlearningMethod):
    """One Newton step on the request's users' rows of E0 towards the relabelled objective (see above)."""

    name = "scif"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, backbone = task.original, task.original.backbone
        start = time.perf_counter()
        edges, keep, neg = deletion_triplets(task, self.name)
        theta, info = scif_update(
            backbone, backbone.embedding.detach(), edges, neg, keep, self.settings, valid=o.valid, seed=o.seed
        )
        t_done = time.perf_counter()
        users, items = final_embeddings(backbone, theta, edges[keep])
        end = time.perf_counter()
        timings = {"setup_s": info.pop("setup_s"), "solve_s": info.pop("solve_s"), "propagate_s": end - t_done}
        return {self.name: Unlearned(users, items, end - start, timings, info, e0=theta)}
