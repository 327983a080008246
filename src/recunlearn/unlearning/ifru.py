"""IFRU, Recommendation Unlearning via Influence Function (Zhang, Hu, Bai, Wu, Wang, Feng; ACM TORS 2024).

Settings: `schemas/methods/ifru.yaml`; the baselines in docs/method.md, "Baselines (each a row of the comparison)".
The official code (baiyimeng/IFRU, `ifru_lightgcn_*_khop1.py` and `utility/compute.py`) was read for the details
below; none of it is reused.

Idea. An influence function moves the trained table θ* by one Newton step towards the retraining optimum,
Δθ = -H^{-1} g with g = ∇L_r(θ*) - ∇L_G(θ*) and H the Hessian of the original objective. In a graph recommender a
deleted interaction is used twice, and IFRU counts both:

- directly, as a loss term: g_direct = -∇ Σ_deleted ℓ(θ; Â), the classic influence function;
- through the graph (the spill-over): the deleted edges are no longer aggregated over, so the final embeddings of
  their endpoints' neighbours change, and with them the losses of interactions that are kept:
  g_spill = ∇ Σ_kept [ℓ(θ; Â_r) - ℓ(θ; Â)].

g = g_direct + g_spill is GIF's gradient difference (`_influence.deletion_objectives`); `spill_over: false` keeps only
g_direct (the paper's ablation without the spill-over term). Both norms are reported.

Pruning. Only the rows of E0 that the request affects most are updated, so the step solves the Hessian restricted
to them, (H_SS + λI) Δθ_S = -g_S, and every other row stays bit-identical. A node's importance starts at the share
of its links the request removes, (request edges at it) / (degree + 1) (the graph has a self-loop per node), at the
request's endpoints, and is spread `k_hop` times by w <- D^{-1}(A + I) w (each node averages itself and its
neighbours, D = degree + 1). Of the nodes reached, those strictly above the `prune_fraction` quantile of their
importance are kept (official: 1 hop, the 40 % quantile; `prune_fraction: 0` keeps every node reached). Selection
shrinks the unknowns, not the cost of a Hessian-vector product: for a GNN, H_SS couples rows through propagation, so
each product is a full one (`_influence.BPRObjective`) restricted to S.

Solver (`solver`). "adam", the official one: Adam on the quadratic q(x) = ½ xᵀ(H_SS + λI)x + g_Sᵀx, whose minimiser
is Δθ_S. The official code works on p = n Δθ (n training interactions, Hessian of the mean loss, gradient of the
summed one) with learning rate 1e4; Adam ignores the gradient's scale, so that is Adam on Δθ with learning rate
`adam_lr` / n, as here. After every step the model it gives is scored on the validation pairs (`select`); the
best-scoring step is kept (the first step is always a candidate: the official best score starts at 0) and the
solver stops once more than `patience` steps in a row fail to beat it. Without validation pairs the last of
`adam_max_iter` steps is kept, and `selection` says so. "cg": the project's Steihaug trust-region CG
(`_influence.influence_step`), as GIF's. SCIF's official script uses the same Adam solver; both methods call
`_influence_solver.solve_step`, with the settings of `schemas/methods/_influence_solver.yaml`.

The project's adaptations:
- Loss. The backbone's BPR + L2 on the user-item bipartite graph, summed, with one fixed seeded negative per edge
  (`_influence.fixed_negatives`; the same negatives as GIF and SCIF for the same seed). The official code uses pointwise
  BCE on labelled interactions (mean for the Hessian, sum for the gradients, step p / n), which is the same step
  scale as the summed form here. SSL terms of SGL/SimGCL are random and left out, as in GIF.
- Backbones. LightGCN, SGL and SimGCL through `Backbone.propagate`: final = P E0 with P linear and symmetric (checked
  at run time), so the Hessian products are GIF's closed-form ones. The parameters are E0's rows; the official
  LightGCN runs have 1 layer, ours the backbone's own depth, so the spill-over reaches farther than the 1-hop rows
  that are updated.
- Hessian with propagation: the official LightGCN script scores raw E0 rows, without propagation, in its Hessian's
  loss while its gradients propagate; that mismatch is not kept.
- Spill-over over every kept interaction whose loss changes (terms that do not change cancel exactly). The official
  code takes the kept interactions of the request's users and items whose degree falls by more than 1 %, which
  misses those of their neighbours, whose aggregation changes too (LightGCN's degree normalisation).
- Validation: the served model (propagated on the remaining graph, as every method here is served). The official
  score is AUC on labelled validation sets, whose negatives are real disliked items; the project's validation
  split holds positives only, so `select: auc` scores them against sampled random non-edges, which are easy to
  outscore: that AUC kept rising while Recall@20 fell (docs/method.md, IFRU). `select: recall` (the default)
  scores validation Recall@20 with the remaining graph masked, the criterion the backbones early-stop on.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch

from recunlearn.backbones.base import Backbone
from recunlearn.unlearning._influence import BPRObjective, deletion_objectives, deletion_triplets
from recunlearn.unlearning._influence_solver import solve_step
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["IFRU", "deletion_gradient", "ifru_update", "importance", "pruned_rows"]


def importance(edges: np.ndarray, request: np.ndarray, n_users: int, n_items: int, k_hop: int, device) -> torch.Tensor:
    """(n_users + n_items,) IFRU's importance of every node: request edges at it / (degree + 1) at the endpoints,
    spread `k_hop` times by w <- D^{-1}(A + I) w over the graph of `edges` (users first, then items offset by
    n_users, as in E0). Zero for every node more than `k_hop` hops from an endpoint.

    Args:
        edges: (E, 2) the original training edges (the request included).
        request: (R, 2) the deleted edges.
        n_users: number of users.
        n_items: number of items.
        k_hop: how many times the importance is spread (official: 1).
        device: where the weights are computed.
    """
    n = n_users + n_items
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), device=device)  # noqa: E731
    users, items = t(edges[:, 0]), n_users + t(edges[:, 1])
    ends = torch.cat([t(request[:, 0]), n_users + t(request[:, 1])])
    degree = (torch.bincount(torch.cat([users, items]), minlength=n) + 1).to(torch.float64)
    w = torch.bincount(ends, minlength=n).to(torch.float64) / degree
    for _ in range(k_hop):
        spread = w.clone()
        spread.index_add_(0, users, w[items])
        spread.index_add_(0, items, w[users])
        w = spread / degree
    return w


def pruned_rows(weights: torch.Tensor, prune_fraction: float) -> torch.Tensor:
    """Sorted rows kept by IFRU's pruning: of the nodes with positive importance, those strictly above the
    `prune_fraction` quantile of it (linear interpolation, as numpy's default); 0 keeps every one of them."""
    reached = weights > 0
    if prune_fraction <= 0 or not reached.any():
        return torch.nonzero(reached).flatten()
    threshold = torch.quantile(weights[reached], prune_fraction)
    return torch.nonzero(reached & (weights > threshold)).flatten()


def deletion_gradient(
    full: BPRObjective, rest: BPRObjective, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_direct, g_spill) at θ*: minus the gradient of the deleted triplets' own summed BPR + L2 on the original
    graph, and what the kept triplets' gradient changes by when propagation runs on the remaining graph. Their sum
    is ∇L_r - ∇L_G (GIF's g).

    Args:
        full: L_G, the objective over every triplet on the original graph (`_influence.deletion_objectives`).
        rest: L_r, over the kept triplets on the remaining graph.
        users: (R,) users of the deleted triplets.
        pos: (R,) their positive items (0-based).
        neg: (R,) their fixed negatives.
    """
    direct = -BPRObjective(full.backbone, full.adj, users, pos, neg, full.theta).gradient()
    return direct, rest.gradient() - full.gradient() - direct


def ifru_update(
    backbone: Backbone,
    theta: torch.Tensor,
    edges: np.ndarray,
    neg: np.ndarray,
    keep: np.ndarray,
    settings: dict,
    valid: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """θ* with the pruned rows S moved by IFRU's step Δθ_S ≈ -(H_SS + λI)^{-1} g_S and every other row left
    bit-identical; returns it, the remaining graph's adjacency (to serve on) and an info dict.

    Args:
        backbone: the trained backbone (its propagation must be linear and symmetric in E0).
        theta: the trained table θ*.
        edges: (E, 2) training edges of the original model.
        neg: (E,) one fixed negative item per edge (`_influence.fixed_negatives`).
        keep: (E,) bool, False for the deleted edges.
        settings: IFRU's complete settings (`schemas/methods/ifru.yaml`).
        valid: (V, 2) validation pairs the Adam solver keeps its step by; None: the last step is kept.
        seed: seed of the linearity check's probes and of the validation non-edges.
    """
    s, nu, ni, dev = settings, backbone.n_users, backbone.n_items, theta.device
    start = time.perf_counter()
    theta = theta.detach()
    full, rest = deletion_objectives(backbone, theta, edges, neg, keep, False, seed)
    deleted = torch.as_tensor(np.flatnonzero(~keep), device=dev)
    triplet = [torch.as_tensor(a, device=dev)[deleted] for a in (edges[:, 0], edges[:, 1], neg)]
    direct, spill = deletion_gradient(full, rest, *triplet)
    rows = pruned_rows(importance(edges, edges[~keep], nu, ni, s["k_hop"], dev), s["prune_fraction"])
    b = (direct + spill if s["spill_over"] else direct)[rows]

    hvp_rows = functools.partial(full.hvp_rows, rows)  # H_SS on steps of the rows S
    t_setup = time.perf_counter()
    step, info = solve_step(s, b, hvp_rows, backbone, theta, rows, rest.adj, valid, edges, keep, seed)
    updated = theta.clone()
    updated[rows] = theta[rows] + step  # only the selected rows are written
    end = time.perf_counter()
    is_end = torch.zeros(len(theta), dtype=torch.bool, device=dev)
    is_end[torch.as_tensor(np.concatenate([edges[~keep, 0], nu + edges[~keep, 1]]), device=dev)] = True
    info.update(
        solver=s["solver"],
        rows_updated=len(rows),
        endpoints_updated=int(is_end[rows].sum()),
        endpoints=int(is_end.sum()),
        direct_norm=float(direct[rows].norm()),
        spill_norm=float(spill[rows].norm()),
        step_norm=float(step.norm()),
        rows_norm=float(theta[rows].norm()),
        setup_s=t_setup - start,
        solve_s=end - t_setup,
    )
    return updated, rest.adj, info


class IFRU(UnlearningMethod):
    """One influence step, direct plus spill-over, on the request's most affected rows of E0 (see above)."""

    name = "ifru"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, backbone = task.original, task.original.backbone
        start = time.perf_counter()
        edges, keep, neg = deletion_triplets(task, self.name)
        theta, adj_rem, info = ifru_update(
            backbone, backbone.embedding.detach(), edges, neg, keep, self.settings, valid=o.valid, seed=o.seed
        )
        t_done = time.perf_counter()
        with torch.no_grad():  # served on the remaining graph's adjacency, built once by the objectives
            users, items = backbone.split(backbone.propagate(theta, adj_rem))
        end = time.perf_counter()
        timings = {"setup_s": info.pop("setup_s"), "solve_s": info.pop("solve_s"), "propagate_s": end - t_done}
        return {self.name: Unlearned(users, items, end - start, timings, info, e0=theta)}
