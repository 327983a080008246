"""The interface every unlearning method implements, and the registry that finds methods by name.

A method is a small class with a `name`, a dict of `defaults` (the one place its settings and their defaults
live; the config's `method_settings.<name>` overrides them and unknown keys are refused), and:

- `prepare(original)` (only when `needs_preparation`): one-off work done before any request arrives, from the
  trained original model and its training graph, e.g. pre-training the Influence Encoder or building SISA's
  shards. It returns a state (tensors and plain values) that is saved once and reused for every request; its
  cost is reported apart from the per-request cost.
- `unlearn(task, state)`: forget `task.request`; return one or more `Unlearned` variants (for UnlearnRec:
  "ie_only" and "ie_ft"), each the final user/item embeddings that score pairs, plus the seconds it took.

Every method is judged by the same code (`recunlearn.evaluation.unlearning`) on the same metrics.

Adding a method: write one module in this package, add its class to `METHODS` in
`recunlearn/unlearning/__init__.py`, and list its name under `methods` in the config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from recunlearn.errors import ConfigError
from recunlearn.backbones.base import Backbone


@dataclass
class OriginalModel:
    """The trained model a request is unlearned from, with the graph it was trained on."""

    backbone: Backbone           # trained; methods must not modify it in place (copy what they change)
    trained_on: np.ndarray       # (E, 2) training edges of the original model
    n_users: int
    n_items: int
    train_settings: dict         # the config's `train` section (lr, batch_size, ks, ...)
    backbone_settings: dict      # the config's backbone_settings.<backbone>
    seed: int
    device: torch.device


@dataclass
class UnlearningTask:
    """One request to forget, against one original model."""

    original: OriginalModel
    request: np.ndarray          # (R, 2) edges to forget (all in original.trained_on)
    remaining: np.ndarray        # original.trained_on minus request


@dataclass
class Unlearned:
    """One unlearned model: final embeddings (scores are inner products) and its cost."""

    user_emb: torch.Tensor
    item_emb: torch.Tensor
    seconds: float
    timings: dict = field(default_factory=dict)   # finer-grained parts of `seconds`
    info: dict = field(default_factory=dict)      # anything worth reporting (epochs run, stop reason, ...)
    e0: torch.Tensor | None = None                # the rewritten initial table, when the result is a backbone
                                                  # run on the remaining graph (saved by `recunlearn forget`)


class UnlearningMethod:
    """Base class: subclasses set `name`, `defaults`, and implement `unlearn` (and `prepare` if needed)."""

    name: ClassVar[str] = "base"
    defaults: ClassVar[dict] = {}
    needs_preparation: ClassVar[bool] = False
    code_deps: ClassVar[tuple[str, ...]] = ()  # modules besides its own that it uses (paths under src/recunlearn)

    def __init__(self, settings: dict | None = None):
        self.settings = resolve_settings(self.name, self.defaults, settings or {})

    def prepare(self, original: OriginalModel) -> tuple[dict, dict]:
        """One-off preparation; returns (state to save, report with at least 'seconds')."""
        raise NotImplementedError(f"{self.name} needs no preparation")

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        """Forget the request; return the variants by name (the method's name if it has just one)."""
        raise NotImplementedError


def resolve_settings(name: str, defaults: dict, settings: dict) -> dict:
    """Defaults overridden by the config; unknown keys and type changes are ConfigErrors naming the key."""
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ConfigError(f"method_settings.{name}: unknown key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(defaults))})")
    resolved = dict(defaults)
    for key, value in settings.items():
        default = defaults[key]
        if isinstance(default, bool) != isinstance(value, bool) or (
                isinstance(default, (int, float)) and not isinstance(value, (int, float))) or (
                isinstance(default, str) and not isinstance(value, str)):
            raise ConfigError(f"method_settings.{name}.{key}: expected {type(default).__name__}, "
                              f"got {value!r}")
        resolved[key] = float(value) if isinstance(default, float) else value
    return resolved


def final_embeddings(backbone: Backbone, e0: torch.Tensor, edges: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the backbone from `e0` on the graph of `edges`; return detached (user, item) final embeddings."""
    from recunlearn.graph.adjacency import normalized_adjacency

    adj = normalized_adjacency(edges, backbone.n_users, backbone.n_items, e0.device)
    with torch.no_grad():
        users, items = backbone.split(backbone.propagate(e0, adj))
    return users.detach(), items.detach()


def as_state(obj: Any) -> Any:
    """Helper for `prepare`: move tensors in a nested state to CPU so it saves and loads anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: as_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(as_state(v) for v in obj)
    return obj
