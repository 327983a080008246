"""The interface every unlearning method implements.

A method is a small class with a `name` and a schema fragment, `schemas/methods/<name>.yaml`: the one place its
settings, their defaults, types and ranges live, and whether it needs preparation (`x-needs-preparation`, read
into the class attribute `needs_preparation`). The class receives its settings validated and completed from
that fragment (`recunlearn.components.complete`, the code the configuration uses), and implements:

- `prepare(original)` (only when `needs_preparation`): one-off work done before any request arrives, from the
  trained original model and its training graph, e.g. pre-training the Influence Encoder or building SISA's
  shards. It returns a state (tensors and plain values) that is saved once and reused for every request; its
  cost is reported apart from the per-request cost.
- `unlearn(task, state)`: forget `task.request`; return one or more `Unlearned` variants (for UnlearnRec:
  "ie_only" and "ie_ft"), each the final user/item embeddings that score pairs, plus the seconds it took.

Every method is judged by the same code (`recunlearn.evaluation.protocol`) on the same metrics.

Adding a method: write one module in this package and its fragment `schemas/methods/<name>.yaml`, add its class
to `METHODS` in `recunlearn/unlearning/__init__.py`, and list its name under `methods` in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from recunlearn import components
from recunlearn.backbones.base import Backbone

# Methods that select a step or checkpoint on the split's validation pairs (GNNDelete, IFRU) rank by validation
# Recall@K_VALID, the project's headline utility metric, as the backbones' early stopping does; without validation
# pairs they keep their last step and say so with NO_VALID.
K_VALID = 20
NO_VALID = "last step (no validation pairs)"


@dataclass
class OriginalModel:
    """The trained model a request is unlearned from, with the graph it was trained on."""

    backbone: Backbone  # trained; methods must not modify it in place (copy what they change)
    trained_on: np.ndarray  # (E, 2) training edges of the original model
    n_users: int
    n_items: int
    train_settings: dict  # the config's `train` section (lr, batch_size, ks, ...)
    backbone_settings: dict  # the config's backbone_settings.<backbone>
    seed: int
    device: torch.device
    # (V, 2) the split's validation pairs, for methods that select a checkpoint on validation (GNNDelete);
    # None where no split is at hand (a method then falls back to a fixed budget and says so)
    valid: np.ndarray | None = None


@dataclass
class UnlearningTask:
    """One request to forget, against one original model."""

    original: OriginalModel
    request: np.ndarray  # (R, 2) edges to forget (all in original.trained_on)
    remaining: np.ndarray  # original.trained_on minus request


@dataclass
class Unlearned:
    """One unlearned model: final embeddings (scores are inner products) and its cost."""

    user_emb: torch.Tensor
    item_emb: torch.Tensor
    seconds: float
    timings: dict = field(default_factory=dict)  # finer-grained parts of `seconds`
    info: dict = field(default_factory=dict)  # anything worth reporting (epochs run, stop reason, ...)
    e0: torch.Tensor | None = None  # the rewritten initial table, when the result is a backbone
    # run on the remaining graph (saved by `recunlearn forget`)


class UnlearningMethod:
    """Base class: subclasses set `name` (which names their fragment) and implement `unlearn` (and `prepare`).

    `settings` are overrides of the fragment's defaults (the configuration passes complete ones); the instance
    holds the complete, validated settings, and a bad one raises ConfigError naming `method_settings.<name>.<key>`.
    """

    name: ClassVar[str] = "base"
    needs_preparation: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.needs_preparation = components.prepared(cls.name)

    def __init__(self, settings: dict | None = None):
        self.settings = components.complete("methods", self.name, settings)

    def prepare(self, original: OriginalModel) -> tuple[dict, dict]:
        """One-off preparation; returns (state to save, report with at least 'seconds')."""
        raise NotImplementedError(f"{self.name} needs no preparation")

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        """Forget the request; return the variants by name (the method's name if it has just one)."""
        raise NotImplementedError


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
