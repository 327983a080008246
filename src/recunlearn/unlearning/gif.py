"""GIF, the Graph Influence Function (Wu et al., WWW 2023), for an embedding-table recommender.

Settings: `schemas/methods/gif.yaml`; the baseline in docs/method.md, "Baselines (each a row of the comparison)".

Idea. Let θ* be the trained table, L_G(θ) = Σ_{edges of G} ℓ(θ; Â(G)) the summed training loss, and
L_r(θ) = Σ_{edges of E_r} ℓ(θ; Â(E_r)) the loss Retrain minimises. One Newton step for L_r from θ* gives

    Δθ = -(H + λI)^{-1} g,    g = ∇L_r(θ*) - ∇L_G(θ*).

Subtracting ∇L_G(θ*) (≈ 0 at a trained optimum) leaves only what the deletion changes: the deleted edges' own
terms AND the terms of their neighbours, whose representations move because propagation now runs on Â(E_r).
That second part is what GIF adds to the classic influence function. GIF's losses are sums (not means), and so
are these: the Hessian H of the summed loss and the gradient difference are on the same scale, so the step
needs no extra 1/|E| factor. H is GIF's Hessian of the original objective at θ* by default
(`hessian_graph: original`); `remaining` uses L_r's Hessian, the exact Newton step of the retraining objective.

The loss ℓ is the backbone's BPR + L2 (the SSL terms of SGL/SimGCL are random and left out) with ONE fixed,
seeded negative per edge, drawn among items the user has no original edge with, and shared by both gradients,
so the objective is a deterministic smooth function and g holds only the deletion's effect.

Computation. All in-scope backbones are linear in E0: final = P E0 with P a polynomial in the symmetric Â, so
P^T = P (checked at run time). Hence ∇L = P ∇_F φ + l2 c ⊙ θ and H v = P H_F (P v) + l2 c ⊙ v, where φ is the
BPR sum as a function of the final embeddings F, c counts each node's appearances in triplets, and H_F's product
is closed-form (see `BPRObjective`). A Hessian-vector product then costs two propagations and three sparse
products over a fixed triplet pattern, and keeps no autograd graph (faster than autograd's double backward:
docs/decisions.md). (H + λI) x = g is solved by CG.

Indefiniteness and flat directions. BPR's Hessian is NOT positive semi-definite: for a triplet with margin
m = f_u·(f_i - f_j), H_F = σ(m)σ(-m) ∇m∇m^T - σ(-m) ∇²m, and ∇²m couples f_u with f_i - f_j with eigenvalues of
both signs. It is also singular: inner-product scores and an isotropic L2 do not change when every embedding is
rotated (θ -> θQ), so H has d(d-1)/2 zero eigenvalues at an optimum, and L_r's Hessian at θ* (not L_r's
optimum) is indefinite along those rotations, one reason GIF's choice of the original Hessian is the default.
`damping` λ shifts every eigenvalue by +λ, which helps only when λ exceeds the most negative one; on the summed
loss of a real graph that is far above the default damping. CG therefore runs as Steihaug's trust-region CG: on a
direction of non-positive curvature, or when the step would leave |Δθ| <= trust_radius · |θ|, it stops on that
boundary (with trust_radius 0: stops where it is). Pure Newton-CG steps were a large fraction of |θ| or more and
wrecked recall (docs/decisions.md), so the default radius is small (it is then what sets the step size; the stop
reason is reported). `scale` multiplies the final step (1 = the Newton step); GIF's own `scale` only
normalises its LiSSA iteration, which CG does not need.

GIF's own solver is offered as `solver: lissa` (`lissa`): the recursion of GIF's paper and official code
(wujcan/GIF-torch, `exp_GIF.py::gif_approxi`), with its defaults (5 iterations, scale 50, damping 0). It is a
truncated Neumann series for (H + damp·scale I)^{-1} g and converges only when every eigenvalue of H lies in
(-damp·scale, (2 - damp)·scale); with too small a scale for the summed loss it grows instead, which the reported
`relative_residual` shows. It has no trust region: `damping`, `cg_tol`, `cg_max_iter` and `trust_radius` are
CG's settings and unused by it; `scale` still multiplies the final step.

The objective, its Hessian-vector product and both solvers live in `_influence.py`, shared with IFRU and SCIF.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from recunlearn.backbones.base import Backbone
from recunlearn.unlearning._influence import (
    deletion_objectives,
    deletion_triplets,
    influence_step,
    lissa_step,
)
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["GIF", "influence_update"]


class GIF(UnlearningMethod):
    """One damped Newton step on the embedding table towards the retraining optimum (see above), solved by
    trust-region CG (default) or GIF's LiSSA recursion (`solver: lissa`)."""

    name = "gif"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, backbone = task.original, task.original.backbone
        start = time.perf_counter()
        edges, keep, neg = deletion_triplets(task, self.name)
        theta, adj_rem, info = influence_update(
            backbone, backbone.embedding.detach(), edges, neg, keep, self.settings, seed=o.seed
        )
        t_done = time.perf_counter()
        with torch.no_grad():
            u_emb, i_emb = backbone.split(backbone.propagate(theta, adj_rem))
        end = time.perf_counter()
        # setup: negatives, both graphs and gradients; solve: CG; propagate: the final embeddings
        solve = info.pop("solve_s")
        timings = {"setup_s": t_done - start - solve, "solve_s": solve, "propagate_s": end - t_done}
        for key in ("setup_s", "total_s"):
            info.pop(key)
        return {self.name: Unlearned(u_emb, i_emb, end - start, timings, info)}


def influence_update(
    backbone: Backbone,
    theta: torch.Tensor,
    edges: np.ndarray,
    neg: np.ndarray,
    keep: np.ndarray,
    settings: dict,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """θ + Δθ for deleting the triplets where `keep` is False; returns it, the remaining graph's adjacency and an
    info dict (CG report, norms, timings).

    Args:
        backbone: the trained backbone (its propagation must be linear and symmetric in E0).
        theta: the trained table θ*.
        edges: (E, 2) training edges of the original model.
        neg: one fixed negative item per edge (`fixed_negatives`).
        keep: (E,) bool, False for the deleted edges.
        settings: GIF's complete settings (`schemas/methods/gif.yaml`).
        seed: seed of the linearity check's random probes.
    """
    s = settings
    start = time.perf_counter()
    full, rest = deletion_objectives(backbone, theta, edges, neg, keep, s["curvature"] == "gauss_newton", seed)
    g = rest.gradient() - full.gradient()
    t_setup = time.perf_counter()
    hess = full if s["hessian_graph"] == "original" else rest
    if s["solver"] == "lissa":
        delta, info = lissa_step(g, hess.hvp, s["lissa_iterations"], s["lissa_scale"], s["lissa_damping"], s["scale"])
    else:
        radius = s["trust_radius"] * float(theta.norm())
        delta, info = influence_step(g, hess.hvp, s["damping"], s["cg_tol"], s["cg_max_iter"], s["scale"], radius)
    end = time.perf_counter()
    info.update(
        solver=s["solver"],
        grad_norm=float(g.norm()),
        step_norm=float(delta.norm()),
        table_norm=float(theta.norm()),
        setup_s=t_setup - start,
        solve_s=end - t_setup,
        total_s=end - start,
    )
    return theta + delta, rest.adj, info
