"""UnlearnRec on one real request: the Influence Encoder's forward pass ("ie_only"), then a short fine-tune ("ie_ft").

The method is in docs/method.md, "Unlearning a real request"; the settings are `schemas/methods/unlearnrec.yaml`.
Why it is cheap: the IE acts on the request's own nodes, every fine-tune step runs one main propagation, and L_u
uses a sampled subset of the request per step, never the whole request.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from recunlearn.backbones.base import Backbone
from recunlearn.backbones.trainer import deterministic
from recunlearn.errors import RequestError
from recunlearn.graph.adjacency import GraphContext, check_edges
from recunlearn.graph.edges import remove_edges
from recunlearn.graph.sampling import BPRSampler, sample_non_edges
from recunlearn.unlearning.unlearnrec._common import original_final, preservation, sample_rows
from recunlearn.unlearning.unlearnrec.encoder import build_encoder
from recunlearn.unlearning.unlearnrec.losses import fidelity_loss, unlearning_loss

__all__ = ["UnlearnOutcome", "unlearn_request"]


@dataclass
class UnlearnOutcome:
    """Both UnlearnRec variants for one request: "ie_only" (IE forward) and "ie_ft" (IE + short fine-tune).

    Final embeddings are the unchanged backbone run on the remaining graph Â(E_r). Timings in seconds:
    setup_s (remaining graph, Ē, the encoder), ie_forward_s = ie_encode_s (request graph + IE: Ẽ0) +
    ie_propagate_s (the backbone's propagation of Ẽ0 on the remaining graph, which scoring any model needs),
    finetune_s, total_s.
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


def unlearn_request(
    backbone: Backbone,
    encoder_state: dict,
    train_edges: np.ndarray,
    request_edges: np.ndarray,
    n_users: int,
    n_items: int,
    settings: dict,
    seed: int,
    device="cpu",
) -> UnlearnOutcome:
    """Unlearn one real request with a pre-trained IE: one forward pass, then a short fine-tune.

    Fine-tune (made cheap, see the module docstring): trainable = a copy B of E0 and the MLP; ΔE0 is
    computed once with the frozen H0 and η, and Ẽ0 = B + MLP(ΔE0) on the request's rows, so step 0 starts
    exactly at the IE-only table. Loss L_M + ft_lambda_u L_u + ft_lambda_p L_p on batches of E_r, one
    propagation per step, L_u on `ft_u_batch_size` sampled request edges. Every `ft_check_every` steps:
    forgetting holds when the mean raw score of ALL deleted edges <= the mean over fixed random non-edges
    (both from that step's embeddings); utility holds when the window's mean L_M improved by less than
    `ft_tol` (relative) over the previous window. With ft_stop="criteria" training stops once both hold,
    else after `ft_max_epochs`.

    Args:
        backbone: the trained backbone (left unchanged).
        encoder_state: the pre-trained encoder's state dict (`pretrain_influence_encoder`).
        train_edges: (E, 2) the original model's training edges.
        request_edges: (R, 2) the edges to forget, all in `train_edges`.
        n_users: number of users.
        n_items: number of items.
        settings: UnlearnRec's complete settings (`recunlearn.config.method_settings("unlearnrec", ...)`).
        seed: seed of the fine-tune's sampler and subsamples.
        device: torch device.
    """
    s = dict(settings)
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
        e0, ebar = original_final(backbone, train_edges, n_users, n_items, device)
        ctx = GraphContext.from_edges(rest, n_users, n_items, device)
        enc = build_encoder(backbone, s, state=encoder_state, device=device)
        t_setup = time.perf_counter()
        with torch.no_grad():
            req = enc.request_graph(request, device)
            delta = enc.delta(ebar, req)
            e0_ie = enc.apply_delta(e0, delta, req)
            t_encode = time.perf_counter()
            final_ie = backbone.propagate(e0_ie, ctx.adj)
        t_ie = time.perf_counter()
        if s["ft_max_epochs"] > 0:
            e0_ft, history, reason = _finetune(backbone, enc, e0, ebar, delta, req, ctx, request, train_edges, s, seed)
            with torch.no_grad():
                final_ft = backbone.propagate(e0_ft, ctx.adj)
        else:
            e0_ft, final_ft, history, reason = e0_ie.clone(), final_ie.clone(), [], "ft_max_epochs=0"
        t_end = time.perf_counter()
    timings = {
        "setup_s": t_setup - t_start,
        "ie_forward_s": t_ie - t_setup,
        "ie_encode_s": t_encode - t_setup,
        "ie_propagate_s": t_ie - t_encode,
        "finetune_s": t_end - t_ie,
        "total_s": t_end - t_start,
    }
    return UnlearnOutcome(
        e0_ie=e0_ie,
        final_ie=final_ie,
        e0_ft=e0_ft,
        final_ft=final_ft,
        remaining_edges=rest,
        timings=timings,
        history=history,
        stop_reason=reason,
    )


def _finetune(backbone, enc, e0, ebar, delta, req, ctx, request, train_edges, s, seed):
    """The fine-tune loop of `unlearn_request`; returns (Ẽ0 after fine-tune, window history, stop reason).

    Args:
        backbone: the frozen trained backbone (its `loss`, `propagate` and `score` are used).
        enc: the pre-trained InfluenceEncoder; its MLP is copied and trained, the encoder itself is untouched.
        e0: (N, d) the original table E0; a trainable copy of it is the fine-tune's base B.
        ebar: (N, d) the original model's final embeddings Ē on the full training graph (for L_p).
        delta: (m, d) ΔE0 on the request's local nodes, computed once by the frozen IE.
        req: the request's RequestGraph (its `nodes` are the rows ΔE0 is added to).
        ctx: the remaining graph E_r the batches come from and the backbone runs on.
        request: (R, 2) the unique deleted edges (L_u samples and the forgetting check use them).
        train_edges: (E, 2) the original training edges (the non-edges of the check avoid them).
        s: UnlearnRec's complete settings (the `ft_*` keys, `tau_p`, `preservation_reduction`).
        seed: seed of the sampler, the subsamples and the SSL views.
    """
    n_users, n_items, device = ctx.n_users, ctx.n_items, e0.device
    mlp = copy.deepcopy(enc.mlp).requires_grad_(True)  # the encoder's own (pre-trained) MLP stays untouched
    base = torch.nn.Parameter(e0.clone())
    opt = torch.optim.Adam([base, *mlp.parameters()], lr=s["ft_lr"])
    rng = np.random.default_rng([seed, 2])
    gen = torch.Generator().manual_seed(seed)
    sampler = BPRSampler(ctx.edges, n_users, n_items, seed=int(rng.integers(2**62)), exclude=ctx.user_items)
    non = torch.as_tensor(
        sample_non_edges(n_users, n_items, [train_edges], s["ft_nonedge_pairs"], int(rng.integers(2**62))),
        device=device,
    )
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
            d = deleted[torch.as_tensor(sample_rows(rng, len(request), s["ft_u_batch_size"]), device=device)]
            l_u = unlearning_loss(final[d[:, 0]], final[n_users + d[:, 1]])
            loss = l_m + s["ft_lambda_u"] * l_u
            l_p = torch.zeros((), device=device)
            if s["ft_lambda_p"] > 0:
                l_p = preservation(
                    final, ebar, users, pos, n_users, s["ft_p_batch_size"], s["tau_p"], s["preservation_reduction"], gen
                )
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
            cur = float(torch.stack(window).double().mean())  # the one read of the window's losses
            row = {
                "step": step,
                "epoch": epoch,
                "l_m": cur,
                "l_u": float(l_u.detach()),
                "l_p": float(l_p.detach()),
                "deleted_mean": del_mean,
                "nonedge_mean": non_mean,
                "forgetting_ok": del_mean <= non_mean,
                "utility_ok": prev is not None and prev - cur < s["ft_tol"] * abs(prev),
            }
            history.append(row)
            prev, window = cur, []
            if s["ft_stop"] == "criteria" and row["forgetting_ok"] and row["utility_ok"]:
                with torch.no_grad():
                    return base.index_add(0, req.nodes, mlp(delta)), history, "criteria"
    with torch.no_grad():
        return base.index_add(0, req.nodes, mlp(delta)), history, "max_epochs"
