"""Name -> backbone class. Adding a backbone = one new module with `@register` + one import in models/__init__."""
from __future__ import annotations

from recunlearn.models.base import Backbone

__all__ = ["BACKBONES", "register", "build_backbone"]

BACKBONES: dict[str, type[Backbone]] = {}


def register(cls: type[Backbone]) -> type[Backbone]:
    """Class decorator: make `cls` buildable by its `name`. Registering two classes under one name is an error."""
    if cls.name in BACKBONES and BACKBONES[cls.name] is not cls:
        raise ValueError(f"backbone name {cls.name!r} registered twice")
    BACKBONES[cls.name] = cls
    return cls


def build_backbone(name: str, n_users: int, n_items: int, settings: dict | None = None, seed: int = 0) -> Backbone:
    """Instantiate a registered backbone. `settings` holds dim/layers/l2 and the backbone's own keys."""
    import recunlearn.models  # noqa: F401  (importing the package registers the built-in backbones)

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}")
    settings = dict(settings or {})
    if settings.pop("seed", seed) != seed:
        raise ValueError(f"settings carry a seed that disagrees with seed={seed}")
    return BACKBONES[name](n_users, n_items, seed=seed, **settings)
