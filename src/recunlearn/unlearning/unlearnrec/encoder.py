"""The Influence Encoder (IE) of UnlearnRec (docs/method.md, "The Influence Encoder (IE)"): request -> Ẽ0.

    Â_del      normalised bipartite adjacency of the request edges alone (the influence dependency matrix)
    H^0 = H0 (learned per node, init 0),   H^l = Â_del H^(l-1),   H̄ = H^0 + ... + H^L
    W^0 = diag(η) Ē (η learned per node, init `eta_init`; Ē frozen original final embeddings),
    W^l = Â_del W^(l-1),   W̄ = W^L
    ΔE0 = H̄ − α W̄,   Ẽ0 = E0 + MLP(ΔE0)   (MLP: 2 x [Linear initialised to identity, bias 0, LeakyReLU])

Why everything is computed on the request's own nodes: Â_del has non-zero rows and columns only for nodes
touched by the request, so W^l and H^l (l >= 1) vanish elsewhere. The sum H̄ also contains H^0 = H0 itself,
which is a table over all N nodes; we restrict it to the touched nodes too (decision, see `RequestGraph`), so the
influence of a request lives only on the nodes it touches and a forward pass costs a few sparse products of
size |request|, not N. Untouched rows of Ẽ0 are then exactly E0.

Exactness: with H0 = 0 and η = 0, ΔE0 is exactly 0; a Linear with zero bias maps 0 to 0 and LeakyReLU(0) = 0,
so Ẽ0 == E0 bit for bit (adding +0.0 never changes a float).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from recunlearn.backbones.base import Backbone
from recunlearn.graph.adjacency import normalized_adjacency, propagate

__all__ = ["InfluenceEncoder", "RequestGraph", "build_encoder"]


@dataclass
class RequestGraph:
    """Â_del restricted to the m nodes the request touches, in local ids.

    `nodes[k]` is the global node id of local node k: first the request's unique users, then n_users + its
    unique items. `adj` is the (m x m) symmetric normalised adjacency of the request edges in these local ids;
    degrees count request edges only, so it equals the corresponding block of the global Â_del.
    """

    nodes: torch.Tensor  # (m,) int64 global node ids
    adj: torch.Tensor  # (m x m) sparse CSR
    local_edges: np.ndarray  # (E_del, 2) (local user, local item) ids, for edge-dropped views
    n_local_users: int
    n_local_items: int
    device: torch.device

    @classmethod
    def build(cls, request_edges: np.ndarray, n_users: int, device="cpu") -> RequestGraph:
        edges = np.unique(np.asarray(request_edges, dtype=np.int64).reshape(-1, 2), axis=0)
        if len(edges) == 0:
            raise ValueError("an unlearning request needs at least one edge")
        users, lu = np.unique(edges[:, 0], return_inverse=True)
        items, li = np.unique(edges[:, 1], return_inverse=True)
        local = np.stack([lu, li], axis=1).astype(np.int64)
        nodes = torch.from_numpy(np.concatenate([users, n_users + items])).to(device)
        adj = normalized_adjacency(local, len(users), len(items), device)
        return cls(nodes, adj, local, len(users), len(items), torch.device(device))

    @property
    def n_local(self) -> int:
        return self.n_local_users + self.n_local_items

    def dropped_adjacency(self, keep: float, generator: torch.Generator) -> torch.Tensor:
        """Â_del over a random subset of the request edges (each kept with prob `keep`), renormalised."""
        mask = torch.rand(len(self.local_edges), generator=generator, device="cpu").numpy() < keep  # on the host
        return normalized_adjacency(self.local_edges[mask], self.n_local_users, self.n_local_items, self.device)

    def to_local(self, global_nodes: torch.Tensor) -> torch.Tensor:
        """Local ids of those `global_nodes` the request touches (others are dropped)."""
        pos = torch.searchsorted(self.nodes, global_nodes)  # nodes are sorted: users < n_users <= items
        pos = pos.clamp(max=len(self.nodes) - 1)
        return pos[self.nodes[pos] == global_nodes]


class InfluenceEncoder(nn.Module):
    """Learned per-node influence table H0, withdraw rates η and an identity-initialised MLP.

    H0 and η are shared by every request: pre-training on many simulated requests is what makes them generalise
    to an unseen real one. `freeze_mlp` (as in the authors' pre-training) keeps the MLP at identity. The keyword
    arguments are UnlearnRec's settings (`schemas/methods/unlearnrec.yaml`; `build_encoder` passes them).

    Args:
        n_users: number of users.
        n_items: number of items.
        dim: embedding width d.
        layers: propagation steps L over Â_del (`ie_layers`).
        alpha: weight of the withdraw term W̄ in ΔE0.
        eta_init: initial per-node withdraw rate η.
        leaky_slope: LeakyReLU slope of the MLP.
        freeze_mlp: keep the MLP at the identity while training.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        *,
        layers: int,
        alpha: float,
        eta_init: float,
        leaky_slope: float,
        freeze_mlp: bool,
    ):
        super().__init__()
        self.n_users, self.n_items, self.dim = int(n_users), int(n_items), int(dim)
        self.layers, self.alpha = int(layers), float(alpha)
        n = self.n_users + self.n_items
        self.h0 = nn.Parameter(torch.zeros(n, self.dim))
        self.eta = nn.Parameter(torch.full((n,), float(eta_init)))
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim), nn.LeakyReLU(leaky_slope), nn.Linear(dim, dim), nn.LeakyReLU(leaky_slope)
        )
        self.reset_mlp()
        self.freeze_mlp = freeze_mlp

    def reset_mlp(self) -> None:
        with torch.no_grad():
            for layer in self.mlp:
                if isinstance(layer, nn.Linear):
                    layer.weight.copy_(torch.eye(self.dim, device=layer.weight.device))
                    layer.bias.zero_()

    @property
    def freeze_mlp(self) -> bool:
        return self._freeze_mlp

    @freeze_mlp.setter
    def freeze_mlp(self, value: bool) -> None:
        self._freeze_mlp = bool(value)
        for p in self.mlp.parameters():
            p.requires_grad_(not self._freeze_mlp)

    def request_graph(self, request_edges: np.ndarray, device=None) -> RequestGraph:
        return RequestGraph.build(request_edges, self.n_users, device or self.h0.device)

    def influence_layers(self, req: RequestGraph) -> list[torch.Tensor]:
        """[H^0, ..., H^L] on the request's local nodes (m x d each); the contrastive term reuses them."""
        out = [self.h0[req.nodes]]
        for _ in range(self.layers):
            out.append(propagate(req.adj, out[-1]))
        return out

    def withdraw(self, ebar: torch.Tensor, req: RequestGraph) -> torch.Tensor:
        """W̄ = Â_del^L diag(η) Ē on the local nodes (Ē is treated as a constant)."""
        w = self.eta[req.nodes, None] * ebar[req.nodes].detach()
        for _ in range(self.layers):
            w = propagate(req.adj, w)
        return w

    def delta(self, ebar: torch.Tensor, req: RequestGraph, h_layers: list[torch.Tensor] | None = None) -> torch.Tensor:
        """ΔE0 = H̄ − α W̄ on the local nodes (m x d); pass `h_layers` if `influence_layers` was already run."""
        h_layers = self.influence_layers(req) if h_layers is None else h_layers
        return torch.stack(h_layers).sum(0) - self.alpha * self.withdraw(ebar, req)

    def apply_delta(self, e0: torch.Tensor, delta: torch.Tensor, req: RequestGraph) -> torch.Tensor:
        """Ẽ0 = E0 + MLP(ΔE0), the MLP output scattered onto the request's rows (others stay E0 exactly)."""
        return e0.index_add(0, req.nodes, self.mlp(delta))

    def forward(self, e0: torch.Tensor, ebar: torch.Tensor, req: RequestGraph) -> torch.Tensor:
        """Ẽ0 (N x d) for request `req`, given the backbone's E0 and its full-graph final embeddings Ē."""
        return self.apply_delta(e0, self.delta(ebar, req), req)


def build_encoder(backbone: Backbone, settings: dict, state: dict | None = None, device="cpu") -> InfluenceEncoder:
    """An InfluenceEncoder shaped for `backbone` from UnlearnRec's settings, optionally loaded from a saved state.

    Its tables are made on `device` directly (torch's device context), not made on the host and copied."""
    with torch.device(device):
        enc = InfluenceEncoder(
            backbone.n_users,
            backbone.n_items,
            backbone.dim,
            layers=settings["ie_layers"],
            alpha=settings["alpha"],
            eta_init=settings["eta_init"],
            leaky_slope=settings["leaky_slope"],
            freeze_mlp=settings["freeze_mlp"],
        )
    if state is not None:
        enc.load_state_dict(state)
    return enc
