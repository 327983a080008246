"""LightGCN: E^l = Â E^(l-1), no transforms or non-linearities; BPR + L2 on E0.

Readout "sum" of layers 0..L is the default because the authors' UnlearnRec code sums; the LightGCN paper's
"mean" is a setting (`readout: mean`). Score scales differ between the two, so reports name the readout.
Settings: `schemas/backbones/lightgcn.yaml`.
"""

from __future__ import annotations

from recunlearn.backbones.base import READOUTS, Backbone


class LightGCN(Backbone):
    name = "lightgcn"

    def __init__(self, n_users: int, n_items: int, *, dim: int, layers: int, l2: float, readout: str, seed: int):
        """Settings as in `schemas/backbones/lightgcn.yaml`.

        Args:
            n_users: number of users (rows 0..n_users-1 of E0).
            n_items: number of items (the rows after the users).
            dim: embedding width.
            layers: propagation steps L.
            l2: weight of the L2 penalty on the batch's rows of E0.
            readout: how layers 0..L combine, "sum" (the authors' code) or "mean" (the LightGCN paper).
            seed: seed of the Xavier initialisation of E0.
        """
        if readout not in ("sum", "mean"):
            raise ValueError(f"lightgcn readout must be 'sum' or 'mean' (of {READOUTS}), got {readout!r}")
        super().__init__(n_users, n_items, dim=dim, layers=layers, l2=l2, seed=seed)
        self.readout = readout
        self.settings = {"readout": readout}
