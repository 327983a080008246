"""SGL with edge dropout (Wu et al., SIGIR 2021): two randomly edge-dropped views per epoch, InfoNCE between them.

The views are redrawn in `start_epoch` (SGL's per-epoch augmentation) from the graph passed in, so when the
unlearning method trains on the remaining graph, the views are dropped versions of that graph. If `loss` meets a
graph it has no views for (a caller that skipped `start_epoch`), it draws them with its own seeded generator.
Settings: `schemas/backbones/sgl.yaml`.
"""

from __future__ import annotations

import torch

from recunlearn.backbones.base import Backbone, apply_readout, info_nce, layer_stack
from recunlearn.graph.adjacency import GraphContext


class SGL(Backbone):
    name = "sgl"
    readout = "mean"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        *,
        dim: int,
        layers: int,
        l2: float,
        keep: float,
        ssl_weight: float,
        tau: float,
        seed: int,
    ):
        """Settings as in `schemas/backbones/sgl.yaml`.

        Args:
            n_users: number of users (rows 0..n_users-1 of E0).
            n_items: number of items (the rows after the users).
            dim: embedding width.
            layers: propagation steps L.
            l2: weight of the L2 penalty on the batch's rows of E0.
            keep: probability in (0, 1] that an edge survives in each dropped view.
            ssl_weight: weight of the InfoNCE term in the training loss.
            tau: InfoNCE temperature (> 0).
            seed: seed of the Xavier initialisation of E0; seed + 1 seeds the fallback view generator.
        """
        super().__init__(n_users, n_items, dim=dim, layers=layers, l2=l2, seed=seed)
        self.keep, self.ssl_weight, self.tau = keep, ssl_weight, tau
        self.settings = {"keep": keep, "ssl_weight": ssl_weight, "tau": tau}
        self._views: tuple[torch.Tensor, torch.Tensor] | None = None
        self._views_of: GraphContext | None = None
        self._fallback = torch.Generator().manual_seed(self.seed + 1)

    def start_epoch(self, ctx: GraphContext, generator: torch.Generator) -> None:
        self._views = (ctx.dropped_adjacency(self.keep, generator), ctx.dropped_adjacency(self.keep, generator))
        self._views_of = ctx

    def ssl_loss(self, e0, ctx, users, items):
        if self._views_of is not ctx:
            self.start_epoch(ctx, self._fallback)
        v1, v2 = (apply_readout(layer_stack(e0, adj, self.layers), self.readout) for adj in self._views)
        u1, i1 = self.split(v1)
        u2, i2 = self.split(v2)
        return self.ssl_weight * (info_nce(u1[users], u2[users], self.tau) + info_nce(i1[items], i2[items], self.tau))
