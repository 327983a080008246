"""UnlearnRec's preparation: pre-train the Influence Encoder on simulated requests, once per trained backbone.

The method is in docs/method.md, "Pre-training the IE (once per trained backbone, before any real request)";
the settings are `schemas/methods/unlearnrec.yaml`. Leakage guard: pre-training never sees the evaluated
request, and its signature does not even accept one. Checkpoint selection uses a held-out *simulated* request
drawn from the training edges with its own seed stream, as a utility guard (`keeps`), or a fixed epoch budget.
Every step runs exactly one main propagation of the backbone (its SSL views aside), and L_u uses a sampled subset
of the request.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone
from recunlearn.backbones.meter import LossMeter
from recunlearn.backbones.trainer import deterministic
from recunlearn.graph.adjacency import GraphContext, check_edges, normalized_adjacency
from recunlearn.graph.sampling import BPRSampler, sample_non_edges
from recunlearn.unlearning.unlearnrec._common import cap, original_final, preservation, sample_rows
from recunlearn.unlearning.unlearnrec.encoder import InfluenceEncoder, RequestGraph, build_encoder
from recunlearn.unlearning.unlearnrec.losses import contrastive_loss, fidelity_loss, unlearning_loss

__all__ = ["pretrain_influence_encoder"]


class _HeldOutProbe:
    """The figures of one checkpoint check on a held-out simulated request (never the evaluated one):

    bpr = BPR loss on a fixed sample of the held-out request's remaining edges with fixed negatives: the
          utility proxy the "guard" rule bounds;
    gap = mean σ(score of held-out deleted edges) − mean σ(score of random non-edges), the unlearned model
          being Ẽ0 from the IE on Â(E \\ held-out), reported for every rule;
    criterion = max(0, gap) + w * bpr, the "heldout" rule's (lower is better; the gap is clipped at 0 because
          scoring deleted edges below non-edges is no extra credit).
    """

    def __init__(self, backbone, train_edges, n_users, n_items, s, rng, device):
        """Draw the held-out request (a `heldout_drop` fraction of E) and the fixed pairs the criterion scores.

        Args:
            backbone: the frozen trained backbone.
            train_edges: (E, 2) its training edges; the held-out request is drawn from them.
            n_users: number of users.
            n_items: number of items.
            s: UnlearnRec's complete settings (`heldout_drop`, `heldout_pairs`, `heldout_utility_weight`).
            rng: numpy Generator of the probe's own seed stream (request, pair samples, negatives).
            device: where the request graph, adjacency and pairs live.
        """
        k = max(1, int(round(s["heldout_drop"] * len(train_edges))))
        pick = rng.choice(len(train_edges), size=k, replace=False)
        mask = np.zeros(len(train_edges), dtype=bool)
        mask[pick] = True
        self.backbone, self.n_users, self.w = backbone, n_users, s["heldout_utility_weight"]
        rest = train_edges[~mask]
        self.req = RequestGraph.build(train_edges[mask], n_users, device)
        self.adj = normalized_adjacency(rest, n_users, n_items, device)
        n = s["heldout_pairs"]
        seed = int(rng.integers(2**62))
        deleted = train_edges[mask][sample_rows(rng, k, n)]
        non = sample_non_edges(n_users, n_items, [train_edges], n, seed)
        util = rest[sample_rows(rng, len(rest), n)]
        neg = BPRSampler(rest, n_users, n_items, seed=seed).negatives(util[:, 0])
        as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.deleted, self.non, self.util, self.neg = as_t(deleted), as_t(non), as_t(util), as_t(neg)
        self.n_edges = int(k)

    @torch.no_grad()
    def evaluate(self, encoder: InfluenceEncoder, e0: torch.Tensor, ebar: torch.Tensor) -> dict:
        final = self.backbone.propagate(encoder(e0, ebar, self.req), self.adj)
        sc = lambda p: self.backbone.score(final, p[:, 0], p[:, 1])  # noqa: E731
        gap = float(torch.sigmoid(sc(self.deleted)).mean() - torch.sigmoid(sc(self.non)).mean())
        margin = sc(self.util) - self.backbone.score(final, self.util[:, 0], self.neg)
        bpr = float(F.softplus(-margin).mean())
        return {"gap": gap, "bpr": bpr, "criterion": max(gap, 0.0) + self.w * bpr}


def keeps(rule: str, row: dict, first: dict, best: dict | None, tolerance: float) -> bool:
    """Whether a held-out check's state replaces the kept one (`best`, None before any check but epoch 0).

    - "guard" (the default): the held-out request serves as a utility guard only. A check is kept when its BPR on
      the held-out remaining pairs is within `tolerance` (relative) of the untrained encoder's (`first`, epoch 0),
      and the latest such check wins: training is what makes the encoder forget, so among states that keep
      utility the most trained one is taken. The forgetting gap is not used: on a random held-out request the
      remaining graph still predicts the deleted edges, so the gap barely moves whatever the encoder learns
      (docs/decisions.md, section "UnlearnRec").
    - "heldout": the lowest max(0, gap) + w * BPR, the earlier rule; it keeps the untrained encoder on this
      project's data and is kept for comparison.

    Args:
        rule: "guard" or "heldout".
        row: the check's figures (`epoch`, `gap`, `bpr`, `criterion`).
        first: the epoch-0 check (the untrained encoder).
        best: the check kept so far.
        tolerance: `guard_tolerance`.
    """
    if rule == "guard":
        return row["epoch"] > 0 and row["bpr"] <= (1.0 + tolerance) * first["bpr"]
    return best is None or row["criterion"] < best["criterion"]


def stops(settings: dict, row: dict) -> bool:
    """Whether pre-training ends at this held-out check: under "guard" with `guard_stop`, at the first check the
    guard rejects. The held-out BPR only rises with training (docs/decisions.md, section "UnlearnRec"), so the
    epochs after it would not be kept; stopping there saves them without changing the kept state's rule."""
    return settings["select"] == "guard" and settings["guard_stop"] and row["epoch"] > 0 and not row["kept"]


def _simulated_request(train_edges, n_users, n_items, s, rng, device):
    """One simulated request: (request edges, its RequestGraph, context of E_r, BPR sampler over E_r).

    Args:
        train_edges: (E, 2) the training edges the request is drawn from.
        n_users: number of users.
        n_items: number of items.
        s: UnlearnRec's complete settings (the request is a uniform fraction in [`drop_min`, `drop_max`] of E).
        rng: numpy Generator of the pre-training's simulated requests (also seeds the sampler).
        device: where the graphs are built.
    """
    frac = rng.uniform(s["drop_min"], s["drop_max"])
    k = max(1, int(round(frac * len(train_edges))))
    mask = np.zeros(len(train_edges), dtype=bool)
    mask[rng.choice(len(train_edges), size=k, replace=False)] = True
    request, rest = train_edges[mask], train_edges[~mask]
    ctx = GraphContext.from_edges(rest, n_users, n_items, device)
    sampler = BPRSampler(rest, n_users, n_items, seed=int(rng.integers(2**62)), exclude=ctx.user_items)
    return request, RequestGraph.build(request, n_users, device), ctx, sampler


def pretrain_influence_encoder(
    backbone: Backbone,
    train_edges: np.ndarray,
    n_users: int,
    n_items: int,
    settings: dict,
    seed: int,
    device="cpu",
    log: Callable[[str], None] | None = None,
) -> tuple[dict, dict]:
    """Pre-train the IE on simulated requests with the backbone frozen; return (encoder state dict, report).

    Every `resample_every` epochs a new simulated request (a uniform fraction of E) is drawn and Â_del, Â(E_r)
    and the BPR loader over E_r are rebuilt. H0 and η are per-node tables shared by all requests. Loss per step:
    L_M + λ_u L_u + λ_p L_p + λ_c L_c (see losses.py). The returned state is the one `keeps` chooses among the
    held-out checks (`select: guard` or `heldout`) or the last one (`select: budget`); it holds CPU tensors only.
    Keeping the untrained state (epoch 0) when training ran is reported (`untrained_selected`) and warned about;
    `stop_reason` is "budget" (every epoch ran) or "guard" (`stops`), `epochs_run` how many did.

    Args:
        backbone: the trained backbone (frozen here).
        train_edges: (E, 2) its training edges; simulated requests are drawn from them.
        n_users: number of users.
        n_items: number of items.
        settings: UnlearnRec's complete settings (`recunlearn.config.method_settings("unlearnrec", ...)`).
        seed: seed of the simulated requests, samplers and views.
        device: torch device.
        log: called with one line per epoch and per held-out check, or None.
    """
    s = dict(settings)
    device = torch.device(device)
    train_edges = check_edges(train_edges, n_users, n_items)
    backbone.to(device)
    say = log or (lambda msg: None)
    t_start = time.perf_counter()
    with deterministic(seed):
        e0, ebar = original_final(backbone, train_edges, n_users, n_items, device)
        enc = build_encoder(backbone, s, device=device)
        opt = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad], lr=s["lr"])
        rng = np.random.default_rng([seed, 0])  # simulated requests, samplers, L_u subsets
        gen = torch.Generator().manual_seed(seed)  # SSL views, dropped Â_del, InfoNCE node caps
        probe = None
        if s["select"] != "budget":  # its own seed stream, drawn once
            probe = _HeldOutProbe(backbone, train_edges, n_users, n_items, s, np.random.default_rng([seed, 1]), device)
        state_of = lambda: {k: v.detach().cpu().clone() for k, v in enc.state_dict().items()}  # noqa: E731
        selection, history = [], []
        best = {"epoch": 0, "criterion": np.inf, "state": state_of(), "row": None}

        def check(epoch: int) -> dict:
            row = {"epoch": epoch, **probe.evaluate(enc, e0, ebar)}
            first = selection[0] if selection else row
            row["kept"] = epoch == 0 or keeps(s["select"], row, first, best["row"], s["guard_tolerance"])
            selection.append(row)
            if row["kept"]:
                best.update(epoch=epoch, criterion=row["criterion"], state=state_of(), row=row)
            say(f"held-out check {row}")
            return row

        if probe is not None:
            check(0)
        n_requests, stop_reason, last_epoch = 0, "budget", 0
        for epoch in range(1, s["epochs"] + 1):
            t0 = time.perf_counter()
            if (epoch - 1) % s["resample_every"] == 0:
                request, req, ctx, sampler = _simulated_request(train_edges, n_users, n_items, s, rng, device)
                n_requests += 1
            backbone.start_epoch(ctx, gen)
            adj_drop = req.dropped_adjacency(s["c_keep"], gen) if s["lambda_c"] > 0 else None
            meter = LossMeter()
            for users, pos, neg in sampler.epoch(s["batch_size"]):
                users, pos, neg = users.to(device), pos.to(device), neg.to(device)
                layers = enc.influence_layers(req)
                e0_t = enc.apply_delta(e0, enc.delta(ebar, req, layers), req)
                final = backbone.propagate(e0_t, ctx.adj)
                l_m, parts = fidelity_loss(backbone, e0_t, ctx, users, pos, neg, final=final)
                loss = l_m
                if s["lambda_u"] > 0:
                    d = torch.as_tensor(request[sample_rows(rng, len(request), s["u_batch_size"])], device=device)
                    l_u = unlearning_loss(final[d[:, 0]], final[n_users + d[:, 1]])
                    loss = loss + s["lambda_u"] * l_u
                    parts["l_u"] = l_u.detach()
                if s["lambda_p"] > 0:
                    l_p = preservation(
                        final,
                        ebar,
                        users,
                        pos,
                        n_users,
                        s["p_batch_size"],
                        s["tau_p"],
                        s["preservation_reduction"],
                        gen,
                    )
                    loss = loss + s["lambda_p"] * l_p
                    parts["l_p"] = l_p.detach()
                if adj_drop is not None:
                    groups = [
                        cap(req.to_local(torch.unique(users)), s["c_batch_nodes"], gen),
                        cap(req.to_local(n_users + torch.unique(pos)), s["c_batch_nodes"], gen),
                    ]
                    l_c = contrastive_loss(layers, adj_drop, groups, s["tau_c"])
                    loss = loss + s["lambda_c"] * l_c
                    parts["l_c"] = l_c.detach()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                parts.update(l_m=parts.pop("loss"), loss=loss.detach())
                meter.add(parts)
            row = {
                "epoch": epoch,
                **meter.means(),
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            last_epoch = epoch
            say(f"IE pre-train epoch {row}")
            if probe is not None and (epoch % s["heldout_every"] == 0 or epoch == s["epochs"]):
                if stops(s, check(epoch)):
                    stop_reason = "guard"
                    break
        if probe is None:
            best.update(epoch=s["epochs"], state=state_of(), criterion=None)
    untrained = s["epochs"] > 0 and best["epoch"] == 0
    if untrained:
        message = (
            f"UnlearnRec: the checkpoint rule '{s['select']}' kept the UNTRAINED Influence Encoder (epoch 0 of "
            f"{s['epochs']}): 'ie_only' will equal No unlearning. See the selection in the preparation report."
        )
        warnings.warn(message, stacklevel=2)
        logging.getLogger(__name__).warning(message)
    report = {
        "select": s["select"],
        "selected_epoch": best["epoch"],
        "untrained_selected": untrained,
        "selected_criterion": best["criterion"],
        "selection": selection,
        "stop_reason": stop_reason,
        "epochs_run": last_epoch,
        "history": history,
        "n_simulated_requests": n_requests,
        "heldout_edges": probe.n_edges if probe else 0,
        "seconds": time.perf_counter() - t_start,
        "settings": s,
    }
    return best["state"], report
