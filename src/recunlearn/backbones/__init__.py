"""GNN recommender backbones (LightGCN, SGL, SimGCL): a table E0 propagated over a graph given per call.

The explicit imports below are the registry: adding a backbone is one module, one schema fragment
(`schemas/backbones/<name>.yaml`) and one line in `BACKBONES`.
"""

from __future__ import annotations

from recunlearn import components
from recunlearn.backbones.base import Backbone
from recunlearn.backbones.lightgcn import LightGCN
from recunlearn.backbones.sgl import SGL
from recunlearn.backbones.simgcl import SimGCL

__all__ = ["BACKBONES", "Backbone", "LightGCN", "SGL", "SimGCL", "build_backbone"]

BACKBONES: dict[str, type[Backbone]] = {cls.name: cls for cls in (LightGCN, SGL, SimGCL)}


def build_backbone(name: str, n_users: int, n_items: int, settings: dict | None = None, seed: int = 0) -> Backbone:
    """Instantiate a backbone by name. `settings` (the config's `backbone_settings.<name>`, or any overrides of
    its fragment's defaults) are completed and validated from `schemas/backbones/<name>.yaml`; a bad one raises
    ConfigError naming `backbone_settings.<name>.<key>`.

    Args:
        name: registry name of the backbone, a key of `BACKBONES` ("lightgcn", "sgl", "simgcl").
        n_users: number of users (the first n_users rows of E0).
        n_items: number of items (the rows of E0 after the users).
        settings: the backbone's settings or overrides of its fragment's defaults; None: all defaults. A "seed"
            key, if present, must equal `seed`.
        seed: seed of the backbone (E0 initialisation and, for SGL/SimGCL, the fallback view/noise generators).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}")
    settings = dict(settings or {})
    if settings.pop("seed", seed) != seed:
        raise ValueError(f"settings carry a seed that disagrees with seed={seed}")
    return BACKBONES[name](n_users, n_items, seed=seed, **components.backbone_settings(name, settings))
