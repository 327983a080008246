"""Loss bookkeeping that stays on the device: each step's loss parts are summed as tensors, read once per epoch.

Why: reading a scalar off a GPU (`float(t)`, `t.item()`) waits for every queued kernel, so one read per step
would make the host wait for the device at every step. The sums are float64 and start from each part's exact
value, so the means equal those of the same floats summed on the host, bit for bit.
"""

from __future__ import annotations

import torch

__all__ = ["LossMeter"]


class LossMeter:
    """Running sums of named scalar tensors over steps; `means()` is the only host read."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0

    def add(self, parts: dict[str, torch.Tensor]) -> None:
        """Add one step's parts (0-dim tensors on any one device); they are detached here."""
        for key, value in parts.items():
            value = value.detach().double()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def means(self) -> dict[str, float]:
        """Each part's mean over the steps added so far, as floats ({} before the first step)."""
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = (torch.stack([self.sums[k] for k in keys]) / self.steps).tolist()
        return dict(zip(keys, values))
