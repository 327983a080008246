"""Checkpoints that hold only tensors and plain metadata (never the data handler or optimiser).

Why: the original code pickled the whole data handler with the model (large and slow to save). Here a
checkpoint is {format, backbone config, embedding tensor, meta}; it loads with `weights_only=True` (no arbitrary
code on load) and is written atomically, so a killed run never leaves a truncated file that looks valid.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.base import Backbone
from recunlearn.errors import DataError
from recunlearn.io import atomic_path

__all__ = ["save_checkpoint", "load_checkpoint", "data_fingerprint"]

FORMAT = 1


def data_fingerprint(edges: np.ndarray) -> str:
    """sha256 hex digest of the interactions as a C-contiguous int64 array (so dtype/layout don't matter)."""
    return hashlib.sha256(np.ascontiguousarray(edges, dtype=np.int64).tobytes()).hexdigest()


def save_checkpoint(path: str | os.PathLike, backbone: Backbone, meta: dict) -> None:
    """Save the backbone's config and embedding (moved to CPU) plus `meta` (plain Python values only)."""
    payload = {
        "format": FORMAT,
        "backbone": backbone.config(),
        "state": {"embedding": backbone.embedding.detach().cpu().clone()},
        "meta": dict(meta),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, device="cpu") -> tuple[Backbone, dict]:
    """Rebuild the backbone on `device`; return it with the saved meta (plus "backbone": its config)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # truncated or not a checkpoint at all
        raise DataError(f"checkpoint {path} cannot be read: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"checkpoint {path} has an unknown format")
    cfg = payload["backbone"]
    settings = {"dim": cfg["dim"], "layers": cfg["layers"], "l2": cfg["l2"], **cfg["settings"]}
    backbone = build_backbone(cfg["name"], cfg["n_users"], cfg["n_items"], settings, seed=cfg["seed"])
    emb = payload["state"]["embedding"]
    if emb.shape != backbone.embedding.shape:
        raise DataError(f"checkpoint {path}: embedding shape {tuple(emb.shape)} does not match its config")
    with torch.no_grad():
        backbone.embedding.copy_(emb)
    backbone.to(device)
    return backbone, {**payload["meta"], "backbone": cfg}
