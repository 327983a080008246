"""What the influence-function methods (GIF, IFRU, SCIF) share: the summed BPR + L2 objective of a linear backbone
with its closed-form gradient and Hessian-vector product, that objective on the original and the remaining graph,
fixed negatives, and the two solvers of (H + λI) x = g (trust-region CG, and GIF's LiSSA recursion).

The derivation (why a linear, symmetric propagation makes these products cheap, and why BPR's Hessian is indefinite,
hence trust-region CG) is in `gif.py`'s module docstring. A module of its own so that editing one method reruns only
that method's jobs (the plan's dependencies follow imports).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone
from recunlearn.errors import ConfigError, RequestError
from recunlearn.graph.adjacency import normalized_adjacency, user_item_csr
from recunlearn.graph.edges import contains
from recunlearn.graph.sampling import BPRSampler

__all__ = [
    "BPRObjective",
    "bpr_l2_sum",
    "check_linear_symmetric",
    "conjugate_gradient",
    "deletion_objectives",
    "deletion_triplets",
    "fixed_negatives",
    "influence_step",
    "lissa",
    "lissa_step",
]


def bpr_l2_sum(
    backbone: Backbone, e0: torch.Tensor, adj: torch.Tensor, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
) -> torch.Tensor:
    """Σ over triplets of [softplus(-(f_u·(f_i - f_j))) + l2/2 (|θ_u|² + |θ_i|² + |θ_j|²)]: the backbone's BPR + L2
    summed (its `loss` averages the same terms over a batch). Plain autograd: the reference for `BPRObjective`.

    Args:
        backbone: the backbone whose propagation and `l2` define the loss.
        e0: (n_users + n_items, dim) initial table θ the loss is a function of.
        adj: normalised adjacency of the graph propagated over.
        users: (T,) user ids u of the triplets.
        pos: (T,) item ids i (0-based, not offset by n_users) of the positives.
        neg: (T,) item ids j of the fixed negatives.
    """
    f = backbone.propagate(e0, adj)
    rows = torch.cat([users, backbone.n_users + pos, backbone.n_users + neg])
    fu, fi, fj = f[rows].split(len(users))
    return F.softplus(-(fu * (fi - fj)).sum(-1)).sum() + backbone.l2 * 0.5 * e0[rows].pow(2).sum()


class BPRObjective:
    """`bpr_l2_sum` on one graph and one fixed set of triplets (u, i, j): its gradient and Hessian products at θ.

    With F = P θ, a triplet's margin m = F_u·(F_i - F_j), s = σ(-m), w = s(1 - s), and for a direction V (PV its
    propagation) dm = PV_u·(F_i - F_j) + F_u·(PV_i - PV_j):
        ∇_F φ = -M(s) F,        H_F PV = M(w dm) F - M(s) PV,
    where M(x) is the symmetric node x node matrix that puts +x_e at (u,i) and (i,u) and -x_e at (u,j) and (j,u)
    for every triplet e (duplicates add). So both are sparse products over one fixed pattern, and dm is a
    sampled dense-dense product (SDDMM) on it: no (edges x dim) temporaries, which made a gather-based version
    slower and memory-bound (docs/decisions.md). `gauss_newton` drops -M(s) PV, the indefinite part.
    """

    def __init__(
        self,
        backbone: Backbone,
        adj: torch.Tensor,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        theta: torch.Tensor,
        gauss_newton: bool = False,
    ):
        """
        Args:
            backbone: the backbone (linear, symmetric propagation P) whose BPR + L2 this is.
            adj: normalised adjacency of the graph the objective is on (original or remaining).
            users: (T,) user ids u of the fixed triplets.
            pos: (T,) item ids i (0-based, not offset by n_users) of the positives.
            neg: (T,) item ids j of the fixed negatives.
            theta: (n_users + n_items, dim) table θ at which gradient and Hessian products are taken (detached).
            gauss_newton: drop the indefinite -M(s) PV part of the Hessian product (Gauss-Newton approximation).
        """
        self.backbone, self.adj, self.theta, self.gauss_newton = backbone, adj, theta.detach(), gauss_newton
        n, nu, dev = theta.shape[0], backbone.n_users, theta.device
        i, j = nu + pos, nu + neg
        rows, cols = torch.cat([users, users, i, j]), torch.cat([i, j, users, users])  # 4 blocks of E entries
        self.sign = torch.cat([torch.ones(len(users)), -torch.ones(len(users))]).repeat(2).to(theta)
        keys, self.inverse = torch.unique(rows * n + cols, return_inverse=True)  # sorted: row-major CSR order
        counts = torch.bincount(keys // n, minlength=n)
        self.crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self.col = keys % n
        self.n, self.n_triplets = n, len(users)
        self.counts = torch.bincount(torch.cat([users, i, j]), minlength=n).to(theta)
        self.ones = self._matrix(torch.ones(len(keys), dtype=theta.dtype, device=dev))
        with torch.no_grad():
            self.f = backbone.propagate(self.theta, adj)
            self.s = torch.sigmoid(-self._signed_dots(self.f)[:2].sum(0))  # m = f_u·f_i - f_u·f_j
            self.m_s = self._from_triplets(self.s)

    def _matrix(self, values: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():  # "CSR support is in beta": the pattern is valid by construction
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.col, values, size=(self.n, self.n), check_invariants=False)

    def _from_triplets(self, x: torch.Tensor) -> torch.Tensor:
        """M(x): the signed pattern with per-triplet values x."""
        values = torch.zeros(len(self.col), dtype=x.dtype, device=x.device)
        values.index_add_(0, self.inverse, self.sign * x.repeat(4))
        return self._matrix(values)

    def _signed_dots(self, v: torch.Tensor) -> torch.Tensor:
        """(4, E): ±v_r·f_c at each triplet's entries (u,i), (u,j), (i,u), (j,u), by one SDDMM on the pattern."""
        dots = torch.sparse.sampled_addmm(self.ones, v, self.f.T, beta=0.0).values()[self.inverse]
        return (self.sign * dots).view(4, self.n_triplets)

    @torch.no_grad()
    def gradient(self) -> torch.Tensor:
        grad_f = -torch.sparse.mm(self.m_s, self.f)
        return self.backbone.propagate(grad_f, self.adj) + self.backbone.l2 * self.counts[:, None] * self.theta

    @torch.no_grad()
    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        pv = self.backbone.propagate(v, self.adj)
        dm = self._signed_dots(pv).sum(0)
        out = torch.sparse.mm(self._from_triplets(self.s * (1 - self.s) * dm), self.f)
        if not self.gauss_newton:
            out = out - torch.sparse.mm(self.m_s, pv)
        return self.backbone.propagate(out, self.adj) + self.backbone.l2 * self.counts[:, None] * v

    def hvp_rows(self, rows: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """H_SS v for a step v on the rows S only ((S, d)): the full product of v placed on S, read back on S."""
        return self.hvp(torch.zeros_like(self.theta).index_copy_(0, rows, v))[rows]


def check_linear_symmetric(backbone: Backbone, adj: torch.Tensor, like: torch.Tensor, seed: int = 0) -> None:
    """Raise if propagation is not a linear map P with P^T = P (what `BPRObjective` relies on)."""
    gen = torch.Generator().manual_seed(seed)
    x, y = (torch.randn(like.shape, generator=gen).to(like) for _ in range(2))
    with torch.no_grad():
        px, py, pxy = (backbone.propagate(z, adj) for z in (x, y, 2 * x - y))
    tol = 1e-4 * float(px.norm() * y.norm() + 1e-12)
    if not torch.allclose(pxy, 2 * px - py, rtol=1e-4, atol=1e-5) or abs(float((px * y).sum() - (x * py).sum())) > tol:
        raise ConfigError(
            f"backbone {backbone.name!r} does not propagate linearly and symmetrically in E0; the influence "
            "methods' (gif, ifru, scif) Hessian-vector products would be wrong"
        )


def _to_boundary(x: torch.Tensor, p: torch.Tensor, radius: float) -> torch.Tensor:
    """x + τ p with τ >= 0 and |x + τ p| = radius (x is inside the ball)."""
    xp, pp, xx = float((x * p).sum()), float((p * p).sum()), float((x * x).sum())
    tau = (-xp + (xp * xp + pp * (radius * radius - xx)) ** 0.5) / pp
    return x + tau * p


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    tol: float = 1e-4,
    max_iter: int = 50,
    radius: float = 0.0,
) -> tuple[torch.Tensor, dict]:
    """Solve A x = b for symmetric A given only x -> A x: CG, stopped at |r| <= tol |b| or after max_iter.

    A may be indefinite (BPR's Hessian is). On a direction p with p^T A p <= 0, CG has no minimiser to go to:
    without a trust region (radius <= 0) it returns the iterate so far (truncated CG); with one it follows p to
    the boundary |x| = radius. An iterate leaving the ball is likewise cut at the boundary. This is Steihaug's
    trust-region CG for the model q(x) = x^T A x / 2 - b^T x; every iterate lowers q. `reason` says which stop.

    Args:
        matvec: the product x -> A x (same shape as `b`), e.g. a damped Hessian-vector product.
        b: right-hand side, a tensor of any shape (norms and dot products run over all its entries).
        tol: relative residual |r| / |b| at which CG counts as converged.
        max_iter: maximum number of CG iterations.
        radius: trust-region radius on |x| (Frobenius norm); <= 0 means no trust region.

    Returns x and info: `iterations`, `reason` (converged, max_iter, negative_curvature, trust_radius, zero_rhs)
    and `relative_residual`.
    """
    x = torch.zeros_like(b)
    r, b_norm = b.clone(), float(b.norm())
    p, rs = r.clone(), float((r * r).sum())
    info = {"iterations": 0, "reason": "max_iter"}
    if b_norm == 0.0:
        return x, {"iterations": 0, "reason": "zero_rhs", "relative_residual": 0.0}
    for k in range(max_iter):
        if rs**0.5 <= tol * b_norm:
            info["reason"] = "converged"
            break
        ap = matvec(p)
        curvature = float((p * ap).sum())
        if curvature <= 0.0:
            info["reason"] = "negative_curvature"
            if radius > 0:
                x = _to_boundary(x, p, radius)
            break
        alpha = rs / curvature
        if radius > 0 and float((x + alpha * p).norm()) >= radius:
            x, info["reason"] = _to_boundary(x, p, radius), "trust_radius"
            break
        x.add_(p, alpha=alpha)
        r.sub_(ap, alpha=alpha)
        rs_new = float((r * r).sum())
        p = r + (rs_new / rs) * p
        rs = rs_new
        info["iterations"] = k + 1
    else:
        if rs**0.5 <= tol * b_norm:
            info["reason"] = "converged"
    info["relative_residual"] = rs**0.5 / b_norm  # of the last full CG iterate (before any boundary cut)
    return x, info


def influence_step(
    grad_diff: torch.Tensor,
    hvp: Callable[[torch.Tensor], torch.Tensor],
    damping: float,
    tol: float,
    max_iter: int,
    step_scale: float = 1.0,
    radius: float = 0.0,
) -> tuple[torch.Tensor, dict]:
    """Δθ = -step_scale (H + damping I)^{-1} grad_diff by (trust-region) CG: the generic core, free of graphs.

    Args:
        grad_diff: the gradient difference g (right-hand side).
        hvp: v -> H v, the Hessian-vector product.
        damping: λ added to every eigenvalue of H.
        tol: relative residual at which CG stops.
        max_iter: CG iterations at most.
        step_scale: multiplier of the solved step (1 = the Newton step; GIF's `scale` setting).
        radius: trust-region radius |Δθ| <= radius; 0 = none.
    """
    x, info = conjugate_gradient(lambda v: hvp(v) + damping * v, grad_diff, tol, max_iter, radius)
    return -step_scale * x, info


def lissa(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iterations: int, scale: float, damping: float
) -> tuple[torch.Tensor, dict]:
    """x ≈ (A + damping·scale·I)^{-1} b by GIF's LiSSA-style recursion (GIF-torch, `gif_approxi`):

        h_0 = b,   h_{t+1} = b + (1 - damping) h_t - A h_t / scale,   x = h_T / scale.

    h_T is the Neumann series Σ_{k<=T} M^k b of M = I - (A + damping·scale·I) / scale, truncated after T =
    `iterations` terms, so x tends to the solve exactly when M's spectral radius is below 1: every eigenvalue of A in
    (-damping·scale, (2 - damping)·scale). Outside that range the terms grow; no safeguard is added (GIF has none),
    but `relative_residual` |(A + damping·scale·I) x - b| / |b| (one extra product) shows how far x is from the solve.

    Args:
        matvec: the product x -> A x (same shape as `b`), e.g. a Hessian-vector product.
        b: right-hand side, a tensor of any shape.
        iterations: T, products with A (GIF's `iteration`).
        scale: divides A in the recursion and the result (GIF's `scale`); must exceed half of A's largest eigenvalue.
        damping: GIF's `damp`; the system solved is A + damping·scale·I.

    Returns x and info: `iterations`, `reason` ("lissa", or "zero_rhs"), `effective_damping` (damping·scale) and
    `relative_residual`.
    """
    shift = damping * scale
    b_norm = float(b.norm())
    if b_norm == 0.0:
        return torch.zeros_like(b), {"iterations": 0, "reason": "zero_rhs", "relative_residual": 0.0}
    h = b.clone()
    for _ in range(iterations):
        h = b + (1.0 - damping) * h - matvec(h) / scale
    x = h / scale
    residual = float((matvec(x) + shift * x - b).norm()) / b_norm
    return x, {"iterations": iterations, "reason": "lissa", "effective_damping": shift, "relative_residual": residual}


def lissa_step(
    grad_diff: torch.Tensor,
    hvp: Callable[[torch.Tensor], torch.Tensor],
    iterations: int,
    scale: float,
    damping: float,
    step_scale: float = 1.0,
) -> tuple[torch.Tensor, dict]:
    """Δθ = -step_scale (H + damping·scale·I)^{-1} grad_diff by `lissa`: `influence_step` with GIF's own solver.

    Args:
        grad_diff: the gradient difference g (right-hand side).
        hvp: v -> H v, the Hessian-vector product.
        iterations: LiSSA iterations (GIF's `iteration`).
        scale: LiSSA's scale (GIF's `scale`).
        damping: LiSSA's damping (GIF's `damp`).
        step_scale: multiplier of the solved step (GIF's project setting `scale`, 1 = as solved).
    """
    x, info = lissa(hvp, grad_diff, iterations, scale, damping)
    return -step_scale * x, info


def fixed_negatives(edges: np.ndarray, n_users: int, n_items: int, seed: int) -> np.ndarray:
    """One uniform negative per edge, never an item the user has an edge with in `edges` (seeded, vectorised)."""
    sampler = BPRSampler(edges, n_users, n_items, seed=seed, exclude=user_item_csr(edges, n_users, n_items))
    return sampler.negatives(edges[:, 0])


def deletion_objectives(
    backbone: Backbone,
    theta: torch.Tensor,
    edges: np.ndarray,
    neg: np.ndarray,
    keep: np.ndarray,
    gauss_newton: bool,
    seed: int,
) -> tuple[BPRObjective, BPRObjective]:
    """(L_G, L_r) at θ: the summed BPR + L2 over every triplet on the original graph, and over the kept triplets on
    the remaining graph (its `adj` is the remaining graph's adjacency, the one to serve on). Their gradient
    difference is the deletion's whole effect: the deleted triplets' own terms and the kept ones' spill-over.

    Raises ConfigError if the backbone does not propagate linearly and symmetrically (`check_linear_symmetric`).

    Args:
        backbone: the trained backbone.
        theta: (n_users + n_items, dim) table θ (detached), on the device everything runs on.
        edges: (E, 2) training edges of the original model.
        neg: (E,) one fixed negative item per edge (`fixed_negatives`).
        keep: (E,) bool, False for the deleted edges.
        gauss_newton: both objectives' Hessian products drop the indefinite part (`BPRObjective`).
        seed: seed of the linearity check's random probes.
    """
    nu, ni, dev = backbone.n_users, backbone.n_items, theta.device
    t = lambda a: torch.as_tensor(a, device=dev)  # noqa: E731
    users, pos, negs, kept = t(edges[:, 0]), t(edges[:, 1]), t(neg), t(np.flatnonzero(keep))
    adj_all = normalized_adjacency(edges, nu, ni, dev).to(theta.dtype)
    adj_rem = normalized_adjacency(edges[keep], nu, ni, dev).to(theta.dtype)
    check_linear_symmetric(backbone, adj_rem, theta, seed=seed)
    full = BPRObjective(backbone, adj_all, users, pos, negs, theta, gauss_newton)
    rest = BPRObjective(backbone, adj_rem, users[kept], pos[kept], negs[kept], theta, gauss_newton)
    return full, rest


def deletion_triplets(task, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, keep, negatives) of a request: the original training edges, False where an edge is deleted, and one
    fixed negative per edge from the seed stream every influence method shares, so GIF, IFRU and SCIF differentiate
    the same objective for the same seed. A request that deletes no training edge is one RequestError.

    Args:
        task: the UnlearningTask (its original model gives the edges, sizes and seed).
        method: the method's name, for the error message.
    """
    o = task.original
    edges = np.asarray(o.trained_on, dtype=np.int64)
    keep = ~contains(edges, task.request, o.n_items)
    if keep.all():
        raise RequestError(f"{method}: the request removes no training edge")
    seed = int(np.random.default_rng([o.seed, 13]).integers(2**62))
    return edges, keep, fixed_negatives(edges, o.n_users, o.n_items, seed)
