"""Process set-up shared by every stage that runs a model: threads, device and deterministic mode."""

from __future__ import annotations

import torch

from recunlearn.backbones.trainer import set_deterministic_algorithms


def configure_torch(cfg: dict) -> torch.device:
    """Threads, device and deterministic mode (warn-only); every command that runs a model calls this first."""
    torch.set_num_threads(cfg["threads"])
    set_deterministic_algorithms(True, warn_only=True)
    return torch.device(cfg["device"])


def run_conditions(cfg: dict) -> dict:
    """What every metrics file records about where its figures were measured: the torch device and threads.
    Seconds from a CPU and a GPU, or from 1 and 2 threads, are not comparable; the file says which it was."""
    return {"device": str(torch.device(cfg["device"])), "threads": cfg["threads"]}
