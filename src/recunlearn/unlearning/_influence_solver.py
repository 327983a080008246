"""The influence-step solver IFRU and SCIF share: Adam on the step's quadratic, keeping the step whose served model
scores best on the validation pairs, or Steihaug's trust-region CG (settings: `schemas/methods/_influence_solver.yaml`).

Both official scripts (baiyimeng/IFRU, `ifru_*.py` and `scif_*.py`) minimise q(x) = ½ xᵀ(H_SS + λI)x + bᵀx, whose
minimiser is the influence step on the rows S, by Adam on p = n x (n training interactions) and keep the iterate with
the best validation AUC. Adam ignores the gradient's scale, so that is Adam on x with learning rate `adam_lr` / n, as
here. A step is scored on the model it serves (θ* with rows S moved, propagated on the remaining graph); the first
step is always a candidate (the official best score starts at 0). `select: recall` scores validation Recall@20 instead
of AUC against random non-edges, which on a positive-only split can rise while Recall@20 falls (docs/method.md, IFRU).
Validation keeps the step where the quadratic model still serves: an unchecked Newton step can leave it (SCIF's CG
step on an adversarial request, docs/method.md, SCIF).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from recunlearn.backbones.base import Backbone
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.sampling import sample_non_edges
from recunlearn.unlearning._influence import influence_step
from recunlearn.unlearning.base import K_VALID, NO_VALID

__all__ = [
    "SELECTION",
    "ValidationAUC",
    "ValidationRecall",
    "adam_minimise",
    "pairwise_auc",
    "served_step",
    "solve_step",
    "validation_pairs",
    "validation_score",
]

SELECTION = {"recall": f"best validation Recall@{K_VALID}", "auc": "best validation AUC"}


def pairwise_auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """P(a positive outscores a negative) + ½ P(tie), over all pairs, by binary search in the sorted negatives."""
    ordered = torch.sort(neg).values
    below = torch.searchsorted(ordered, pos, right=False)
    not_above = torch.searchsorted(ordered, pos, right=True)
    return float((below + not_above).sum(dtype=torch.float64)) / (2.0 * len(pos) * len(neg))


def served_step(backbone: Backbone, theta: torch.Tensor, rows: torch.Tensor, x: torch.Tensor, adj: torch.Tensor):
    """(users, items): the final embeddings the step x on rows S serves, θ* with rows S moved by x, propagated.

    Args:
        backbone: the backbone that propagates the table.
        theta: the trained table θ*.
        rows: (S,) the rows x moves.
        x: (S, d) the step.
        adj: normalised adjacency of the remaining graph.
    """
    return backbone.split(backbone.propagate(theta.index_add(0, rows, x), adj))


class ValidationAUC:
    """The validation score of a step x on rows S: AUC of the validation pairs against fixed random non-edges, for the
    table θ* with rows S moved by x, propagated on the remaining graph (the model the step serves)."""

    def __init__(self, backbone: Backbone, theta: torch.Tensor, rows: torch.Tensor, adj: torch.Tensor, pairs):
        """
        Args:
            backbone: the backbone that propagates the table.
            theta: the trained table θ*.
            rows: (S,) the rows x moves.
            adj: normalised adjacency of the remaining graph.
            pairs: ((V, 2) validation pairs, (V, 2) non-edges), numpy.
        """
        self.backbone, self.theta, self.rows, self.adj = backbone, theta, rows, adj
        self.valid, self.non_edges = (torch.as_tensor(p, device=theta.device) for p in pairs)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> float:
        users, items = served_step(self.backbone, self.theta, self.rows, x, self.adj)

        def scores(p: torch.Tensor) -> torch.Tensor:
            return (users[p[:, 0]] * items[p[:, 1]]).sum(-1)

        return pairwise_auc(scores(self.valid), scores(self.non_edges))


class ValidationRecall:
    """The validation score of a step x on rows S: Recall@20 of the validation pairs, the remaining graph's edges
    masked, for the table θ* with rows S moved by x, propagated on the remaining graph (the model the step serves)."""

    def __init__(self, backbone: Backbone, theta: torch.Tensor, rows: torch.Tensor, adj: torch.Tensor, valid, mask):
        """
        Args:
            backbone: the backbone that propagates the table.
            theta: the trained table θ*.
            rows: (S,) the rows x moves.
            adj: normalised adjacency of the remaining graph.
            valid: (V, 2) validation pairs, numpy.
            mask: (E_r, 2) the remaining graph's edges, never counted as recommendations.
        """
        self.backbone, self.theta, self.rows, self.adj = backbone, theta, rows, adj
        self.valid, self.mask = valid, mask

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> float:
        users, items = served_step(self.backbone, self.theta, self.rows, x, self.adj)
        return evaluate_ranking(users, items, self.mask, self.valid, ks=(K_VALID,))[f"recall@{K_VALID}"]


def adam_minimise(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    lr: float,
    max_steps: int,
    patience: int,
    evaluate: Callable[[torch.Tensor], float] | None,
) -> tuple[torch.Tensor, dict]:
    """Minimise q(x) = ½ xᵀAx + bᵀx (A symmetric, given as x -> A x) by Adam on its gradient A x + b, from x = 0,
    keeping the step `evaluate` scores best: IFRU's official solver.

    After each step `evaluate(x)` scores it (higher is better). The best-scoring step is kept, the first step always
    being a candidate (x = 0 is not); Adam stops once more than `patience` steps in a row fail to beat it, or after
    `max_steps` steps. With `evaluate` None the last step is kept. A need not be definite: q may then fall without
    bound, and the scores are what stops the run.

    Args:
        matvec: x -> A x.
        b: the linear term (the shape of x).
        lr: Adam's learning rate (betas 0.9, 0.999, as torch's defaults and the official code's).
        max_steps: Adam steps at most.
        patience: consecutive steps without a better score tolerated before stopping.
        evaluate: x -> score, or None.

    Returns the kept x and info: `steps` run, `kept_step` (1-based), `best_score`, `reason`
    (patience, max_steps, zero_rhs).
    """
    if max_steps == 0 or float(b.norm()) == 0.0:
        return torch.zeros_like(b), {"steps": 0, "kept_step": 0, "best_score": None, "reason": "zero_rhs"}
    x = torch.zeros_like(b).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    best, best_score, kept, waited, reason = x.detach().clone(), None, 0, 0, "max_steps"
    for step in range(1, max_steps + 1):
        x.grad = matvec(x.detach()) + b
        opt.step()
        score = evaluate(x.detach()) if evaluate is not None else None
        if evaluate is None or best_score is None or score > best_score:
            best, best_score, kept, waited = x.detach().clone(), score, step, 0
        else:
            waited += 1
            if waited > patience:
                reason = "patience"
                break
    return best, {"steps": step, "kept_step": kept, "best_score": best_score, "reason": reason}


def validation_pairs(valid: np.ndarray, edges: np.ndarray, n_users: int, n_items: int, seed: int):
    """(validation pairs, as many random non-edges: never a training or validation pair), the AUC rule's sets.

    Args:
        valid: (V, 2) validation pairs, V > 0.
        edges: (E, 2) the original training edges.
        n_users: number of users.
        n_items: number of items.
        seed: seed of the non-edge draw.
    """
    valid = np.asarray(valid, dtype=np.int64)
    return valid, sample_non_edges(n_users, n_items, [edges, valid], len(valid), seed)


def validation_score(s: dict, backbone: Backbone, theta, rows, adj, valid, edges: np.ndarray, keep, seed: int):
    """The Adam solver's step score for `s["select"]`, or None without validation pairs.

    Args:
        s: the method's settings (`select`).
        backbone: the backbone that propagates the table.
        theta: the trained table θ*.
        rows: (S,) the rows a step moves.
        adj: normalised adjacency of the remaining graph.
        valid: (V, 2) validation pairs, or None.
        edges: (E, 2) the original training edges.
        keep: (E,) bool, False for the deleted edges.
        seed: seed of the AUC rule's non-edges.
    """
    if valid is None or len(valid) == 0:
        return None
    if s["select"] == "auc":
        pairs = validation_pairs(valid, edges, backbone.n_users, backbone.n_items, seed)
        return ValidationAUC(backbone, theta, rows, adj, pairs)
    return ValidationRecall(backbone, theta, rows, adj, np.asarray(valid, dtype=np.int64), edges[keep])


def solve_step(s: dict, b, hvp_rows, backbone: Backbone, theta, rows, adj, valid, edges: np.ndarray, keep, seed: int):
    """The step x on rows S that (approximately) solves (H_SS + λI) x = -b, by `s["solver"]`; returns it and the
    solver's info. IFRU's and SCIF's official scripts share this solver: Adam on the quadratic in the
    parametrisation n·x (n the training interactions), keeping the step with the best validation score.

    Args:
        s: the method's settings (`schemas/methods/_influence_solver.yaml` plus `damping`).
        b: (S, d) the linear term, the gradient of the request's change of objective on the rows S.
        hvp_rows: x -> H_SS x for x of b's shape.
        backbone: the backbone that propagates the table (for the validation score).
        theta: the trained table θ*.
        rows: (S,) the rows the step moves.
        adj: normalised adjacency of the remaining graph (the model a step serves).
        valid: (V, 2) validation pairs, or None (Adam then keeps its last step).
        edges: (E, 2) the original training edges.
        keep: (E,) bool, False for the deleted edges.
        seed: seed of the AUC rule's non-edges.
    """
    if s["solver"] == "cg":
        radius = s["trust_radius"] * float(theta[rows].norm())
        return influence_step(b, hvp_rows, s["damping"], s["cg_tol"], s["cg_max_iter"], 1.0, radius)
    score = validation_score(s, backbone, theta, rows, adj, valid, edges, keep, seed)
    damped = lambda x: hvp_rows(x) + s["damping"] * x  # noqa: E731
    step, info = adam_minimise(damped, b, s["adam_lr"] / len(edges), s["adam_max_iter"], s["patience"], score)
    info["selection"] = SELECTION[s["select"]] if score is not None else NO_VALID
    return step, info
