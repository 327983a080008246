"""D2DGN (Sinha, Mandal, Kankanhalli, "Distill to Delete: Unlearning in Graph Networks with Knowledge
Distillation", arXiv 2309.16173) for recommenders (docs/method.md, "Baselines (each a row of the comparison)").

D2DGN marks the original model's knowledge as retained or deleted and distils a student from two teachers: the
*preserver* (the original model) on the retained part, through response-based soft targets (KL) and feature-based
node embeddings (MSE), and the *destroyer*, a randomly initialised model of the same architecture (the authors'
"bad teacher" construction; only the paper's summary could be read here), on the deleted part, so that what the
student outputs on deleted elements carries no more information than an untrained model's. The two parts combine
as L = alpha * L_retain + (1 - alpha) * L_forget. Here:

- Student: a copy of the original initial table E0, run by the unchanged backbone on the REMAINING graph; only the
  copy trains (the backbone is a pure function of (E0, graph)).
- Preserver: the original E0 on the original graph (all of the original knowledge).
- Destroyer (`forget_target: destroyer`, the default): a fresh backbone of the original's class and settings,
  initialised from its own seed and never trained, run on the remaining graph, the student's (`destroyer`; an
  untrained model knows neither graph, so the graph only sets its score scale).
- L_retain = lambda_kl * L_kl + lambda_emb * L_emb. L_kl: for a batch of remaining edges (u, i), the softmax over
  [i, M random items] of the scores / tau, KL(preserver || student). The random items are never items u had in
  the original data, so the preserver's preference for a deleted item is never distilled. L_emb: MSE between
  student and preserver final embeddings of the retained nodes (those touching no deleted edge; zero when none
  is left, e.g. when the request touches every node).
- L_forget: for a sample of deleted edges (u, i), the same soft scores over [i, M random non-items of u], KL(
  destroyer || student). The deleted item ends up ranked among random items the way an untrained model ranks it.
- `forget_target: hinge` keeps the project's earlier substitute for the destroyer: mean(relu(s_del - mean s_non)),
  each sampled deleted score pushed down to the batch's mean score of random non-edges. By construction it puts
  deleted pairs in the lower half of the non-edges (over-forgetting where Retrain keeps them high).

Adaptations to this project: D2DGN's teachers score single nodes or edges of a general graph (node classification
and link prediction, trained with cross-entropy); a recommender here is trained with BPR, which ranks items per user,
so each soft target is a user's distribution over one item and M random items instead of a per-edge probability,
on the bipartite user-item graph. The destroyer's feature-based (embedding) term is left out: the endpoints of a
deleted edge are users and items that keep their other edges, whose embeddings the preserver term must keep.

Adam on the student table, `epochs` passes over the remaining edges; each step costs one propagation of the
remaining graph. Settings: `schemas/methods/d2dgn.yaml`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn.backbones import build_backbone
from recunlearn.graph.adjacency import normalized_adjacency, user_item_csr
from recunlearn.graph.sampling import BPRSampler, sample_non_edges
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask, final_embeddings

__all__ = ["D2DGN", "destroyer", "distil", "hinge", "soft_logits"]

DESTROYER_TAG = 2309  # separates the destroyer's seed from the original's (same seed = the original's own init)


def destroyer(task: UnlearningTask) -> torch.Tensor:
    """The destroyer's final (N x dim) embeddings: a never-trained backbone of the original's class and settings,
    initialised from a seed derived from the original's, run on the remaining graph. Deterministic per task."""
    o, bb = task.original, task.original.backbone
    seed = int(np.random.default_rng([o.seed, DESTROYER_TAG]).integers(2**31))
    config = {"dim": bb.dim, "layers": bb.layers, "l2": bb.l2, **bb.settings}
    fresh = build_backbone(bb.name, o.n_users, o.n_items, config, seed=seed)
    return torch.cat(final_embeddings(fresh, fresh.embedding.detach().to(o.device), task.remaining))


def soft_logits(final: torch.Tensor, users: torch.Tensor, items: torch.Tensor, n_users: int) -> torch.Tensor:
    """(B, C) scores of each user against its row of C candidate items (item ids, not offset by n_users)."""
    return (final[users][:, None, :] * final[n_users + items]).sum(-1)


def distil(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the row-wise softmaxes, averaged over rows (the teacher is a constant).

    The value is the KL; the gradient is its exact form, (softmax(student) - softmax(teacher)) / rows, which is
    exactly zero where the student matches the teacher. Autograd through log_softmax leaves a rounding residual
    softmax * (sum(p_teacher) - 1) of about 1e-8 there, and Adam's per-coordinate scaling turns such residuals
    into full-size steps: a student that already equals its teacher would drift.
    """
    teacher_log = F.log_softmax(teacher_logits.detach(), 1)
    student_log = F.log_softmax(student_logits, 1)
    p_teacher = teacher_log.exp()
    value = (p_teacher * (teacher_log - student_log)).sum(1).mean().detach()
    surrogate = ((student_log.exp() - p_teacher).detach() * student_logits).sum(1).mean()
    return value + surrogate - surrogate.detach()


def _retained_nodes(request: np.ndarray, n_users: int, n_nodes: int, device) -> torch.Tensor | None:
    """Mask of the nodes that touch no deleted edge (the ones whose embeddings the preserver term keeps); None
    when there is none (checked once here, not per step)."""
    keep = torch.ones(n_nodes, dtype=torch.bool, device=device)
    keep[torch.as_tensor(request[:, 0], device=device)] = False
    keep[torch.as_tensor(n_users + request[:, 1], device=device)] = False
    return keep if bool(keep.any()) else None


@dataclass
class _Teachers:
    """What one run distils from: the preserver's and (if used) the destroyer's final embeddings, the retained
    nodes, and the sampler whose negatives (never an original item of the user) fill the soft-score candidates."""

    preserver: torch.Tensor
    destroyer: torch.Tensor | None
    retained: torch.Tensor | None
    sampler: BPRSampler
    candidates: int
    tau: float

    def soft_kl(self, final: torch.Tensor, teacher: torch.Tensor, users: np.ndarray, items: np.ndarray):
        """KL(teacher || student) of each user's soft scores over [its item, M random never-had items].

        Ids come host-side (the sampler is numpy), so no device-to-host copy happens per step."""
        m, device, n_users = self.candidates, final.device, self.sampler.n_users
        extra = self.sampler.negatives(np.repeat(users, m)).reshape(len(users), m)
        cands = torch.as_tensor(np.concatenate([items[:, None], extra], axis=1), device=device)
        u = torch.as_tensor(users, device=device)
        student_logits = soft_logits(final, u, cands, n_users) / self.tau
        return distil(student_logits, soft_logits(teacher, u, cands, n_users) / self.tau)

    def retain_terms(self, final: torch.Tensor, users: np.ndarray, items: np.ndarray):
        """(L_kl, L_emb) of a batch of remaining edges against the preserver."""
        kl = self.soft_kl(final, self.preserver, users, items)
        if self.retained is None:
            return kl, final.new_zeros(())
        return kl, F.mse_loss(final[self.retained], self.preserver[self.retained])


def hinge(final: torch.Tensor, pairs: torch.Tensor, non: torch.Tensor, n_users: int) -> torch.Tensor:
    """mean relu(s_del - mean s_non): deleted scores pushed down to the batch's mean non-edge score."""
    s_del = (final[pairs[:, 0]] * final[n_users + pairs[:, 1]]).sum(-1)
    s_non = (final[non[:, 0]] * final[n_users + non[:, 1]]).sum(-1)
    return F.relu(s_del - s_non.mean().detach()).mean()


class D2DGN(UnlearningMethod):
    """Distil a student from the original model on retained knowledge and from a random teacher (or a hinge) on
    deleted edges, weighted alpha : 1 - alpha (module docstring)."""

    name = "d2dgn"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, s, bb = task.original, self.settings, task.original.backbone
        device, n_users = torch.device(o.device), o.n_users
        start = time.perf_counter()
        request = np.asarray(task.request, dtype=np.int64).reshape(-1, 2)
        adj = normalized_adjacency(task.remaining, n_users, o.n_items, device)
        sampler = BPRSampler(
            task.remaining, n_users, o.n_items, seed=o.seed, exclude=user_item_csr(o.trained_on, n_users, o.n_items)
        )
        teachers = _Teachers(
            preserver=torch.cat(final_embeddings(bb, bb.embedding.detach().to(device), o.trained_on)),
            destroyer=destroyer(task) if s["forget_target"] == "destroyer" else None,
            retained=_retained_nodes(request, n_users, n_users + o.n_items, device),
            sampler=sampler,
            candidates=s["candidates"],
            tau=s["tau"],
        )
        rng = np.random.default_rng(o.seed + 1)
        student = bb.embedding.detach().clone().to(device).requires_grad_(True)
        opt = torch.optim.Adam([student], lr=s["lr"])
        n_del = min(s["del_batch_size"], len(request))
        t_setup = time.perf_counter()
        steps, last = 0, {}
        for epoch in range(s["epochs"]):
            non_edges = self._hinge_non_edges(task, n_del * sampler.n_batches(s["batch_size"]), epoch, device)
            for b, (users, pos, _) in enumerate(sampler.epoch(s["batch_size"])):
                final = bb.propagate(student, adj)
                kl, emb = teachers.retain_terms(final, users.numpy(), pos.numpy())
                loss = s["alpha"] * (s["lambda_kl"] * kl + s["lambda_emb"] * emb)
                last = {"kl": float(kl.detach()), "emb": float(emb.detach())}
                if n_del:
                    pairs = request[rng.choice(len(request), size=n_del, replace=False)]  # host-side ids
                    if teachers.destroyer is not None:
                        forget = teachers.soft_kl(final, teachers.destroyer, pairs[:, 0], pairs[:, 1])
                    else:
                        non = non_edges[b * n_del : (b + 1) * n_del]
                        forget = hinge(final, torch.as_tensor(pairs, device=device), non, n_users)
                    loss = loss + (1.0 - s["alpha"]) * forget
                    last["forget"] = float(forget.detach())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
        with torch.no_grad():
            users_emb, items_emb = bb.split(bb.propagate(student.detach(), adj))
        end = time.perf_counter()
        timings = {"setup_s": t_setup - start, "train_s": end - t_setup}
        info = {"steps": steps, "forget_target": s["forget_target"], "alpha": s["alpha"], "last": last}
        return {self.name: Unlearned(users_emb, items_emb, end - start, timings=timings, info=info)}

    def _hinge_non_edges(self, task: UnlearningTask, n: int, epoch: int, device) -> torch.Tensor | None:
        """The epoch's random non-edges for the hinge (None for the destroyer, which needs none)."""
        if self.settings["forget_target"] != "hinge" or n == 0:
            return None
        o = task.original
        pairs = sample_non_edges(o.n_users, o.n_items, [o.trained_on], n, seed=o.seed + 7919 * (epoch + 1))
        return torch.as_tensor(pairs, device=device)
