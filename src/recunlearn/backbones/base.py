"""The common backbone: one learned table E0, propagation over a normalised adjacency, BPR + L2 (+ SSL) loss.

Why E0 is the only weight and `propagate` takes any (e0, adj): UnlearnRec is model-agnostic because it only
rewrites the initial table and reruns the unchanged backbone on the remaining graph. So every backbone must be
a pure function of (e0, adj) plus its own hyperparameters, and its loss must be computed from the e0 argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from recunlearn.graph.adjacency import GraphContext, propagate

__all__ = ["Backbone", "layer_stack", "apply_readout", "info_nce", "READOUTS"]

# readout name -> which layers enter and how they combine
READOUTS = ("sum", "mean", "mean_1_to_L")


def layer_stack(
    e0: torch.Tensor,
    adj: torch.Tensor,
    layers: int,
    perturb: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """[E^0, E^1, ..., E^L] with E^l = adj @ E^(l-1) (then `perturb(E^l)` if given, SimGCL's noise)."""
    out = [e0]
    x = e0
    for _ in range(layers):
        x = propagate(adj, x)
        if perturb is not None:
            x = perturb(x)
        out.append(x)
    return out


def apply_readout(stack: list[torch.Tensor], readout: str) -> torch.Tensor:
    """Combine a layer stack: "sum" of 0..L, "mean" of 0..L, or "mean_1_to_L" (layer 0 excluded).

    Accumulates with adds instead of torch.stack: no (L+1) x N x d copy (docs/decisions.md).
    """
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; choose one of {READOUTS}")
    used = stack[1:] if readout == "mean_1_to_L" else stack
    if not used:
        raise ValueError("readout mean_1_to_L needs at least one layer")
    out = used[0]
    for x in used[1:]:
        out = out + x
    return out if readout == "sum" else out / len(used)


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE between two views of the same rows: row k of `a` should match row k of `b` among all rows of b."""
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.T / tau
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


class Backbone(nn.Module):
    """Base class of the GNN recommenders. Subclasses set `name`, `readout` and, for SSL, `ssl_loss`.

    A backbone's settings are its fragment's, `schemas/backbones/<name>.yaml` (dim, layers, l2 shared by all, then
    its own), passed as keyword arguments without defaults: `build_backbone` completes them from the fragment.
    A subclass stores its own settings as attributes and in `self.settings` (what a checkpoint stores to rebuild
    the model, besides dim, layers and l2).
    """

    name: ClassVar[str] = "base"
    readout: str = "sum"

    def __init__(self, n_users: int, n_items: int, *, dim: int, layers: int, l2: float, seed: int):
        """
        Args:
            n_users: number of users (rows 0..n_users-1 of E0).
            n_items: number of items (the rows after the users).
            dim: embedding width.
            layers: propagation steps L.
            l2: weight of the L2 penalty on the batch's rows of E0.
            seed: seed of the Xavier initialisation of E0.
        """
        super().__init__()
        if layers < 0 or dim <= 0:
            raise ValueError(f"{self.name}: need dim > 0 and layers >= 0, got dim={dim}, layers={layers}")
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.dim, self.layers, self.l2, self.seed = int(dim), int(layers), float(l2), int(seed)
        self.settings: dict = {}
        if self.readout not in READOUTS:
            raise ValueError(f"{self.name}: unknown readout {self.readout!r}; choose one of {READOUTS}")
        # Xavier-uniform per block (user table, item table), like the separate tables of the authors' code.
        gen = torch.Generator().manual_seed(self.seed)
        users = nn.init.xavier_uniform_(torch.empty(self.n_users, self.dim), generator=gen)
        items = nn.init.xavier_uniform_(torch.empty(self.n_items, self.dim), generator=gen)
        self.embedding = nn.Parameter(torch.cat([users, items]))

    # ---- configuration -------------------------------------------------------------------------------
    def config(self) -> dict:
        """Everything needed to rebuild this backbone (shape + hyperparameters), JSON-serialisable."""
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dim": self.dim,
            "layers": self.layers,
            "l2": self.l2,
            "seed": self.seed,
            "readout": self.readout,
            "settings": dict(self.settings),
        }

    # ---- propagation ---------------------------------------------------------------------------------
    def propagate(self, e0: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Final (N x dim) embeddings from any initial table `e0` over any normalised adjacency `adj`."""
        return apply_readout(layer_stack(e0, adj, self.layers), self.readout)

    def forward(self, adj: torch.Tensor) -> torch.Tensor:
        return self.propagate(self.embedding, adj)

    def split(self, final: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return final[: self.n_users], final[self.n_users :]

    def score(self, final: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Inner products of the final embeddings of paired (users[k], items[k])."""
        return (final[users] * final[self.n_users + items]).sum(-1)

    # ---- training ------------------------------------------------------------------------------------
    def start_epoch(self, ctx: GraphContext, generator: torch.Generator) -> None:
        """Per-epoch state hook (SGL redraws its dropped views, SimGCL reseeds its noise). Default: nothing."""

    def ssl_loss(
        self, e0: torch.Tensor, ctx: GraphContext, users: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor | None:
        """Self-supervised term (already weighted) for the batch's unique users/items; None if the backbone has none."""
        return None

    def loss(
        self,
        e0: torch.Tensor,
        ctx: GraphContext,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        final: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The backbone's training loss on a batch: BPR + L2 (+ weighted SSL), all computed from `e0`.

        L2 = l2 * 0.5 * ||rows of e0 used by the batch||^2 / batch size (the LightGCN convention: it acts on the
        initial embeddings, not on the propagated ones). Pass `final` = self.propagate(e0, ctx.adj) if the caller
        already has it (e.g. for extra loss terms), so a step costs one main propagation.

        Args:
            e0: (n_users + n_items, dim) initial table the loss is computed from (need not be `self.embedding`).
            ctx: the training graph; its `adj` is propagated over and SSL views are drawn from it.
            users: (B,) user ids of the batch.
            pos: (B,) item ids (0-based, not offset by n_users) of each user's positive.
            neg: (B,) item ids of each user's sampled negative.
            final: (n_users + n_items, dim) `self.propagate(e0, ctx.adj)` if already computed; None: computed here.

        Returns the total loss (a scalar tensor) and its parts as detached 0-dim tensors on the loss's device
        ("bpr", "l2", "ssl" if any, "loss"): reading them is left to the caller, once per epoch (`LossMeter`).
        """
        if final is None:
            final = self.propagate(e0, ctx.adj)
        # one gather (and so one scatter in backward) for all three roles instead of three
        b = len(users)
        rows = torch.cat([users, self.n_users + pos, self.n_users + neg])
        u_emb, p_emb, n_emb = final[rows].split(b)
        margin = (u_emb * (p_emb - n_emb)).sum(-1)
        bpr = F.softplus(-margin).mean()  # = -log sigmoid(margin), numerically stable
        reg = self.l2 * 0.5 * e0[rows].pow(2).sum() / b
        total = bpr + reg
        parts = {"bpr": bpr.detach(), "l2": reg.detach()}
        ssl = self.ssl_loss(e0, ctx, torch.unique(users), torch.unique(pos))
        if ssl is not None:
            total = total + ssl
            parts["ssl"] = ssl.detach()
        parts["loss"] = total.detach()
        return total, parts
