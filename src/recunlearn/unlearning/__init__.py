"""Unlearning methods behind one interface (`base.py`); the explicit imports below are the registry.

Adding a method: one module here, one schema fragment (`schemas/methods/<name>.yaml`: its settings, their
defaults and whether it needs preparation) and one entry in `METHODS`.
"""

from __future__ import annotations

from recunlearn import components
from recunlearn.unlearning.base import UnlearningMethod
from recunlearn.unlearning.d2dgn import D2DGN
from recunlearn.unlearning.finetune import FineTune
from recunlearn.unlearning.gif import GIF
from recunlearn.unlearning.gnndelete import GNNDelete
from recunlearn.unlearning.ifru import IFRU
from recunlearn.unlearning.none import NoUnlearning
from recunlearn.unlearning.receraser import RecEraser
from recunlearn.unlearning.reverse_bpr import ReverseBPR
from recunlearn.unlearning.scif import SCIF
from recunlearn.unlearning.sisa import SISA
from recunlearn.unlearning.unlearnrec import UnlearnRec

__all__ = ["METHODS", "build_method", "method_class"]

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls
    for cls in (NoUnlearning, UnlearnRec, FineTune, ReverseBPR, GIF, SISA, RecEraser, GNNDelete, D2DGN, SCIF, IFRU)
}


def method_class(name: str, settings: dict | None = None) -> type[UnlearningMethod]:
    """The class behind a method name. A name that is not registered may be an alias defined in the config:
    `method_settings.<alias>: {base: <registered method>, ...overrides}` (used for ablations)."""
    return METHODS[components.method_base({"method_settings": {name: settings or {}}}, name)]


def build_method(name: str, settings: dict | None = None) -> UnlearningMethod:
    """An instance of the method (or alias) `name`; `settings` (the config's `method_settings.<name>`, or any
    overrides of the fragment's defaults) are validated naming `method_settings.<name>`, the alias if it is one."""
    cls = method_class(name, settings)
    own = {k: v for k, v in (settings or {}).items() if k != "base"}
    return cls(components.complete("methods", cls.name, own, where=f"method_settings.{name}"))
