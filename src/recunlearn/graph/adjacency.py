"""The bipartite user-item graph as a normalised sparse adjacency, and a fast propagation through it.

Why a custom autograd function: every backbone (and the Influence Encoder) multiplies by the symmetric matrix
Â = D^-1/2 A D^-1/2, and because Â^T = Â the backward can reuse Â itself instead of transposing it on every call
(the measured gain is in docs/decisions.md, section "Graph utilities and data").

Node indices: user u is node u, item i is node n_users + i, N = n_users + n_items (docs/method.md, section
"The task").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from recunlearn.errors import DataError

__all__ = ["normalized_adjacency", "propagate", "GraphContext", "check_edges", "user_item_csr"]


def check_edges(edges: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """Return `edges` as an int64 (E, 2) array; raise DataError if the shape or an id is out of range."""
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise DataError(f"interactions must have shape (E, 2), got {edges.shape}")
    if edges.size and not np.issubdtype(edges.dtype, np.integer):
        raise DataError(f"interactions must be integer ids, got dtype {edges.dtype}")
    edges = edges.astype(np.int64, copy=False)
    if edges.size:
        if edges[:, 0].min() < 0 or edges[:, 0].max() >= n_users:
            raise DataError(f"user id out of range [0, {n_users}) in interactions")
        if edges[:, 1].min() < 0 or edges[:, 1].max() >= n_items:
            raise DataError(f"item id out of range [0, {n_items}) in interactions")
    return edges


def user_item_csr(edges: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary user x item CSR matrix of `edges` (duplicates collapse, column indices sorted per row).

    Sorted rows make `row * n_items + indices` a globally sorted key array, which is what the vectorised
    membership tests (negative sampling, masking) search in.
    """
    edges = check_edges(edges, n_users, n_items)
    m = sp.csr_matrix((np.ones(len(edges), dtype=np.float32), (edges[:, 0], edges[:, 1])), shape=(n_users, n_items))
    m.sum_duplicates()
    m.sort_indices()
    m.data[:] = 1.0
    return m


def normalized_adjacency(edges: np.ndarray, n_users: int, n_items: int, device="cpu") -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the bipartite graph as an (N x N) float32 sparse CSR tensor on `device`.

    No self loops; duplicate edges count once; isolated nodes keep empty rows (their degree is treated as
    infinite, so no NaN or inf appears). Vectorised through scipy, so rebuilding it per request is cheap.
    """
    r = user_item_csr(edges, n_users, n_items)
    n = n_users + n_items
    a = (
        sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
        if r.nnz
        else sp.csr_matrix((n, n), dtype=np.float32)
    )
    a = sp.csr_matrix(a, shape=(n, n))
    a.sort_indices()
    deg = np.diff(a.indptr).astype(np.float64)
    with np.errstate(divide="ignore"):
        dinv = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
    rows = np.repeat(np.arange(n), np.diff(a.indptr))
    values = (dinv[rows] * dinv[a.indices]).astype(np.float32)
    with warnings.catch_warnings():  # "CSR support is in beta": known, and the invariants hold by construction
        warnings.simplefilter("ignore", UserWarning)
        adj = torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(values),
            size=(n, n),
            dtype=torch.float32,
            device="cpu",  # built on the host from scipy's arrays, then moved in one copy
            check_invariants=False,
        )
    return adj.to(device)


class _SymmetricSpMM(torch.autograd.Function):
    """y = adj @ x with backward grad_x = adj @ grad_y, valid ONLY because adj is symmetric (adj^T = adj)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj  # the adjacency is a constant: no gradient, no need for save_for_backward
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adj, grad.contiguous())


def propagate(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """adj @ x, differentiable in x, for a SYMMETRIC sparse adj (CSR or COO; CPU or CUDA).

    The backward pass multiplies by adj again instead of its transpose, so passing a non-symmetric matrix
    gives wrong gradients silently. All normalised adjacencies built here are symmetric.
    """
    if not x.requires_grad:
        return torch.sparse.mm(adj, x)
    return _SymmetricSpMM.apply(adj, x)


@dataclass
class GraphContext:
    """One training graph: its edges, normalised adjacency and per-user positive items, on one device.

    `user_items` is a scipy CSR (n_users x n_items, sorted columns) used for negative sampling and masking.
    """

    n_users: int
    n_items: int
    edges: np.ndarray
    adj: torch.Tensor
    device: torch.device | str = "cpu"
    user_items: sp.csr_matrix | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.user_items is None:
            self.user_items = user_item_csr(self.edges, self.n_users, self.n_items)

    @classmethod
    def from_edges(cls, edges: np.ndarray, n_users: int, n_items: int, device="cpu") -> GraphContext:
        edges = check_edges(edges, n_users, n_items)
        return cls(
            n_users=n_users,
            n_items=n_items,
            edges=edges,
            adj=normalized_adjacency(edges, n_users, n_items, device),
            device=torch.device(device),
        )

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items

    def dropped_adjacency(self, keep: float, generator: torch.Generator) -> torch.Tensor:
        """Normalised adjacency of a random edge subset (each edge kept with prob `keep`): SGL's dropout view.

        The draw uses `generator` (a CPU generator) so views are reproducible; the graph is renormalised
        after dropping, as in SGL's edge dropout.
        """
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        mask = torch.rand(len(self.edges), generator=generator, device="cpu").numpy() < keep  # drawn on the host
        return normalized_adjacency(self.edges[mask], self.n_users, self.n_items, self.device)
