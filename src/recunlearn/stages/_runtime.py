"""Process set-up shared by every stage that runs a model."""
from __future__ import annotations

import torch


def configure_torch(cfg: dict) -> torch.device:
    """Threads, device and deterministic mode; every command that runs a model calls this first.

    Turning deterministic mode on here matters for timing: its first call imports torch's compiler stack
    (5-7 s), which would otherwise land inside the first timed block of a stage (a method's unlearning time).
    """
    torch.set_num_threads(cfg["threads"])
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device(cfg["device"])
