"""GNNDelete (Cheng et al., "GNNDelete: A General Strategy for Unlearning in Graph Neural Networks", ICLR 2023).

The backbone stays frozen. Between its propagation layers sit small learned deletion operators: after layer l,
the representations of the nodes within l hops of a deleted edge's endpoints go through a linear map W_l
(d x d); every other node passes unchanged. Only W_1..W_L are trained, with

    L = lambda_dec * L_DEC + (1 - lambda_dec) * L_NI

- Deleted Edge Consistency (L_DEC): the deleted edges' scores should look like those of random non-edges:
  MSE between each deleted edge's score and the score of a random non-edge under the frozen backbone on the
  remaining graph (a fixed target, as in the authors' node-embedding trainer).
- Neighbourhood Influence (L_NI): the local nodes other than the deleted edges' endpoints keep the
  representations the frozen backbone gives them on the remaining graph: MSE at every layer.

Why these choices here:
- The model runs on the remaining graph, like every method in this project, and W_l starts at the IDENTITY
  (the authors start from ones/1000): before training the output is exactly the "none" row (frozen backbone on
  the remaining graph), so whatever GNNDelete adds over that row is the operators' own work.
- The operator acts between layers, so the propagation is re-run here from the backbone's `layer_stack`
  pieces (`propagate` per layer, then `apply_readout`); the readout is the backbone's own.
- Neighbourhoods are taken in the original training graph (the paper's k-hop subgraph of the deleted edges).
  In dense bipartite graphs two or three hops cover most nodes: the operators then act almost everywhere, and
  L_NI is what keeps the rest in place.
- Both terms are made relative, so that lambda_dec trades like against like: L_DEC is divided by its value at
  the identity (1 = nothing forgotten yet), L_NI is the squared change of the kept nodes' layer representations
  divided by their squared norm (0.1 = they moved by ~30%). Raw, L_DEC is in squared score units and dwarfs an
  embedding MSE (docs/decisions.md), which silently switched L_NI off at the paper's lambda_dec = 0.5.
- Full-batch: one step = one operated propagation of the remaining graph (no sampling).

Settings: `schemas/methods/gnndelete.yaml`.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone, apply_readout
from recunlearn.graph.adjacency import normalized_adjacency, propagate, user_item_csr
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["GNNDelete", "hop_masks", "operated_stack"]


def hop_masks(edges: np.ndarray, request: np.ndarray, n_users: int, n_items: int, hops: int) -> list[np.ndarray]:
    """Boolean node masks [S^1, ..., S^hops]: nodes within l hops (in the graph of `edges`) of a request endpoint.

    Args:
        edges: (E, 2) (user, item) pairs of the graph the hops are counted in (the original training graph).
        request: (R, 2) deleted (user, item) pairs whose endpoints are hop 0.
        n_users: number of users (node ids 0..n_users-1).
        n_items: number of items (node ids n_users + item).
        hops: number of masks to return (the backbone's layer count L).

    Each mask is a (n_users + n_items,) bool array over the users-then-items node ids; S^l contains S^(l-1).
    """
    r = user_item_csr(edges, n_users, n_items)
    adj = sp.bmat([[None, r], [r.T, None]], format="csr")
    reach = np.zeros(n_users + n_items, dtype=bool)
    reach[request[:, 0]] = True
    reach[n_users + request[:, 1]] = True
    masks = []
    for _ in range(hops):
        reach = reach | (adj @ reach.astype(np.float32) > 0)
        masks.append(reach.copy())
    return masks


def operated_stack(
    e0: torch.Tensor, adj: torch.Tensor, operators: list[torch.Tensor], local: list[torch.Tensor]
) -> list[torch.Tensor]:
    """[E^0, ..., E^L] where after each propagation the rows `local[l]` are replaced by rows @ operators[l]."""
    out, x = [e0], e0
    for weight, rows in zip(operators, local):
        x = propagate(adj, x)
        x = x.index_put((rows,), x[rows] @ weight)
        out.append(x)
    return out


def _pair_scores(final: torch.Tensor, pairs: torch.Tensor, n_users: int) -> torch.Tensor:
    return (final[pairs[:, 0]] * final[n_users + pairs[:, 1]]).sum(-1)


class GNNDelete(UnlearningMethod):
    name = "gnndelete"

    def run(
        self, backbone: Backbone, trained_on: np.ndarray, request: np.ndarray, remaining: np.ndarray, seed: int, device
    ) -> tuple[torch.Tensor, dict, dict]:
        """Train the operators; return (final N x d embeddings, info, timings).

        Args:
            backbone: the frozen trained backbone (its E0, layers and readout are used, never modified).
            trained_on: (E, 2) the original training edges (the graph neighbourhoods are taken in).
            request: (R, 2) the edges to forget (any shape reshapeable to (R, 2)).
            remaining: (E - R, 2) trained_on minus request: the graph the model runs on.
            seed: seed of the random non-edges behind the L_DEC target.
            device: where the propagation and training run (anything `torch.device` accepts).
        """
        s, device = self.settings, torch.device(device)
        n_users, n_items, layers = backbone.n_users, backbone.n_items, backbone.layers
        start = time.perf_counter()
        request = np.asarray(request, dtype=np.int64).reshape(-1, 2)
        adj = normalized_adjacency(remaining, n_users, n_items, device)
        e0 = backbone.embedding.detach().to(device)
        masks = hop_masks(trained_on, request, n_users, n_items, layers)
        endpoints = np.zeros(n_users + n_items, dtype=bool)
        endpoints[request[:, 0]] = True
        endpoints[n_users + request[:, 1]] = True
        local = [torch.from_numpy(np.flatnonzero(m)).to(device) for m in masks]
        keep = [torch.from_numpy(np.flatnonzero(m & ~endpoints)).to(device) for m in masks]
        with torch.no_grad():  # the targets: frozen backbone on the remaining graph (= operators at identity)
            ref_stack = operated_stack(e0, adj, [torch.eye(backbone.dim, device=device)] * layers, local)
            ref_final = apply_readout(ref_stack, backbone.readout)
            non_edges = sample_non_edges(n_users, n_items, [trained_on], len(request), seed)
            non_edges = torch.from_numpy(non_edges).to(device)
            target = _pair_scores(ref_final, non_edges, n_users)
            deleted = torch.from_numpy(request).to(device)
            dec_scale = F.mse_loss(_pair_scores(ref_final, deleted, n_users), target).clamp_min(1e-12)
            ni_scale = sum(ref_stack[l + 1][keep[l]].pow(2).sum() for l in range(layers)) + 1e-12
        operators = [torch.eye(backbone.dim, device=device).requires_grad_(True) for _ in range(layers)]
        opt = torch.optim.Adam(operators, lr=s["lr"]) if layers else None
        t_setup = time.perf_counter()
        history = []
        for _ in range(s["epochs"] if layers else 0):  # no layer, no operator to train
            stack = operated_stack(e0, adj, operators, local)
            final = apply_readout(stack, backbone.readout)
            dec = F.mse_loss(_pair_scores(final, deleted, n_users), target) / dec_scale
            ni = sum((stack[l + 1][keep[l]] - ref_stack[l + 1][keep[l]]).pow(2).sum() for l in range(layers)) / ni_scale
            loss = s["lambda_dec"] * dec + (1.0 - s["lambda_dec"]) * ni
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append({"dec": float(dec.detach()), "ni": float(ni.detach())})
        with torch.no_grad():
            final = apply_readout(operated_stack(e0, adj, operators, local), backbone.readout)
        end = time.perf_counter()
        info = {
            "local_nodes": [int(m.sum()) for m in masks],
            "epochs": s["epochs"],
            "first": history[0] if history else None,
            "last": history[-1] if history else None,
        }
        return final.detach(), info, {"setup_s": t_setup - start, "train_s": end - t_setup}

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o = task.original
        start = time.perf_counter()
        final, info, timings = self.run(o.backbone, o.trained_on, task.request, task.remaining, o.seed, o.device)
        users, items = o.backbone.split(final)
        return {self.name: Unlearned(users, items, time.perf_counter() - start, timings=timings, info=info)}
