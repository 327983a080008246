"""SISA (Bourtoule et al., "Machine Unlearning", S&P 2021) for GNN recommenders: exact unlearning by shards.

`prepare` splits the training edges into `shards` disjoint parts and trains one sub-model per part, from
scratch, with the original's backbone class and settings. A request then retrains from scratch only the shards
holding a deleted edge, on their remaining edges; the other shards are reused bit for bit. Because each shard
model is a deterministic function of (its edges, its seed), the retrained shard is exactly the model that
would have been trained had the deleted edges never been there: unlearning is exact by construction.

Aggregation = the average of the shard scores, expressed as embeddings (the interface wants final user/item
embeddings whose inner products are the scores): concatenate the K shard embeddings and scale both sides by
1/sqrt(K), so <u, i> = (1/K) sum_k <u_k, i_k>.

Decisions:
- A shard model is trained like the original (lr, batch size from the `train` section) for `epochs` epochs
  (0 = the original's max_epochs). By default there is no validation: early stopping on a small held-out part
  of each shard stopped too early and cost utility (docs/decisions.md). `valid_fraction` > 0 holds out that
  share of the shard's edges for early stopping (patience, eval_every, ks from `train`); held-out edges still
  belong to the shard: deleting one retrains it.
- `mask_unseen`: a node with no edge in a shard's training graph keeps its random initial row there (it never
  received a gradient); its score contributions would be noise, so that row is set to zero ("no opinion").
- The sub-models are rebuilt from the original backbone's own resolved config (dim, layers, l2 and its
  settings), which is what `backbone_settings` resolves to, so they match the original exactly.
- Cost: preparation ~ `epochs` epochs of a full training (K models on 1/K of the data each); a request
  costs one shard training per touched shard. A random partition spreads each user's edges over all shards, so
  a user-wise request touches every shard (RecEraser's user partition avoids that), and each shard sees 1/K of
  every user's history, which lowers utility as K grows.

Settings: `schemas/methods/sisa.yaml` (RecEraser's fragment extends it).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.trainer import train_backbone
from recunlearn.errors import RequestError
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.graph.edges import contains, edge_keys, unique_edges
from recunlearn.unlearning.base import OriginalModel, Unlearned, UnlearningMethod, UnlearningTask, as_state
from recunlearn.unlearning.sharding import random_partition

__all__ = ["SISA", "shard_seed", "train_shard"]


def shard_seed(seed: int, shard: int) -> int:
    """Seed of shard `shard`'s model: fixed per (run seed, shard), so a retrained shard is reproducible."""
    return int(np.random.SeedSequence([int(seed), int(shard)]).generate_state(1)[0])


def train_shard(
    original: OriginalModel, edges: np.ndarray, seed: int, epochs: int, valid_fraction: float, mask_unseen: bool
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Train a fresh copy of the original's backbone on `edges`; return (final N x d, present N bool, info).

    `present` marks the nodes with an edge in the shard's training graph; with `mask_unseen` the others get
    zero rows. An empty shard gives zeros and no node present.

    Args:
        original: the trained model (its backbone class and settings, and the `train` section, are reused).
        edges: the shard's (E_k, 2) edges.
        seed: the shard model's seed (`shard_seed`).
        epochs: epoch budget; 0 = the original training's `max_epochs`.
        valid_fraction: share of `edges` held out for early stopping (0 = none).
        mask_unseen: zero the rows of nodes with no edge in the shard's training graph.
    """
    bb = original.backbone
    n = original.n_users + original.n_items
    if len(edges) == 0:
        return torch.zeros(n, bb.dim), torch.zeros(n, dtype=torch.bool), {"edges": 0, "epochs": 0, "seconds": 0.0}
    start = time.perf_counter()
    train, valid = edges, None
    n_valid = int(len(edges) * valid_fraction)
    if 0 < n_valid < len(edges):
        order = np.random.default_rng(seed).permutation(len(edges))
        valid, train = edges[np.sort(order[:n_valid])], edges[np.sort(order[n_valid:])]
    ts = original.train_settings
    model = build_backbone(
        bb.name,
        original.n_users,
        original.n_items,
        {"dim": bb.dim, "layers": bb.layers, "l2": bb.l2, **bb.settings},
        seed=seed,
    )
    result = train_backbone(
        model,
        train,
        valid,
        original.n_users,
        original.n_items,
        lr=ts["lr"],
        batch_size=ts["batch_size"],
        epochs=epochs or ts["max_epochs"],
        patience=ts["patience"],
        eval_every=ts["eval_every"],
        ks=tuple(ts["ks"]),
        seed=seed,
        device=original.device,
        progress=False,
    )
    with torch.no_grad():
        adj = normalized_adjacency(train, original.n_users, original.n_items, original.device)
        final = model.propagate(model.embedding, adj).detach().cpu()
    present = torch.zeros(n, dtype=torch.bool)
    present[torch.from_numpy(np.unique(train[:, 0]))] = True
    present[torch.from_numpy(original.n_users + np.unique(train[:, 1]))] = True
    if mask_unseen:
        final[~present] = 0.0
    else:
        present[:] = True
    info = {
        "edges": int(len(edges)),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "seconds": time.perf_counter() - start,
    }
    return final, present, info


class SISA(UnlearningMethod):
    name = "sisa"

    # ---- the three steps RecEraser overrides --------------------------------------------------------------
    def partition(self, original: OriginalModel, edges: np.ndarray) -> tuple[np.ndarray, dict]:
        """Shard id per edge: uniform random and balanced."""
        assignment = random_partition(len(edges), self.settings["shards"], original.seed)
        return assignment, {
            "mode": "random",
            "edge_sizes": np.bincount(assignment, minlength=self.settings["shards"]).tolist(),
        }

    def fit_aggregator(self, original: OriginalModel, state: dict) -> dict | None:
        """SISA averages scores: nothing to learn."""
        return None

    def combine(self, state: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated shard embeddings scaled by 1/sqrt(K): inner products = mean shard score."""
        finals = state["shard_final"].to(device)
        k, n, d = finals.shape
        joined = finals.permute(1, 0, 2).reshape(n, k * d) * (1.0 / math.sqrt(k))
        return joined[: state["n_users"]], joined[state["n_users"] :]

    # ---- interface ----------------------------------------------------------------------------------------
    def prepare(self, original: OriginalModel) -> tuple[dict, dict]:
        start = time.perf_counter()
        s = self.settings
        edges = unique_edges(original.trained_on, original.n_items)
        assignment, part_report = self.partition(original, edges)
        t_part = time.perf_counter()
        seeds = [shard_seed(original.seed, k) for k in range(s["shards"])]
        shards = [
            train_shard(original, edges[assignment == k], seeds[k], s["epochs"], s["valid_fraction"], s["mask_unseen"])
            for k in range(s["shards"])
        ]
        t_train = time.perf_counter()
        state = {
            "n_users": original.n_users,
            "n_items": original.n_items,
            "seeds": seeds,
            "edges": torch.from_numpy(edges),
            "assignment": torch.from_numpy(assignment),
            "shard_final": torch.stack([f for f, _, _ in shards]),
            "present": torch.stack([p for _, p, _ in shards]),
        }
        state["aggregator"] = self.fit_aggregator(original, state)
        end = time.perf_counter()
        report = {
            "seconds": end - start,
            "partition_s": t_part - start,
            "train_s": t_train - t_part,
            "aggregate_s": end - t_train,
            "partition": part_report,
            "shards": [i for _, _, i in shards],
        }
        return as_state(state), report

    def update(self, task: UnlearningTask, state: dict) -> tuple[dict, dict, dict]:
        """The state after forgetting `task.request`: touched shards retrained, the rest reused as they are.

        Returns (new state, info, timings). The new state is a valid prepared state again (the deleted edges
        are gone from it), so a stream of requests can be applied one after another.
        """
        o, s = task.original, self.settings
        start = time.perf_counter()
        edges, assignment = state["edges"].numpy(), state["assignment"].numpy()
        wanted = np.unique(edge_keys(task.request, o.n_items))
        hit = contains(edges, task.request, o.n_items)
        if hit.sum() != len(wanted):
            raise RequestError(
                f"{self.name}: {len(wanted) - int(hit.sum())} request edge(s) are not in the prepared training edges"
            )
        touched = np.unique(assignment[hit])
        edges, assignment = edges[~hit], assignment[~hit]
        finals, present = list(state["shard_final"]), list(state["present"])
        shard_info = {}
        for k in touched.tolist():
            finals[k], present[k], shard_info[k] = train_shard(
                o, edges[assignment == k], state["seeds"][k], s["epochs"], s["valid_fraction"], s["mask_unseen"]
            )
        t_retrain = time.perf_counter()
        new = {
            **state,
            "edges": torch.from_numpy(edges),
            "assignment": torch.from_numpy(assignment),
            "shard_final": torch.stack(finals),
            "present": torch.stack(present),
        }
        new["aggregator"] = self.fit_aggregator(o, new)
        t_agg = time.perf_counter()
        info = {
            "retrained_shards": touched.tolist(),
            "n_retrained": int(len(touched)),
            "shards": s["shards"],
            "deleted_edges": int(hit.sum()),
            "shard_epochs": {str(k): v["epochs"] for k, v in shard_info.items()},
        }
        return new, info, {"retrain_s": t_retrain - start, "aggregate_s": t_agg - t_retrain}

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        if state is None:
            raise RuntimeError(f"{self.name} needs its prepared state")
        start = time.perf_counter()
        new, info, timings = self.update(task, state)
        t0 = time.perf_counter()
        with torch.no_grad():
            users, items = self.combine(new, task.original.device)
        timings["combine_s"] = time.perf_counter() - t0
        return {self.name: Unlearned(users, items, time.perf_counter() - start, timings=timings, info=info)}
