"""Unlearning methods behind one interface (`base.py`); the explicit imports below are the registry.

Adding a method: one module here, one schema fragment (`schemas/methods/<name>.yaml`) and one entry in `METHODS`.
"""
from __future__ import annotations

from recunlearn.errors import ConfigError
from recunlearn.unlearning.base import UnlearningMethod
from recunlearn.unlearning.d2dgn import D2DGN
from recunlearn.unlearning.finetune import FineTune
from recunlearn.unlearning.gif import GIF
from recunlearn.unlearning.gnndelete import GNNDelete
from recunlearn.unlearning.none import NoUnlearning
from recunlearn.unlearning.receraser import RecEraser
from recunlearn.unlearning.reverse_bpr import ReverseBPR
from recunlearn.unlearning.sisa import SISA
from recunlearn.unlearning.unlearnrec import UnlearnRec

__all__ = ["METHODS", "build_method", "method_class"]

METHODS: dict[str, type[UnlearningMethod]] = {cls.name: cls for cls in (
    NoUnlearning, UnlearnRec, FineTune, ReverseBPR, GIF, SISA, RecEraser, GNNDelete, D2DGN)}


def method_class(name: str, settings: dict | None = None) -> type[UnlearningMethod]:
    """The class behind a method name. A name that is not registered may be an alias defined in the config:
    `method_settings.<alias>: {base: <registered method>, ...overrides}` (used for ablations)."""
    if name in METHODS:
        return METHODS[name]
    base = (settings or {}).get("base")
    if base is None:
        raise ConfigError(f"methods: unknown unlearning method '{name}' (known: {', '.join(sorted(METHODS))}; "
                          f"an alias needs method_settings.{name}.base)")
    if base not in METHODS:
        raise ConfigError(f"method_settings.{name}.base: unknown unlearning method '{base}' "
                          f"(known: {', '.join(sorted(METHODS))})")
    return METHODS[base]


def build_method(name: str, settings: dict | None = None) -> UnlearningMethod:
    """An instance of the method (or alias) `name` with its settings resolved against the class defaults."""
    cls = method_class(name, settings)
    own = {k: v for k, v in (settings or {}).items() if k != "base"}
    try:
        return cls(own)
    except ConfigError as exc:
        if name != cls.name:  # name the alias the user wrote, not its base
            raise ConfigError(str(exc).replace(f"method_settings.{cls.name}", f"method_settings.{name}")) from None
        raise
