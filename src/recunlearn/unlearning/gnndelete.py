"""GNNDelete (Cheng et al., "GNNDelete: A General Strategy for Unlearning in Graph Neural Networks", ICLR 2023).

The backbone stays frozen. Small learned deletion operators sit on its layer representations: on layer l
(0..L, layer 0 being the initial table E0) the rows of the nodes within l hops of a deleted edge's endpoints go
through a linear map W_l (d x d); every other node passes unchanged, so a node more than L hops from every
endpoint keeps the original model's final embedding exactly. Only W_0..W_L are trained, full-batch, with

    L = lambda_dec * L_DEC + (1 - lambda_dec) * L_NI

- Deleted Edge Consistency (L_DEC, as in the authors' default trainer): MSE between the scores of the deleted
  edges and those of as many random non-edges drawn afresh at every step, both under the current model.
- Neighbourhood Influence (L_NI, the authors' default pairwise form): every user-item pair with both ends in the
  L-hop neighbourhood S_Df, except the deleted pairs themselves, keeps the original model's link score (MSE
  against the original model on its training graph). Endpoints take part through all their other pairs; only
  the deleted pairs are left out.
- Checkpoint selection on the split's validation pairs (`OriginalModel.valid`), every `valid_every` steps from
  step 0 (`select_check`; the rule is the setting `select`). `info` reports the kept step ("selected_epoch"),
  the rule in words ("selection"), the kept check's measurements and every check. Without validation pairs the
  last step is kept, and "selection" says so.

The project's adaptations, and why:
- BPR link scores on the bipartite user-item graph instead of the paper's link-prediction decoder: a score is the
  inner product of the final user and item embeddings, and only user-item pairs are scored (L_NI's pairs are the
  user x item block of S_Df, not all node pairs: user-user and item-item products score nothing here).
- An operator on layer 0 too (on the endpoints, the 0-hop neighbourhood): the paper's GCN starts from fixed node
  features, but LightGCN's E0 is the trained table and its sum readout adds it to the output, so without W_0 the
  deleted users' and items' own rows, which encode the deleted preferences, would pass through untouched (a
  user whose every edge is deleted would keep its trained row as its final embedding, whatever the training).
- W_l starts at the IDENTITY (the authors start from ones/1000, which maps every local node to nearly the same
  tiny vector): step 0 is then exactly the "none" row (the frozen backbone on the remaining graph), so what
  GNNDelete adds over that row is the operators' own work, and step 0 is a checkpoint like any other.
- The model runs on the remaining graph, like every method here (the authors' trainer passes messages over the
  S_Df edges including the deleted ones and evaluates on the remaining graph); neighbourhoods are counted in the
  original training graph, as in the authors' k-hop subgraph of the deleted edges.
- L_NI on raw scores rather than their sigmoids, lambda_dec 0.1 rather than 0.5, a utility guard as the default
  selection rule, and a shorter budget with patience: each for the reason and measurement given in the
  fragment's description of `ni_space`, `lambda_dec`, `select` and `epochs`. The authors' forms stay available.
- When S_Df's user x item block is larger than `ni_pairs`, every step takes a random sub-block of that size
  (rows and columns drawn uniformly), an unbiased estimate of the same mean; the authors form all N x N pairs.

Settings: `schemas/methods/gnndelete.yaml`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone, apply_readout
from recunlearn.evaluation.forgetting import rank_auc, score_pairs
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.adjacency import normalized_adjacency, propagate, user_item_csr
from recunlearn.graph.edges import edge_keys
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.unlearning.base import K_VALID, NO_VALID, Unlearned, UnlearningMethod, UnlearningTask

__all__ = ["GNNDelete", "hop_masks", "operated_stack", "NeighbourhoodPairs", "Validation", "select_check", "describe"]


def hop_masks(edges: np.ndarray, request: np.ndarray, n_users: int, n_items: int, hops: int) -> list[np.ndarray]:
    """Boolean node masks [S^0, S^1, ..., S^hops]: nodes within l hops (in the graph of `edges`) of an endpoint.

    Args:
        edges: (E, 2) (user, item) pairs of the graph the hops are counted in (the original training graph).
        request: (R, 2) deleted (user, item) pairs; S^0 is their endpoints.
        n_users: number of users (node ids 0..n_users-1).
        n_items: number of items (node ids n_users + item).
        hops: the largest l (the backbone's layer count L).

    Each mask is a (n_users + n_items,) bool array over the users-then-items node ids; S^l contains S^(l-1).
    """
    r = user_item_csr(edges, n_users, n_items)
    adj = sp.bmat([[None, r], [r.T, None]], format="csr")
    reach = np.zeros(n_users + n_items, dtype=bool)
    reach[request[:, 0]] = True
    reach[n_users + request[:, 1]] = True
    masks = [reach.copy()]
    for _ in range(hops):
        reach = reach | (adj @ reach.astype(np.float32) > 0)
        masks.append(reach.copy())
    return masks


def operated_stack(
    e0: torch.Tensor, adj: torch.Tensor, operators: list[torch.Tensor], local: list[torch.Tensor]
) -> list[torch.Tensor]:
    """[E^0, ..., E^L] with the rows `local[l]` of layer l replaced by rows @ operators[l], l = 0..L.

    The operated layer is what the next layer propagates (as the authors' operator output feeds the next
    convolution), and what the readout combines.
    """
    out = []
    for layer, (weight, rows) in enumerate(zip(operators, local)):
        x = e0 if layer == 0 else propagate(adj, out[-1])
        out.append(x.index_put((rows,), x[rows] @ weight))
    return out


def _pair_scores(final: torch.Tensor, pairs: torch.Tensor, n_users: int) -> torch.Tensor:
    return (final[pairs[:, 0]] * final[n_users + pairs[:, 1]]).sum(-1)


def _draw_non_edges(keys: torch.Tensor, n_users: int, n_items: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 2) uniform random (user, item) pairs whose key is not among the sorted `keys` (rejection on device).

    Why on the device: L_DEC draws fresh non-edges at every step, as the authors' trainer does.

    Args:
        keys: sorted int64 keys user * n_items + item of the pairs to avoid (the training edges), on the device.
        n_users: number of users.
        n_items: number of items.
        n: number of pairs to draw (with replacement).
        gen: generator of the draw, on the device.
    """
    found = keys.new_empty(0)
    while len(found) < n:
        cand = torch.randint(0, n_users * n_items, (2 * n,), generator=gen, device=keys.device)
        if len(keys):
            at = torch.searchsorted(keys, cand).clamp_max(len(keys) - 1)
            cand = cand[keys[at] != cand]
        found = torch.cat([found, cand])
    found = found[:n]
    return torch.stack([found // n_items, found % n_items], dim=1)


class NeighbourhoodPairs:
    """L_NI's pairs: the user x item block of S_Df minus the deleted pairs, scored as one dense block.

    `loss(final)` is the MSE between the current and the original model's scores (their sigmoids under
    `space="probability"`, the authors' form) over the block's pairs, or over a random sub-block of at most
    `limit` pairs redrawn at every call when the whole block is larger (each pair equally likely to be drawn).
    The deleted pairs are taken out by subtracting their terms from the block's sum: a boolean selection of
    the kept entries would cost more than the block's product itself.
    """

    def __init__(
        self,
        local: torch.Tensor,
        request: torch.Tensor,
        ref_final: torch.Tensor,
        n_users: int,
        limit: int,
        space: str,
        gen: torch.Generator,
    ):
        """
        Args:
            local: node ids of S_Df (users then items, item ids offset by n_users).
            request: (R, 2) deleted (user, item) pairs, on the device.
            ref_final: (N, d) the original model's final embeddings (the target).
            n_users: number of users.
            limit: most pairs in one block.
            space: "score" (raw scores) or "probability" (their sigmoids).
            gen: generator of the sub-block draws, on the device.
        """
        self.users, self.items = local[local < n_users], local[local >= n_users] - n_users
        self.ref, self.space, self.gen = ref_final, space, gen
        self.n_users, self.n_items = n_users, len(ref_final) - n_users
        self.request = torch.unique(request, dim=0)  # sorted by (user, item)
        block = len(self.users) * len(self.items)
        frac = min(1.0, math.sqrt(limit / max(block, 1)))
        self.take = (max(1, int(len(self.users) * frac)), max(1, int(len(self.items) * frac)))
        self.exact = self.take == (len(self.users), len(self.items))
        # every deleted pair lies in the block (its endpoints are in S^0, inside S_Df): the block minus them
        self.n_pairs = block - len(self.request)
        self._fixed = self._block(self.users, self.items) if self.exact else None

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        return x.sigmoid() if self.space == "probability" else x

    def _block(self, users: torch.Tensor, items: torch.Tensor) -> tuple:
        """(users, items, (row, column) of the deleted pairs inside the block, target values) of one block."""
        device = users.device
        row = torch.full((self.n_users,), -1, dtype=torch.long, device=device)
        col = torch.full((self.n_items,), -1, dtype=torch.long, device=device)
        row[users], col[items] = torch.arange(len(users), device=device), torch.arange(len(items), device=device)
        r, c = row[self.request[:, 0]], col[self.request[:, 1]]
        hit = (r >= 0) & (c >= 0)
        with torch.no_grad():
            target = self._map(self.ref[users] @ self.ref[self.n_users + items].T)
        return users, items, (r[hit], c[hit]), target

    def _draw(self) -> tuple:
        if self._fixed is not None:
            return self._fixed
        pick = [
            ids[torch.randperm(len(ids), generator=self.gen, device=ids.device)[:k]]
            for ids, k in zip((self.users, self.items), self.take)
        ]
        return self._block(*pick)

    def loss(self, final: torch.Tensor) -> torch.Tensor:
        users, items, (r, c), target = self._draw()
        sq = (self._map(final[users] @ final[self.n_users + items].T) - target).pow(2)
        n = sq.numel() - len(r)
        return (sq.sum() - sq[r, c].sum()) / n if n else final.sum() * 0.0


class Validation:
    """The measurements a checkpoint is selected by, on fixed pairs drawn once per run.

    `measure(final)` returns, from the split's validation pairs and the request:
    - "recall@20": validation Recall@20, the remaining graph masked (as Retrain's early stopping masks its graph);
    - "dt_auc": P(validation pair outscores a random non-edge), the authors' Dt-AUC on validation;
    - "df_auc": P(remaining training edge outscores a deleted edge), the authors' Df-AUC (higher = more
      forgotten; the complement of the protocol's auc_deleted_vs_remaining);
    - "nonedge_auc": P(deleted edge outscores a random non-edge), the protocol's auc_deleted_vs_nonedges
      (0.5 = the deleted edges look like non-edges, L_DEC's target).
    All are rank statistics, so a uniform rescaling of the scores changes none of them.
    """

    def __init__(self, valid, trained_on, remaining, request, n_users: int, n_items: int, seed: int):
        """
        Args:
            valid: (V, 2) validation pairs (V > 0).
            trained_on: (E, 2) the original training edges (never drawn as non-edges).
            remaining: (E - R, 2) the graph the model runs on (masked in the ranking).
            request: (R, 2) the deleted edges.
            n_users: number of users.
            n_items: number of items.
            seed: seed of the non-edge draw (as many as validation pairs, like the authors' validation negatives).
        """
        self.valid, self.remaining, self.request, self.n_users = valid, remaining, request, n_users
        self.non_edges = sample_non_edges(n_users, n_items, [trained_on, valid], len(valid), seed)

    def measure(self, final: torch.Tensor) -> dict:
        users, items = final[: self.n_users], final[self.n_users :]
        ranking = evaluate_ranking(users, items, self.remaining, self.valid, ks=(K_VALID,))
        s_valid, s_neg = score_pairs(users, items, self.valid), score_pairs(users, items, self.non_edges)
        s_del, s_rem = score_pairs(users, items, self.request), score_pairs(users, items, self.remaining)
        return {
            f"recall@{K_VALID}": ranking[f"recall@{K_VALID}"],
            "dt_auc": rank_auc(s_valid, s_neg),
            "df_auc": rank_auc(s_rem, s_del),
            "nonedge_auc": rank_auc(s_del, s_neg),
        }


def check_key(check: dict, rule: str, floor: float) -> tuple:
    """How good a check is under `rule` (tuples compare left to right; larger is better).

    - "guard": a check whose validation Recall@20 is at least `floor` ranks above every check that is not;
      among those, the nonedge_auc nearest 0.5 wins: the deleted edges closest to looking like random non-edges,
      L_DEC's aim, judged by rank so that shrinking every score does not pass for forgetting. Nearest 0.5, not
      lowest: deleted edges that already score below non-edges (an adversarial request's least-scored pairs) are
      moved up towards them by L_DEC, and that is the step this rule must be able to keep.
    - "official": the authors' rule, the larger validation Dt-AUC + Df-AUC (`floor` unused).
    """
    if rule == "official":
        return (check["dt_auc"] + check["df_auc"],)
    return (1, -abs(check["nonedge_auc"] - 0.5)) if check[f"recall@{K_VALID}"] >= floor else (0,)


def guard_floor(checks: list[dict], tolerance: float) -> float:
    """The "guard" rule's utility floor: (1 - tolerance) x the validation Recall@20 of step 0 (the first check)."""
    return (1.0 - tolerance) * checks[0][f"recall@{K_VALID}"]


def select_check(checks: list[dict], rule: str, tolerance: float) -> int:
    """Index of the check `rule` keeps: the earliest with the largest `check_key` (fewer steps on a tie).

    `checks` start at step 0; under "guard" step 0 always passes, so the identity (the "none" row) is what is
    kept when no trained step keeps the utility.
    """
    floor = guard_floor(checks, tolerance)
    keys = [check_key(c, rule, floor) for c in checks]
    return max(range(len(keys)), key=lambda k: (keys[k], -k))


def describe(rule: str, tolerance: float) -> str:
    """The selection criterion, in words, for `Unlearned.info`."""
    if rule == "official":
        return "largest validation Dt-AUC + Df-AUC (the authors' rule)"
    return (
        f"lowest P(deleted edge outscores a random non-edge) among the checks whose validation "
        f"Recall@{K_VALID} is at least {1 - tolerance:g} x step 0's"
    )


class _Operated:
    """The frozen backbone with its deletion operators on the remaining graph, and one training step of them."""

    def __init__(self, backbone: Backbone, local: list[torch.Tensor], adj: torch.Tensor, lr: float):
        self.e0, self.adj, self.local = backbone.embedding.detach().to(adj.device), adj, local
        self.readout = backbone.readout
        self.operators = [torch.eye(backbone.dim, device=adj.device).requires_grad_(True) for _ in local]
        self.opt = torch.optim.Adam(self.operators, lr=lr)

    def final(self) -> torch.Tensor:
        return apply_readout(operated_stack(self.e0, self.adj, self.operators, self.local), self.readout)

    def step(self, loss_of) -> dict:
        """One Adam step on `loss_of(final)` -> (loss, parts); returns the parts as floats."""
        loss, parts = loss_of(self.final())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {k: float(v.detach()) for k, v in parts.items()}

    def snapshot(self) -> list[torch.Tensor]:
        return [w.detach().clone() for w in self.operators]

    def restore(self, weights: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for w, kept in zip(self.operators, weights):
                w.copy_(kept)


class GNNDelete(UnlearningMethod):
    name = "gnndelete"

    def run(
        self,
        backbone: Backbone,
        trained_on: np.ndarray,
        request: np.ndarray,
        remaining: np.ndarray,
        seed: int,
        device,
        valid: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, dict, dict]:
        """Train the operators; return (final N x d embeddings of the kept step, info, timings).

        Args:
            backbone: the frozen trained backbone (its E0, layers and readout are used, never modified).
            trained_on: (E, 2) the original training edges (neighbourhoods, non-edges and L_NI's target).
            request: (R, 2) the edges to forget (any shape reshapeable to (R, 2)).
            remaining: (E - R, 2) trained_on minus request: the graph the model runs on.
            seed: seed of the random draws (L_DEC's non-edges, L_NI's sub-blocks, the validation non-edges).
            device: where the propagation and training run (anything `torch.device` accepts).
            valid: (V, 2) validation pairs the kept step is selected on; None or empty: the last step is kept.
        """
        s, device = self.settings, torch.device(device)
        n_users, n_items = backbone.n_users, backbone.n_items
        start = time.perf_counter()
        request = np.asarray(request, dtype=np.int64).reshape(-1, 2)
        masks = hop_masks(trained_on, request, n_users, n_items, backbone.layers)
        local = [torch.from_numpy(np.flatnonzero(m)).to(device) for m in masks]
        model = _Operated(backbone, local, normalized_adjacency(remaining, n_users, n_items, device), s["lr"])
        gen = torch.Generator(device=device).manual_seed(seed)
        deleted = torch.from_numpy(request).to(device)
        keys = torch.from_numpy(np.unique(edge_keys(trained_on, n_items))).to(device)
        with torch.no_grad():  # L_NI's target: the original model on its own training graph
            ref = backbone.propagate(model.e0, normalized_adjacency(trained_on, n_users, n_items, device))
        pairs = NeighbourhoodPairs(local[-1], deleted, ref, n_users, s["ni_pairs"], s["ni_space"], gen)
        has_valid = valid is not None and len(valid) > 0
        check = Validation(valid, trained_on, remaining, request, n_users, n_items, seed) if has_valid else None

        def loss_of(final: torch.Tensor):
            negatives = _draw_non_edges(keys, n_users, n_items, len(request), gen)
            dec = F.mse_loss(_pair_scores(final, deleted, n_users), _pair_scores(final, negatives, n_users))
            ni = pairs.loss(final)
            return s["lambda_dec"] * dec + (1.0 - s["lambda_dec"]) * ni, {"dec": dec, "ni": ni}

        t_setup = time.perf_counter()
        history, checks, best, stop = self._train(model, loss_of, check)
        if best is not None:
            model.restore(best[2])
        with torch.no_grad():
            final = model.final()
        end = time.perf_counter()
        info = {
            "local_nodes": [int(m.sum()) for m in masks],
            "ni_pairs": pairs.n_pairs,
            "ni_sampled": not pairs.exact,
            "epochs_run": len(history),
            "stop": stop,
            "selected_epoch": best[1]["epoch"] if best is not None else len(history),
            "selection": describe(s["select"], s["guard_tolerance"]) if has_valid else NO_VALID,
            "selected": best[1] if best is not None else None,
            "checks": checks,
            "first": history[0] if history else None,
            "last": history[-1] if history else None,
        }
        return final.detach(), info, {"setup_s": t_setup - start, "train_s": end - t_setup}

    def _train(self, model: _Operated, loss_of, check: Validation | None) -> tuple[list, list, tuple | None, str]:
        """Step and check; return (per-step losses, checks, (key, check, operators) kept or None, stop reason).

        A check is kept when it beats the kept one under `select` (ties keep the earlier); `patience` checks in
        a row without a better one end the run.
        """
        s = self.settings
        history, checks, best, stale = [], [], None, 0
        for epoch in range(s["epochs"] + 1):
            if epoch:
                history.append(model.step(loss_of))
            if check is None or (epoch % s["valid_every"] and epoch != s["epochs"]):
                continue
            with torch.no_grad():
                checks.append({"epoch": epoch, **check.measure(model.final())})
            key = check_key(checks[-1], s["select"], guard_floor(checks, s["guard_tolerance"]))
            if best is None or key > best[0]:
                best, stale = (key, checks[-1], model.snapshot()), 0
            elif s["patience"] and (stale := stale + 1) >= s["patience"]:
                return history, checks, best, "patience"
        return history, checks, best, "budget"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o = task.original
        start = time.perf_counter()
        final, info, timings = self.run(
            o.backbone, o.trained_on, task.request, task.remaining, o.seed, o.device, valid=o.valid
        )
        users, items = o.backbone.split(final)
        return {self.name: Unlearned(users, items, time.perf_counter() - start, timings=timings, info=info)}
