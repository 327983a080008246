"""Training-loop helpers shared by the methods that keep training a copy of E0 on the remaining graph.

Fine-tune and reverse BPR train the same way (the backbone's own loss on batches of the remaining edges, Adam,
one propagation per step; reverse BPR adds one term), so the budget rule and the sampler set-up live here once,
not inside one of the two methods. Their shared settings are `schemas/methods/_training.yaml`.
"""

from __future__ import annotations

import numpy as np

from recunlearn.graph.adjacency import GraphContext
from recunlearn.graph.sampling import BPRSampler
from recunlearn.unlearning.base import UnlearningTask

__all__ = ["budget", "training_context"]


def budget(settings: dict, train_settings: dict) -> tuple[float, int]:
    """(lr, batch_size): the method's own values, or the original training's (`train`) where the method's is null."""
    lr = settings["lr"] if settings["lr"] is not None else train_settings["lr"]
    batch = settings["batch_size"] if settings["batch_size"] is not None else train_settings["batch_size"]
    return float(lr), int(batch)


def training_context(task: UnlearningTask, tag: int) -> tuple[GraphContext, BPRSampler, np.random.Generator]:
    """The remaining graph, a BPR sampler over it (negatives avoid remaining positives) and a seeded rng.

    `tag` separates the random streams of different methods that share the original seed.
    """
    o = task.original
    ctx = GraphContext.from_edges(task.remaining, o.n_users, o.n_items, o.device)
    rng = np.random.default_rng([o.seed, tag])
    sampler = BPRSampler(ctx.edges, o.n_users, o.n_items, seed=int(rng.integers(2**62)), exclude=ctx.user_items)
    return ctx, sampler, rng
