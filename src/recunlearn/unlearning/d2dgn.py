"""D2DGN (Sinha, Mandal, Kankanhalli, "Distill to Delete: Unlearning in Graph Networks with Knowledge
Distillation", 2023) for recommenders.

D2DGN splits the original model's knowledge into a part to retain and a part to delete and distils a student:
retained knowledge from the original model (the "preserver") through response-based soft targets (KL) and
feature-based node embeddings (MSE); deleted knowledge is steered away. Here:

- Student: a copy of the original initial table E0, run by the unchanged backbone on the REMAINING graph; only
  the copy trains (the backbone is a pure function of (E0, graph)).
- Teacher: the original model as trained, i.e. the original E0 on the original graph (all of its knowledge).
- L_kl: for a batch of remaining edges (u, i), the softmax over [i, M random items] of the scores / tau, teacher
  vs student: KL(teacher || student). Random items are never training items of u (deleted ones included), so
  the teacher's preference for a deleted item is never distilled.
- L_emb: MSE between student and teacher final embeddings of the retained nodes (every node that is not an
  endpoint of a deleted edge).
- L_del: the "destroyer" part. The paper distils deleted elements from a randomly initialised model; the
  project's target for forgetting is "deleted edges score like random non-edges" (docs/method.md, "Requests used
  in evaluation"), so
  this term is a hinge, mean(relu(s_del - mean s_non)), pushing each sampled deleted edge's student score down
  to the batch's mean student score of random non-edges. A hinge, not a squared error or a softplus: its
  gradient per pair is bounded and stops at the non-edge level (a squared error outweighed L_kl and wrecked the
  retained scores; a softplus kept pushing far below the non-edges: docs/decisions.md).

L = lambda_kl L_kl + lambda_emb L_emb + lambda_del L_del, Adam on the student table, `epochs` passes over the
remaining edges; each step costs one propagation of the remaining graph. Settings: `schemas/methods/d2dgn.yaml`.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from recunlearn.graph.adjacency import normalized_adjacency, user_item_csr
from recunlearn.graph.sampling import BPRSampler, sample_non_edges
from recunlearn.unlearning.base import Unlearned, UnlearningMethod, UnlearningTask, final_embeddings

__all__ = ["D2DGN"]


class D2DGN(UnlearningMethod):
    name = "d2dgn"

    def unlearn(self, task: UnlearningTask, state: dict | None) -> dict[str, Unlearned]:
        o, s = task.original, self.settings
        bb, device, n_users = o.backbone, torch.device(o.device), o.n_users
        start = time.perf_counter()
        request = np.asarray(task.request, dtype=np.int64).reshape(-1, 2)
        teacher = torch.cat(final_embeddings(bb, bb.embedding.detach().to(device), o.trained_on))
        adj = normalized_adjacency(task.remaining, n_users, o.n_items, device)
        retained = torch.ones(n_users + o.n_items, dtype=torch.bool, device=device)
        retained[torch.from_numpy(request[:, 0]).to(device)] = False
        retained[torch.from_numpy(n_users + request[:, 1]).to(device)] = False
        sampler = BPRSampler(
            task.remaining, n_users, o.n_items, seed=o.seed, exclude=user_item_csr(o.trained_on, n_users, o.n_items)
        )
        rng = np.random.default_rng(o.seed + 1)
        student = bb.embedding.detach().clone().to(device).requires_grad_(True)
        opt = torch.optim.Adam([student], lr=s["lr"])
        n_del = min(s["del_batch_size"], len(request))
        t_setup = time.perf_counter()
        steps, last = 0, {}
        for epoch in range(s["epochs"]):
            non_edges = torch.from_numpy(
                sample_non_edges(
                    n_users,
                    o.n_items,
                    [o.trained_on],
                    n_del * sampler.n_batches(s["batch_size"]),
                    seed=o.seed + 7919 * (epoch + 1),
                )
            ).to(device)
            for b, (users, pos, _) in enumerate(sampler.epoch(s["batch_size"])):
                m = s["candidates"]
                extra = sampler.negatives(np.repeat(users.numpy(), m)).reshape(len(users), m)
                cands = torch.cat([pos[:, None], torch.from_numpy(extra)], dim=1).to(device) + n_users
                users = users.to(device)
                final = bb.propagate(student, adj)
                logits = (final[users][:, None, :] * final[cands]).sum(-1) / s["tau"]
                with torch.no_grad():
                    ref = (teacher[users][:, None, :] * teacher[cands]).sum(-1) / s["tau"]
                kl = F.kl_div(F.log_softmax(logits, 1), F.log_softmax(ref, 1), log_target=True, reduction="batchmean")
                emb = F.mse_loss(final[retained], teacher[retained])
                loss = s["lambda_kl"] * kl + s["lambda_emb"] * emb
                last = {"kl": float(kl.detach()), "emb": float(emb.detach())}
                if n_del:
                    pick = torch.from_numpy(rng.choice(len(request), size=n_del, replace=False)).to(device)
                    pairs, non = torch.from_numpy(request).to(device)[pick], non_edges[b * n_del : (b + 1) * n_del]
                    s_del = (final[pairs[:, 0]] * final[n_users + pairs[:, 1]]).sum(-1)
                    s_non = (final[non[:, 0]] * final[n_users + non[:, 1]]).sum(-1)
                    forget = F.relu(s_del - s_non.mean().detach()).mean()
                    loss = loss + s["lambda_del"] * forget
                    last["del"] = float(forget.detach())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
        with torch.no_grad():
            users_emb, items_emb = bb.split(bb.propagate(student.detach(), adj))
        end = time.perf_counter()
        timings = {"setup_s": t_setup - start, "train_s": end - t_setup}
        return {
            self.name: Unlearned(
                users_emb, items_emb, end - start, timings=timings, info={"steps": steps, "last": last}
            )
        }
