"""UnlearnRec: pre-train the Influence Encoder on simulated requests, then unlearn a real request in one pass.

Two entry points (the lead wraps them behind the project's unlearning-method interface):
- `pretrain_influence_encoder`: once per trained backbone, before any real request (method.md section 4);
- `unlearn_request`: IE forward ("ie_only") + a short, cheap fine-tune ("ie_ft") for one real request (section 5).

Leakage guard: pre-training never sees the evaluated request; its signature does not even accept one.
Checkpoint selection uses a held-out *simulated* request drawn from the training edges with its own seed stream
(or a fixed epoch budget).

Cost (method.md section 10): every step runs exactly one main propagation of the backbone (its SSL views aside),
and the unlearning loss uses a sampled subset of the request per step, never the whole request.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn.errors import RequestError
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.backbones.base import Backbone
from recunlearn.graph.adjacency import GraphContext, check_edges, normalized_adjacency
from recunlearn.graph.edges import remove_edges
from recunlearn.graph.sampling import BPRSampler
from recunlearn.backbones.trainer import deterministic
from recunlearn.unlearning.unlearnrec.encoder import InfluenceEncoder, RequestGraph
from recunlearn.unlearning.unlearnrec.losses import contrastive_loss, fidelity_loss, preservation_loss, unlearning_loss

__all__ = ["DEFAULT_IE_SETTINGS", "resolve_ie_settings", "build_encoder",
           "pretrain_influence_encoder", "unlearn_request", "UnlearnOutcome"]

DEFAULT_IE_SETTINGS: dict = {
    # --- Influence Encoder (method.md section 3)
    "ie_layers": 3,                # L: propagation steps over Â_del
    "alpha": 0.1,                  # ΔE0 = H̄ − alpha W̄ (authors' code: 0.1; the paper's equation has none)
    "eta_init": 0.002,             # initial per-node withdraw rate η
    "leaky_slope": 0.99,           # LeakyReLU slope in the identity-initialised 2-layer MLP
    "freeze_mlp": True,            # keep the MLP at identity during pre-training (authors' code)
    # --- pre-training (section 4)
    "epochs": 200,
    "batch_size": 4096,            # remaining edges per step for L_M and L_p
    "lr": 1e-3,                    # Adam on H0, η (+ MLP if not frozen)
    "resample_every": 5,           # epochs between simulated requests
    "drop_min": 0.1,               # a simulated request is a uniform fraction in [drop_min, drop_max] of E
    "drop_max": 0.2,
    "lambda_u": 0.5,               # weight of L_u
    "u_batch_size": 4096,          # request edges sampled per step for L_u
    "lambda_p": 0.01,              # weight of L_p
    "tau_p": 1.0,
    "p_batch_size": 1024,          # batch positives entering L_p's in-batch softmax (O(B^2)); 0 = whole batch
    "preservation_reduction": "mean",  # L_p = MEAN of squared log-softmax differences ("sum" = authors')
    "lambda_c": 1e-3,              # weight of L_c
    "tau_c": 1.0,
    "c_keep": 0.95,                # edge keep rate of the dropped Â_del view
    "c_batch_nodes": 1024,         # at most this many batch users (and items) per InfoNCE; 0 = all
    "select": "heldout",           # "heldout": best held-out simulated request; "budget": last epoch
    "heldout_drop": 0.15,          # fraction of E in the held-out simulated request
    "heldout_every": 5,            # epochs between held-out checks (epoch 0 and the last are always checked)
    "heldout_pairs": 4096,         # deleted / non-edge / remaining pairs scored per check
    "heldout_utility_weight": 1.0, # criterion = max(0, forgetting gap) + weight * BPR on remaining pairs
    # --- unlearning a real request (section 5)
    "ft_lr": 1e-3,
    "ft_batch_size": 8192,         # large batches: few steps per epoch
    "ft_lambda_u": 0.1,
    "ft_lambda_p": 0.001,
    "ft_u_batch_size": 2048,       # request edges sampled per step for L_u
    "ft_p_batch_size": 1024,       # batch positives entering L_p's in-batch softmax; 0 = whole batch
    "ft_max_epochs": 3,            # 0 = no fine-tune (ie_ft == ie_only)
    "ft_stop": "criteria",         # "criteria": stop once forgetting and utility hold; "max_epochs": never early
    "ft_check_every": 5,           # steps per stopping check window
    "ft_tol": 1e-3,                # utility holds when the window's mean L_M improves by < ft_tol (relative)
    "ft_nonedge_pairs": 4096,      # random non-edges for the forgetting criterion
}

_CHOICES = {"select": ("heldout", "budget"), "ft_stop": ("criteria", "max_epochs"),
            "preservation_reduction": ("mean", "sum")}


def resolve_ie_settings(settings: dict | None) -> dict:
    """Defaults overlaid with `settings`; an unknown key or an invalid choice raises ValueError."""
    settings = dict(settings or {})
    unknown = set(settings) - set(DEFAULT_IE_SETTINGS)
    if unknown:
        raise ValueError(f"unknown UnlearnRec settings {sorted(unknown)}; known: {sorted(DEFAULT_IE_SETTINGS)}")
    s = {**DEFAULT_IE_SETTINGS, **settings}
    for key, allowed in _CHOICES.items():
        if s[key] not in allowed:
            raise ValueError(f"UnlearnRec setting {key}={s[key]!r}; choose one of {allowed}")
    if not 0.0 < s["drop_min"] <= s["drop_max"] < 1.0 or not 0.0 < s["heldout_drop"] < 1.0:
        raise ValueError("need 0 < drop_min <= drop_max < 1 and 0 < heldout_drop < 1")
    for key in ("batch_size", "resample_every", "heldout_every", "heldout_pairs", "ft_batch_size",
                "ft_check_every", "ft_nonedge_pairs", "ie_layers"):
        if int(s[key]) < (0 if key == "ie_layers" else 1):
            raise ValueError(f"UnlearnRec setting {key} must be a positive integer, got {s[key]!r}")
    if not 0.0 < s["c_keep"] <= 1.0:
        raise ValueError(f"UnlearnRec setting c_keep must be in (0, 1], got {s['c_keep']!r}")
    return s


def build_encoder(backbone: Backbone, settings: dict, state: dict | None = None, device="cpu") -> InfluenceEncoder:
    """An InfluenceEncoder shaped for `backbone`, optionally loaded from a saved state dict."""
    enc = InfluenceEncoder(backbone.n_users, backbone.n_items, backbone.dim, layers=settings["ie_layers"],
                           alpha=settings["alpha"], eta_init=settings["eta_init"],
                           leaky_slope=settings["leaky_slope"], freeze_mlp=settings["freeze_mlp"])
    if state is not None:
        enc.load_state_dict(state)
    return enc.to(device)


def _sample_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.arange(n) if k <= 0 or k >= n else rng.choice(n, size=k, replace=False)


def _preservation(final, ebar, users, pos, n_users, k, tau, reduction, gen) -> torch.Tensor:
    """L_p on at most k of the batch's positive pairs (the in-batch softmax is O(k^2))."""
    keep = _cap(torch.arange(len(users), device=users.device), k, gen)
    u, i = users[keep], n_users + pos[keep]
    return preservation_loss(final[u], final[i], ebar[u], ebar[i], tau, reduction)


def _cap(idx: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    if k <= 0 or len(idx) <= k:
        return idx
    return idx[torch.randperm(len(idx), generator=gen)[:k].to(idx.device)]


@torch.no_grad()
def _original_final(backbone: Backbone, train_edges, n_users, n_items, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(E0, Ē): the frozen table and its final embeddings on the full training graph."""
    e0 = backbone.embedding.detach()
    return e0, backbone.propagate(e0, normalized_adjacency(train_edges, n_users, n_items, device))


class _HeldOutProbe:
    """Checkpoint criterion on a held-out simulated request (never the evaluated one).

    Criterion (lower is better) = max(0, gap) + w * bpr, where
      gap = mean σ(score of held-out deleted edges) − mean σ(score of random non-edges), the unlearned model
            being Ẽ0 from the IE on Â(E \\ held-out): how far forgetting is from the non-edge level. It is clipped
            at 0 because scoring deleted edges below non-edges is no extra credit (method.md section 10);
      bpr = BPR loss on a fixed sample of remaining edges with fixed negatives: the utility proxy.
    """

    def __init__(self, backbone, train_edges, n_users, n_items, s, rng, device):
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
        deleted = train_edges[mask][_sample_rows(rng, k, n)]
        non = sample_non_edges(n_users, n_items, [train_edges], n, seed)
        util = rest[_sample_rows(rng, len(rest), n)]
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


def _simulated_request(train_edges, n_users, n_items, s, rng, device):
    frac = rng.uniform(s["drop_min"], s["drop_max"])
    k = max(1, int(round(frac * len(train_edges))))
    mask = np.zeros(len(train_edges), dtype=bool)
    mask[rng.choice(len(train_edges), size=k, replace=False)] = True
    request, rest = train_edges[mask], train_edges[~mask]
    ctx = GraphContext.from_edges(rest, n_users, n_items, device)
    sampler = BPRSampler(rest, n_users, n_items, seed=int(rng.integers(2**62)), exclude=ctx.user_items)
    return request, RequestGraph.build(request, n_users, device), ctx, sampler


def pretrain_influence_encoder(backbone: Backbone, train_edges: np.ndarray, n_users: int, n_items: int,
                               settings: dict | None, seed: int, device="cpu",
                               log: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Pre-train the IE on simulated requests with the backbone frozen; return (encoder state dict, report).

    Every `resample_every` epochs a new simulated request (a uniform fraction of E) is drawn and Â_del, Â(E_r)
    and the BPR loader over E_r are rebuilt. H0 and η are per-node tables shared by all requests. Loss per step:
    L_M + λ_u L_u + λ_p L_p + λ_c L_c (see losses.py). The returned state is the held-out-best one
    (`select: heldout`) or the last one (`select: budget`); it holds CPU tensors only.
    """
    s = resolve_ie_settings(settings)
    device = torch.device(device)
    train_edges = check_edges(train_edges, n_users, n_items)
    backbone.to(device)
    say = log or (lambda msg: None)
    t_start = time.perf_counter()
    with deterministic(seed):
        e0, ebar = _original_final(backbone, train_edges, n_users, n_items, device)
        enc = build_encoder(backbone, s, device=device)
        opt = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad], lr=s["lr"])
        rng = np.random.default_rng([seed, 0])  # simulated requests, samplers, L_u subsets
        gen = torch.Generator().manual_seed(seed)  # SSL views, dropped Â_del, InfoNCE node caps
        probe = None
        if s["select"] == "heldout":  # its own seed stream, drawn once
            probe = _HeldOutProbe(backbone, train_edges, n_users, n_items, s, np.random.default_rng([seed, 1]),
                                  device)
        state_of = lambda: {k: v.detach().cpu().clone() for k, v in enc.state_dict().items()}  # noqa: E731
        selection, history = [], []
        best = {"epoch": 0, "criterion": np.inf, "state": state_of()}

        def check(epoch: int) -> None:
            row = {"epoch": epoch, **probe.evaluate(enc, e0, ebar)}
            selection.append(row)
            if row["criterion"] < best["criterion"]:
                best.update(epoch=epoch, criterion=row["criterion"], state=state_of())
            say(f"held-out check {row}")

        if probe is not None:
            check(0)
        n_requests = 0
        for epoch in range(1, s["epochs"] + 1):
            t0 = time.perf_counter()
            if (epoch - 1) % s["resample_every"] == 0:
                request, req, ctx, sampler = _simulated_request(train_edges, n_users, n_items, s, rng, device)
                n_requests += 1
            backbone.start_epoch(ctx, gen)
            adj_drop = req.dropped_adjacency(s["c_keep"], gen) if s["lambda_c"] > 0 else None
            sums, n_steps = {}, 0
            for users, pos, neg in sampler.epoch(s["batch_size"]):
                users, pos, neg = users.to(device), pos.to(device), neg.to(device)
                layers = enc.influence_layers(req)
                e0_t = enc.apply_delta(e0, enc.delta(ebar, req, layers), req)
                final = backbone.propagate(e0_t, ctx.adj)
                l_m, parts = fidelity_loss(backbone, e0_t, ctx, users, pos, neg, final=final)
                loss = l_m
                if s["lambda_u"] > 0:
                    d = torch.as_tensor(request[_sample_rows(rng, len(request), s["u_batch_size"])], device=device)
                    l_u = unlearning_loss(final[d[:, 0]], final[n_users + d[:, 1]])
                    loss = loss + s["lambda_u"] * l_u
                    parts["l_u"] = float(l_u.detach())
                if s["lambda_p"] > 0:
                    l_p = _preservation(final, ebar, users, pos, n_users, s["p_batch_size"], s["tau_p"],
                                        s["preservation_reduction"], gen)
                    loss = loss + s["lambda_p"] * l_p
                    parts["l_p"] = float(l_p.detach())
                if adj_drop is not None:
                    groups = [_cap(req.to_local(torch.unique(users)), s["c_batch_nodes"], gen),
                              _cap(req.to_local(n_users + torch.unique(pos)), s["c_batch_nodes"], gen)]
                    l_c = contrastive_loss(layers, adj_drop, groups, s["tau_c"])
                    loss = loss + s["lambda_c"] * l_c
                    parts["l_c"] = float(l_c.detach())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                parts.update(l_m=parts.pop("loss"), loss=float(loss.detach()))
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                n_steps += 1
            row = {"epoch": epoch, **{k: v / max(n_steps, 1) for k, v in sums.items()},
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            say(f"IE pre-train epoch {row}")
            if probe is not None and (epoch % s["heldout_every"] == 0 or epoch == s["epochs"]):
                check(epoch)
        if probe is None:
            best.update(epoch=s["epochs"], state=state_of(), criterion=None)
    report = {"select": s["select"], "selected_epoch": best["epoch"], "selected_criterion": best["criterion"],
              "selection": selection, "history": history, "n_simulated_requests": n_requests,
              "heldout_edges": probe.n_edges if probe else 0, "seconds": time.perf_counter() - t_start,
              "settings": s}
    return best["state"], report


@dataclass
class UnlearnOutcome:
    """Both UnlearnRec variants for one request: "ie_only" (IE forward) and "ie_ft" (IE + short fine-tune).

    Final embeddings are the unchanged backbone run on the remaining graph Â(E_r). Timings in seconds:
    setup_s (remaining graph, Ē, request graph), ie_forward_s (IE forward + one propagation), finetune_s, total_s.
    """

    e0_ie: torch.Tensor
    final_ie: torch.Tensor
    e0_ft: torch.Tensor
    final_ft: torch.Tensor
    remaining_edges: np.ndarray
    timings: dict
    history: list[dict] = field(default_factory=list)
    stop_reason: str = ""

    @property
    def variants(self) -> dict[str, torch.Tensor]:
        """Final embeddings by variant name: {"ie_only": ..., "ie_ft": ...}."""
        return {"ie_only": self.final_ie, "ie_ft": self.final_ft}


def unlearn_request(backbone: Backbone, encoder_state: dict, train_edges: np.ndarray, request_edges: np.ndarray,
                    n_users: int, n_items: int, settings: dict | None, seed: int, device="cpu") -> UnlearnOutcome:
    """Unlearn one real request with a pre-trained IE: one forward pass, then a short fine-tune.

    Fine-tune (method.md section 5, made cheap per section 10): trainable = a copy B of E0 and the MLP; ΔE0 is
    computed once with the frozen H0 and η, and Ẽ0 = B + MLP(ΔE0) on the request's rows, so step 0 starts
    exactly at the IE-only table. Loss L_M + ft_lambda_u L_u + ft_lambda_p L_p on batches of E_r, one
    propagation per step, L_u on `ft_u_batch_size` sampled request edges. Every `ft_check_every` steps:
    forgetting holds when the mean raw score of ALL deleted edges <= the mean over fixed random non-edges
    (both from that step's embeddings); utility holds when the window's mean L_M improved by less than
    `ft_tol` (relative) over the previous window. With ft_stop="criteria" training stops once both hold,
    else after `ft_max_epochs`.
    """
    s = resolve_ie_settings(settings)
    device = torch.device(device)
    train_edges = check_edges(train_edges, n_users, n_items)
    request = np.unique(check_edges(request_edges, n_users, n_items), axis=0)
    if len(request) == 0:
        raise RequestError("the unlearning request is empty")
    backbone.to(device)
    t_start = time.perf_counter()
    rest = remove_edges(train_edges, request, n_items)
    if len(train_edges) - len(rest) < len(request):
        raise RequestError("the unlearning request names pairs that are not training edges")
    with deterministic(seed):
        e0, ebar = _original_final(backbone, train_edges, n_users, n_items, device)
        ctx = GraphContext.from_edges(rest, n_users, n_items, device)
        enc = build_encoder(backbone, s, state=encoder_state, device=device)
        t_setup = time.perf_counter()
        with torch.no_grad():
            req = enc.request_graph(request, device)
            delta = enc.delta(ebar, req)
            e0_ie = enc.apply_delta(e0, delta, req)
            final_ie = backbone.propagate(e0_ie, ctx.adj)
        t_ie = time.perf_counter()
        if s["ft_max_epochs"] > 0:
            e0_ft, history, reason = _finetune(backbone, enc, e0, ebar, delta, req, ctx, request, train_edges, s,
                                               seed)
            with torch.no_grad():
                final_ft = backbone.propagate(e0_ft, ctx.adj)
        else:
            e0_ft, final_ft, history, reason = e0_ie.clone(), final_ie.clone(), [], "ft_max_epochs=0"
        t_end = time.perf_counter()
    timings = {"setup_s": t_setup - t_start, "ie_forward_s": t_ie - t_setup, "finetune_s": t_end - t_ie,
               "total_s": t_end - t_start}
    return UnlearnOutcome(e0_ie=e0_ie, final_ie=final_ie, e0_ft=e0_ft, final_ft=final_ft, remaining_edges=rest,
                          timings=timings, history=history, stop_reason=reason)


def _finetune(backbone, enc, e0, ebar, delta, req, ctx, request, train_edges, s, seed):
    """The fine-tune loop of `unlearn_request`; returns (Ẽ0 after fine-tune, window history, stop reason)."""
    n_users, n_items, device = ctx.n_users, ctx.n_items, e0.device
    mlp = copy.deepcopy(enc.mlp).requires_grad_(True)  # the encoder's own (pre-trained) MLP stays untouched
    base = torch.nn.Parameter(e0.clone())
    opt = torch.optim.Adam([base, *mlp.parameters()], lr=s["ft_lr"])
    rng = np.random.default_rng([seed, 2])
    gen = torch.Generator().manual_seed(seed)
    sampler = BPRSampler(ctx.edges, n_users, n_items, seed=int(rng.integers(2**62)), exclude=ctx.user_items)
    non = torch.as_tensor(sample_non_edges(n_users, n_items, [train_edges], s["ft_nonedge_pairs"],
                                           int(rng.integers(2**62))), device=device)
    deleted = torch.as_tensor(request, device=device)
    delta = delta.detach()
    history, window, prev, step = [], [], None, 0
    last_step = s["ft_max_epochs"] * sampler.n_batches(s["ft_batch_size"])
    for epoch in range(1, s["ft_max_epochs"] + 1):
        backbone.start_epoch(ctx, gen)
        for users, pos, neg in sampler.epoch(s["ft_batch_size"]):
            users, pos, neg = users.to(device), pos.to(device), neg.to(device)
            e0_t = base.index_add(0, req.nodes, mlp(delta))
            final = backbone.propagate(e0_t, ctx.adj)
            l_m, parts = fidelity_loss(backbone, e0_t, ctx, users, pos, neg, final=final)
            d = deleted[torch.as_tensor(_sample_rows(rng, len(request), s["ft_u_batch_size"]), device=device)]
            l_u = unlearning_loss(final[d[:, 0]], final[n_users + d[:, 1]])
            loss = l_m + s["ft_lambda_u"] * l_u
            l_p = torch.zeros(())
            if s["ft_lambda_p"] > 0:
                l_p = _preservation(final, ebar, users, pos, n_users, s["ft_p_batch_size"], s["tau_p"],
                                    s["preservation_reduction"], gen)
                loss = loss + s["ft_lambda_p"] * l_p
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            window.append(parts["loss"])
            if step % s["ft_check_every"] and step != last_step:
                continue
            with torch.no_grad():  # criteria on this step's (pre-update) embeddings: no extra propagation
                f = final.detach()
                del_mean = float(backbone.score(f, deleted[:, 0], deleted[:, 1]).mean())
                non_mean = float(backbone.score(f, non[:, 0], non[:, 1]).mean())
            cur = float(np.mean(window))
            row = {"step": step, "epoch": epoch, "l_m": cur, "l_u": float(l_u.detach()), "l_p": float(l_p.detach()),
                   "deleted_mean": del_mean, "nonedge_mean": non_mean, "forgetting_ok": del_mean <= non_mean,
                   "utility_ok": prev is not None and prev - cur < s["ft_tol"] * abs(prev)}
            history.append(row)
            prev, window = cur, []
            if s["ft_stop"] == "criteria" and row["forgetting_ok"] and row["utility_ok"]:
                with torch.no_grad():
                    return base.index_add(0, req.nodes, mlp(delta)), history, "criteria"
    with torch.no_grad():
        return base.index_add(0, req.nodes, mlp(delta)), history, "max_epochs"
