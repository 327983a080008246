"""Judge an unlearned model: utility on the test split and forgetting of the request, the same way for every
method and for the Original and Retrain references.

The random non-edges, the remaining positives sampled for comparison and the membership-inference attack are
built once per request from the model unlearned from (`ForgettingReference`), so every row of a comparison table is
measured against the same pairs and the same attacker (docs/method.md, section "Metrics").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recunlearn.evaluation.forgetting import MembershipInferenceAttack, forgetting_metrics, score_pairs
from recunlearn.evaluation.ranking import evaluate_ranking
from recunlearn.graph.sampling import sample_non_edges

MIN_PAIRS = 2000
MAX_PAIRS = 20000


@dataclass
class ForgettingReference:
    """Everything fixed per request: pairs to score, the original scores and the fitted attacker."""

    request: np.ndarray
    remaining: np.ndarray
    test: np.ndarray
    non_edges: np.ndarray
    remaining_sample: np.ndarray
    before: np.ndarray  # original model's scores of the deleted edges
    attack: MembershipInferenceAttack
    ks: tuple


def _n_pairs(request: np.ndarray) -> int:
    return int(min(MAX_PAIRS, max(MIN_PAIRS, len(request))))


def build_reference(
    original_users: torch.Tensor,
    original_items: torch.Tensor,
    trained_on: np.ndarray,
    request: np.ndarray,
    remaining: np.ndarray,
    all_pairs: list[np.ndarray],
    test: np.ndarray,
    ks,
    seed: int,
) -> ForgettingReference:
    """The fixed pairs and attacker of one request; non-edges avoid every known pair; seeded, so reproducible.

    Args:
        original_users: final user embeddings of the model unlearned from, on its training graph.
        original_items: its final item embeddings.
        trained_on: (E, 2) edges that model was trained on (attack members are drawn from them).
        request: (E_del, 2) edges to forget.
        remaining: (E_r, 2) trained_on minus request (the remaining-edge sample is drawn from them).
        all_pairs: further pairs no non-edge may be (train, valid, test; injected edges are in `trained_on`).
        test: (E, 2) test pairs for the utility metrics.
        ks: cut-offs k of Recall/NDCG.
        seed: seed of the non-edges (seed, seed + 2) and of the samples (seed + 1).
    """
    n_users, n_items = original_users.shape[0], original_items.shape[0]
    n = _n_pairs(request)
    exclude = [trained_on, *all_pairs]
    non_edges = sample_non_edges(n_users, n_items, exclude, n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    remaining_sample = remaining[rng.choice(len(remaining), size=min(n, len(remaining)), replace=False)]
    attack_members = trained_on[rng.choice(len(trained_on), size=min(n, len(trained_on)), replace=False)]
    attack_non_members = sample_non_edges(n_users, n_items, exclude, n, seed=seed + 2)
    attack = MembershipInferenceAttack().fit(
        score_pairs(original_users, original_items, attack_members),
        score_pairs(original_users, original_items, attack_non_members),
    )
    before = score_pairs(original_users, original_items, request)
    return ForgettingReference(request, remaining, test, non_edges, remaining_sample, before, attack, tuple(ks))


def evaluate_unlearned(users: torch.Tensor, items: torch.Tensor, ref: ForgettingReference) -> tuple[dict, dict]:
    """(metrics, score arrays) of one model: Recall/NDCG with the remaining graph's items masked, and forgetting."""
    utility = evaluate_ranking(users, items, ref.remaining, ref.test, ref.ks)
    scores = {
        "deleted": score_pairs(users, items, ref.request),
        "non_edges": score_pairs(users, items, ref.non_edges),
        "remaining": score_pairs(users, items, ref.remaining_sample),
    }
    forgetting = forgetting_metrics(ref.before, scores["deleted"], scores["non_edges"], scores["remaining"])
    forgetting["mia_member_rate"] = ref.attack.member_rate(scores["deleted"])
    return {**utility, **forgetting}, scores
