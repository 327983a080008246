"""Process set-up shared by every stage that runs a model: threads, device and deterministic mode."""

from __future__ import annotations

import torch


def configure_torch(cfg: dict) -> torch.device:
    """Threads, device and deterministic mode; every command that runs a model calls this first.

    Turning deterministic mode on here matters for timing: its first call imports part of torch's compiler stack,
    which would otherwise land inside the first timed block of a stage (a method's unlearning time); the cost is
    in docs/decisions.md, section "Stages and runtime".
    """
    torch.set_num_threads(cfg["threads"])
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device(cfg["device"])
