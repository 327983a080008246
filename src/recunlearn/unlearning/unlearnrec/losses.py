"""The four terms of UnlearnRec's objective (docs/method.md, "Pre-training the IE"), each a small pure function.

    L = L_M + λ_u L_u + λ_p L_p + λ_c L_c

They are separate so each can be checked by hand and weighted (or switched off) from the config; the training
loops in `pretrain.py` and `unlearn.py` only wire them together. All take already-gathered rows, so a caller that
needs the final embeddings for several terms propagates once and reuses them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recunlearn.backbones.base import Backbone, info_nce
from recunlearn.graph.adjacency import GraphContext, propagate

__all__ = ["fidelity_loss", "unlearning_loss", "preservation_loss", "contrastive_loss"]


def fidelity_loss(
    backbone: Backbone,
    e0: torch.Tensor,
    ctx: GraphContext,
    users: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    final: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """L_M: the backbone's own training loss (BPR + L2, + SSL for SGL/SimGCL) with Ẽ0 on the remaining graph.

    Delegating keeps the method model-agnostic: whatever the backbone optimises, the unlearned table must still
    fit it on E_r. Pass `final` (= backbone.propagate(e0, ctx.adj)) to avoid a second main propagation.

    Args:
        backbone: the frozen backbone whose `loss` is used.
        e0: (N, d) the table being trained, Ẽ0.
        ctx: the remaining graph E_r (adjacency, and the views of SGL/SimGCL).
        users: (B,) user ids of the batch.
        pos: (B,) item ids of their positives in E_r.
        neg: (B,) item ids of their sampled negatives.
        final: (N, d) `backbone.propagate(e0, ctx.adj)` if already computed; None: computed by the backbone.
    """
    return backbone.loss(e0, ctx, users, pos, neg, final=final)


def unlearning_loss(user_vecs: torch.Tensor, item_vecs: torch.Tensor) -> torch.Tensor:
    """L_u = −mean_k log σ(−u_k · i_k) over deleted pairs (rows of final embeddings): pushes their scores down.

    Written with logsigmoid so large positive scores give a finite, linear loss instead of log(0).
    """
    return -F.logsigmoid(-(user_vecs * item_vecs).sum(-1)).mean()


def preservation_loss(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    ref_user_vecs: torch.Tensor,
    ref_item_vecs: torch.Tensor,
    tau: float,
    reduction: str,
) -> torch.Tensor:
    """L_p: keep each remaining positive's in-batch ranking as the original model had it.

    For the batch's B positive pairs (u_k, i_k): p_k = log_softmax_j(u_k · i_j / τ)[k], the log-probability of
    the true item among the batch's B positive items; the same from the frozen original embeddings Ē gives
    p̄_k. L_p = MEAN_k (p_k − p̄_k)^2 with reduction="mean" (the project's choice); the authors SUM over the batch
    (reduction="sum"), which silently ties λ_p to the batch size. The reference side carries no gradient.
    Cost is O(B^2 d): callers pass a subsample of a large batch (settings `p_batch_size`, `ft_p_batch_size`).

    Args:
        user_vecs: (B, d) final embeddings of the batch's users, as trained.
        item_vecs: (B, d) final embeddings of their positive items, as trained.
        ref_user_vecs: (B, d) the same users' rows of Ē (the original model).
        ref_item_vecs: (B, d) the same items' rows of Ē.
        tau: softmax temperature (`tau_p`).
        reduction: "mean" or "sum" over the batch (`preservation_reduction`).
    """

    def logp(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:  # diagonal of log_softmax, without the B x B output
        logits = u @ i.T / tau
        return torch.diagonal(logits) - torch.logsumexp(logits, dim=1)

    with torch.no_grad():
        ref = logp(ref_user_vecs, ref_item_vecs)
    sq = (logp(user_vecs, item_vecs) - ref).pow(2)
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    raise ValueError(f"preservation reduction must be 'mean' or 'sum', got {reduction!r}")


def contrastive_loss(
    h_layers: list[torch.Tensor], adj_dropped: torch.Tensor, groups: list[torch.Tensor], tau: float
) -> torch.Tensor:
    """L_c: at every IE layer l = 1..L, InfoNCE between Â_del H^(l-1) and Â'_del H^(l-1) (Â'_del edge-dropped).

    `h_layers` = [H^0, ..., H^L] from `InfluenceEncoder.influence_layers` (so view one is simply H^l), in the
    request's local node ids; `groups` are local-id index tensors (batch users, batch items), each contrasted
    among itself as in SGL. Terms are summed over layers and groups; a group with no rows adds nothing.
    Why: H0 must give a stable influence when the request changes a little, which is what generalising from
    simulated requests to a real one needs.
    """
    total = h_layers[0].new_zeros(())
    for l in range(1, len(h_layers)):
        view_a = h_layers[l]
        view_b = propagate(adj_dropped, h_layers[l - 1])
        for idx in groups:
            if len(idx):
                total = total + info_nce(view_a[idx], view_b[idx], tau)
    return total
