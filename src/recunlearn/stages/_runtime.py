"""Process set-up shared by every stage that runs a model: threads, device and deterministic mode."""

from __future__ import annotations

import torch

from recunlearn.backbones.trainer import set_deterministic_algorithms


def configure_torch(cfg: dict) -> torch.device:
    """Threads, device and deterministic mode (warn-only); every command that runs a model calls this first."""
    torch.set_num_threads(cfg["threads"])
    set_deterministic_algorithms(True, warn_only=True)
    return torch.device(cfg["device"])
