"""SISA (Bourtoule et al., "Machine Unlearning", S&P 2021) for GNN recommenders: exact unlearning by shards.

`prepare` splits the training edges into `shards` disjoint parts and trains one sub-model per part, from
scratch, with the original's backbone class and settings. A request then retrains from scratch only the shards
holding a deleted edge, on their remaining edges; the other shards are reused bit for bit. Because each shard
model is a deterministic function of (its edges, its seed, the validation pairs), the retrained shard is exactly
the model that would have been trained had the deleted edges never been there: unlearning is exact by
construction.

Aggregation = the average of the shard scores (SISA's `uniform` vote), expressed as embeddings (the interface
wants final user/item embeddings whose inner products are the scores): concatenate the K shard embeddings and
scale both sides by 1/sqrt(K), so <u, i> = (1/K) sum_k <u_k, i_k>.

What a request reports: `info["shards_retrained"]` (how many shards it touched and retrained), `info["shards"]`
(K), `info["retrained"]` (which) and per retrained shard its epochs, best epoch and why it stopped;
`timings["shards"]` is the shard retraining, `timings["combine"]` building the output.

The project's adaptations (docs/method.md, section "Baselines (each a row of the comparison)"):
- Partition (`partition`): uniform random over users by default, each user's interactions kept together, so a
  request about one user retrains one shard; "interaction" deals each interaction alone, as RecEraser's random
  baseline and IFRU's SISA scripts do, which spreads every user over all shards. SISA's own unit, a sample of a
  classification set, has no single counterpart in a recommender; the user is the unit a deletion request names.
- No slices: SISA also cuts each shard into slices with a checkpoint after each, so a retraining restarts from
  the slice holding the point. That only saves time for one-point requests; every shard restarts from scratch.
- Stopping: each shard early-stops like Retrain (`recunlearn.backbones.trainer`: Recall@20 every
  `train.eval_every` epochs, `train.patience` checks, best epoch kept), on the split's validation pairs of the
  users that have an edge in the shard (the others' rows are untrained or zero there, so their pairs say nothing
  about the shard). IFRU early-stops its shards on validation, RecEraser's code on the test users; a fixed budget
  (`epochs`) made the shards cost more than Retrain for less utility. Without validation pairs (or with
  `early_stop: false`) a shard trains exactly `epochs` epochs, and its info says so.
- `mask_unseen`: a node with no edge in a shard's training graph keeps its random initial row there (it never
  received a gradient); its score contributions would be noise, so that row is set to zero ("no opinion").
- The sub-models are rebuilt from the original backbone's own resolved config (dim, layers, l2 and its
  settings), so they match the original exactly; each trains with the backbone's own loss.
- Cost: preparation ~ one full training (K models on 1/K of the data each); a request costs one shard training
  per touched shard. A batch request of random edges or of many users touches every shard either way; a
  single-user request touches one shard under the user partition (all of them under the interaction one), the
  regime where SISA is about K times cheaper than Retrain.

Settings: `schemas/methods/sisa.yaml`, which extends `_sharding.yaml` (shared with RecEraser).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from recunlearn.backbones import build_backbone
from recunlearn.backbones.trainer import train_backbone
from recunlearn.errors import RequestError
from recunlearn.graph.adjacency import normalized_adjacency
from recunlearn.graph.edges import contains, edge_keys, unique_edges
from recunlearn.unlearning.base import OriginalModel, Unlearned, UnlearningMethod, UnlearningTask, as_state
from recunlearn.unlearning.sharding import random_partition, random_user_partition

__all__ = ["SISA", "Shard", "shard_seed", "shard_validation", "train_shard"]


@dataclass
class Shard:
    """One trained shard model: its trained table E0, its final embeddings, which nodes it saw, its report."""

    initial: torch.Tensor  # (N, d) trained E0 (rows of unseen nodes zero under mask_unseen)
    final: torch.Tensor  # (N, d) final embeddings on the shard's graph (same masking)
    present: torch.Tensor  # (N,) bool: the node has an edge in the shard (all True without mask_unseen)
    info: dict


def shard_seed(seed: int, shard: int) -> int:
    """Seed of shard `shard`'s model: fixed per (run seed, shard), so a retrained shard is reproducible."""
    return int(np.random.SeedSequence([int(seed), int(shard)]).generate_state(1)[0])


def shard_validation(valid: np.ndarray | None, edges: np.ndarray) -> np.ndarray | None:
    """The validation pairs whose user has an edge in the shard's `edges`, or None if there are none."""
    if valid is None or len(valid) == 0 or len(edges) == 0:
        return None
    mine = valid[np.isin(valid[:, 0], np.unique(edges[:, 0]))]
    return mine if len(mine) else None


def _stop_reason(valid: np.ndarray | None, early_stop: bool, ran: int, budget: int) -> str:
    if not early_stop:
        return "fixed budget (early_stop off)"
    if valid is None:
        return "fixed budget (no validation pairs)"
    return "early stop on validation" if ran < budget else "epoch cap reached"


def _fresh_copy(original: OriginalModel, seed: int):
    """A new, untrained backbone of the original's class and resolved settings, initialised from `seed`."""
    bb = original.backbone
    config = {"dim": bb.dim, "layers": bb.layers, "l2": bb.l2, **bb.settings}
    return build_backbone(bb.name, original.n_users, original.n_items, config, seed=seed)


def _presence(edges: np.ndarray, n_users: int, n: int) -> torch.Tensor:
    present = torch.zeros(n, dtype=torch.bool)
    present[torch.from_numpy(np.unique(edges[:, 0]))] = True
    present[torch.from_numpy(n_users + np.unique(edges[:, 1]))] = True
    return present


def train_shard(
    original: OriginalModel, edges: np.ndarray, seed: int, epochs: int, early_stop: bool, mask_unseen: bool
) -> Shard:
    """Train a fresh copy of the original's backbone on `edges` (deterministic in its arguments).

    `present` marks the nodes with an edge in the shard; with `mask_unseen` the others get zero rows. An empty
    shard gives zeros and no node present.

    Args:
        original: the trained model (its backbone class and settings, the `train` section and `valid` are reused).
        edges: the shard's (E_k, 2) edges.
        seed: the shard model's seed (`shard_seed`).
        epochs: epoch cap; 0 = the original training's `max_epochs`.
        early_stop: stop on the validation pairs of the shard's users (`shard_validation`) when there are any.
        mask_unseen: zero the rows of nodes with no edge in the shard.
    """
    bb, ts = original.backbone, original.train_settings
    n = original.n_users + original.n_items
    if len(edges) == 0:
        zeros = torch.zeros(n, bb.dim)
        info = {"edges": 0, "epochs": 0, "best_epoch": 0, "stop": "empty shard", "seconds": 0.0}
        return Shard(zeros, zeros.clone(), torch.zeros(n, dtype=torch.bool), info)
    start = time.perf_counter()
    valid = shard_validation(original.valid, edges) if early_stop else None
    budget = epochs or ts["max_epochs"]
    model = _fresh_copy(original, seed)
    result = train_backbone(
        model,
        edges,
        valid,
        original.n_users,
        original.n_items,
        lr=ts["lr"],
        batch_size=ts["batch_size"],
        epochs=budget,
        patience=ts["patience"],
        min_delta=ts["min_delta"],
        eval_every=ts["eval_every"],
        ks=tuple(ts["ks"]),
        seed=seed,
        device=original.device,
        progress=False,
    )
    with torch.no_grad():
        adj = normalized_adjacency(edges, original.n_users, original.n_items, original.device)
        initial = model.embedding.detach().clone()
        final = model.propagate(initial, adj).detach().cpu()
    initial = initial.cpu()
    present = _presence(edges, original.n_users, n)
    if mask_unseen:
        initial[~present], final[~present] = 0.0, 0.0
    else:
        present[:] = True
    info = {
        "edges": int(len(edges)),
        "valid_pairs": 0 if valid is None else int(len(valid)),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stop": _stop_reason(valid, early_stop, len(result.history), budget),
        "seconds": time.perf_counter() - start,
        "seconds_to_best": result.seconds_to_best,
    }
    return Shard(initial, final, present, info)


class SISA(UnlearningMethod):
    name = "sisa"
    learns_aggregator = False  # RecEraser: True (its aggregator is re-fitted and timed apart per request)

    # ---- the steps RecEraser overrides --------------------------------------------------------------------
    def partition(self, original: OriginalModel, edges: np.ndarray) -> tuple[np.ndarray, dict]:
        """Shard id per edge: uniform random, balanced over users (`partition: user`) or over edges."""
        k, mode = self.settings["shards"], self.settings["partition"]
        if mode == "user":
            assignment = random_user_partition(edges[:, 0], k, original.seed)
        else:
            assignment = random_partition(len(edges), k, original.seed)
        return assignment, {
            "mode": f"random {mode}",
            "edge_sizes": np.bincount(assignment, minlength=self.settings["shards"]).tolist(),
        }

    def fit_aggregator(self, original: OriginalModel, state: dict) -> tuple[dict | None, dict]:
        """(aggregator state, report): SISA averages scores, so there is nothing to learn."""
        return None, {}

    def combine(self, original: OriginalModel, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated shard embeddings scaled by 1/sqrt(K): inner products = mean shard score."""
        finals = state["shard_final"].to(original.device)
        k, n, d = finals.shape
        joined = finals.permute(1, 0, 2).reshape(n, k * d) * (1.0 / math.sqrt(k))
        return joined[: state["n_users"]], joined[state["n_users"] :]

    # ---- shared steps -------------------------------------------------------------------------------------
    def train_shards(self, original: OriginalModel, edges: np.ndarray, assignment: np.ndarray, seeds, which):
        """{shard id: Shard} for the shards in `which`, each trained from scratch on its edges in `assignment`.

        Args:
            original: the trained model (backbone class, settings, `train` section, validation pairs).
            edges: (E, 2) the current training edges.
            assignment: (E,) shard id per edge.
            seeds: the shard models' seeds, by shard id.
            which: the shard ids to train.
        """
        s = self.settings
        return {
            k: train_shard(original, edges[assignment == k], seeds[k], s["epochs"], s["early_stop"], s["mask_unseen"])
            for k in which
        }

    def _fit_timed(self, original: OriginalModel, state: dict, timings: dict) -> dict:
        """Fit the aggregator into `state`; record its seconds in `timings` (only for a learned aggregator)."""
        t0 = time.perf_counter()
        state["aggregator"], report = self.fit_aggregator(original, state)
        if self.learns_aggregator:
            timings["aggregator"] = time.perf_counter() - t0
        return report

    # ---- interface ----------------------------------------------------------------------------------------
    def prepare(self, original: OriginalModel) -> tuple[dict, dict]:
        start = time.perf_counter()
        k = self.settings["shards"]
        edges = unique_edges(original.trained_on, original.n_items)
        assignment, part_report = self.partition(original, edges)
        t_part = time.perf_counter()
        seeds = [shard_seed(original.seed, j) for j in range(k)]
        shards = self.train_shards(original, edges, assignment, seeds, range(k))
        timings = {"partition": t_part - start, "shards": time.perf_counter() - t_part}
        state = shard_state(original, edges, assignment, seeds, shards)
        agg_report = self._fit_timed(original, state, timings)
        report = {
            "seconds": time.perf_counter() - start,
            "timings": timings,
            "partition": part_report,
            "shards": [shards[j].info for j in range(k)],
            **({"aggregator": agg_report} if self.learns_aggregator else {}),
        }
        return as_state(state), report

    def touched(self, task: UnlearningTask, state: dict) -> tuple[np.ndarray, np.ndarray]:
        """(shard ids holding a request edge, mask of the prepared edges in the request); refuses unknown edges."""
        o = task.original
        edges = state["edges"].numpy()
        hit = contains(edges, task.request, o.n_items)
        wanted = len(np.unique(edge_keys(task.request, o.n_items)))
        if hit.sum() != wanted:
            raise RequestError(
                f"{self.name}: {wanted - int(hit.sum())} request edge(s) are not in the prepared training edges"
            )
        return np.unique(state["assignment"].numpy()[hit]), hit

    def update(self, task: UnlearningTask, state: dict) -> tuple[dict, dict, dict]:
        """The state after forgetting `task.request`: touched shards retrained, the rest reused as they are.

        Returns (new state, info, timings). The new state is a valid prepared state again (the deleted edges
        are gone from it), so a stream of requests can be applied one after another.
        """
        o = task.original
        start = time.perf_counter()
        touched, hit = self.touched(task, state)
        edges, assignment = state["edges"].numpy()[~hit], state["assignment"].numpy()[~hit]
        shards = self.train_shards(o, edges, assignment, state["seeds"], touched.tolist())
        new = {**state, "edges": torch.from_numpy(edges), "assignment": torch.from_numpy(assignment)}
        for key, part in (("shard_initial", "initial"), ("shard_final", "final"), ("present", "present")):
            rows = list(state[key])
            for j, shard in shards.items():
                rows[j] = getattr(shard, part)
            new[key] = torch.stack(rows)
        timings = {"shards": time.perf_counter() - start}
        agg_report = self._fit_timed(o, new, timings)
        info = {
            "shards_retrained": int(len(touched)),
            "shards": self.settings["shards"],
            "retrained": touched.tolist(),
            "deleted_edges": int(hit.sum()),
            "shard_training": {str(j): shard.info for j, shard in shards.items()},
            **({"aggregator": agg_report} if self.learns_aggregator else {}),
        }
        return new, info, timings

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        if state is None:
            raise RuntimeError(f"{self.name} needs its prepared state")
        start = time.perf_counter()
        new, info, timings = self.update(task, state)
        t0 = time.perf_counter()
        with torch.no_grad():
            users, items = self.combine(task.original, new)
        timings["combine"] = time.perf_counter() - t0
        return {self.name: Unlearned(users, items, time.perf_counter() - start, timings=timings, info=info)}


def shard_state(original: OriginalModel, edges, assignment, seeds: list[int], shards: dict) -> dict:
    """The prepared state of a sharded method: the partition, each shard's seed, and the stacked tables of its
    trained shards (`shards[j]`, j = 0..K-1), as `prepare` saves it and `unlearn` updates it.

    Args:
        original: the trained original model (its sizes).
        edges: (E, 2) the training edges that were partitioned.
        assignment: (E,) the shard of each edge.
        seeds: each shard's training seed.
        shards: shard index -> its trained result (`initial`, `final`, `present`).
    """
    k = len(seeds)
    return {
        "n_users": original.n_users,
        "n_items": original.n_items,
        "seeds": seeds,
        "edges": torch.from_numpy(edges),
        "assignment": torch.from_numpy(assignment),
        "shard_initial": torch.stack([shards[j].initial for j in range(k)]),
        "shard_final": torch.stack([shards[j].final for j in range(k)]),
        "present": torch.stack([shards[j].present for j in range(k)]),
    }
