"""SimGCL (Yu et al., SIGIR 2022): contrastive views made by adding small random noise at every layer.

Noise = sign(x) * normalize(U(0,1)) * eps: it keeps each coordinate's sign (the view stays in the same
hyperoctant) and has norm eps per row. Main readout: mean of layers 1..L (the SimGCL code excludes E0).
The noise generator lives on the embedding's device and is reseeded each epoch from the training generator.
Settings: `schemas/backbones/simgcl.yaml`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone, apply_readout, info_nce, layer_stack


class SimGCL(Backbone):
    name = "simgcl"
    readout = "mean_1_to_L"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        *,
        dim: int,
        layers: int,
        l2: float,
        eps: float,
        ssl_weight: float,
        tau: float,
        seed: int,
    ):
        """Settings as in `schemas/backbones/simgcl.yaml`.

        Args:
            n_users: number of users (rows 0..n_users-1 of E0).
            n_items: number of items (the rows after the users).
            dim: embedding width.
            layers: propagation steps L.
            l2: weight of the L2 penalty on the batch's rows of E0.
            eps: norm of the noise added to each row at every layer of a view.
            ssl_weight: weight of the InfoNCE term in the training loss.
            tau: InfoNCE temperature (> 0).
            seed: seed of the Xavier initialisation of E0; seed + 1 seeds the noise until the first epoch reseeds it.
        """
        super().__init__(n_users, n_items, dim=dim, layers=layers, l2=l2, seed=seed)
        self.eps, self.ssl_weight, self.tau = eps, ssl_weight, tau
        self.settings = {"eps": eps, "ssl_weight": ssl_weight, "tau": tau}
        self._noise_seed = self.seed + 1
        self._noise_gen: torch.Generator | None = None

    def start_epoch(self, ctx, generator: torch.Generator) -> None:
        self._noise_seed = int(torch.randint(0, 2**62, (1,), generator=generator, device="cpu"))  # a host draw
        self._noise_gen = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._noise_gen is None or self._noise_gen.device != device:
            self._noise_gen = torch.Generator(device=device).manual_seed(self._noise_seed)
        return self._noise_gen

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.rand(x.shape, generator=self._generator(x.device), device=x.device, dtype=x.dtype)
        return x + torch.sign(x) * F.normalize(u, dim=-1) * self.eps

    def ssl_loss(self, e0, ctx, users, items):
        v1, v2 = (
            apply_readout(layer_stack(e0, ctx.adj, self.layers, perturb=self._noisy), self.readout) for _ in range(2)
        )
        u1, i1 = self.split(v1)
        u2, i2 = self.split(v2)
        return self.ssl_weight * (info_nce(u1[users], u2[users], self.tau) + info_nce(i1[items], i2[items], self.tau))
