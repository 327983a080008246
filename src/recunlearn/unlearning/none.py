"""'No unlearning': the original embedding table run on the remaining graph.

Not a real method, but an essential row: simply dropping the edges from the propagation graph already lowers the
deleted edges' scores, so every method's own contribution is its gain over this row (docs/method.md, "Pitfalls
seen when the authors' code was run here"). It has no settings (`schemas/methods/none.yaml` is empty).
"""

from __future__ import annotations

import time

from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask, final_embeddings


class NoUnlearning(UnlearningMethod):
    name = "none"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        start = time.perf_counter()
        backbone = task.original.backbone
        users, items = final_embeddings(backbone, backbone.embedding.detach(), task.remaining)
        return {self.name: Unlearned(users, items, time.perf_counter() - start, e0=backbone.embedding.detach())}
