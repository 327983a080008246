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

from recunlearn.errors import RecUnlearnError
from recunlearn.evaluation.fairness import active_users, group_gap
from recunlearn.evaluation.forgetting import (
    MembershipInferenceAttack,
    attack_features,
    forgetting_metrics,
    score_pairs,
)
from recunlearn.evaluation.ranking import ranking_per_user, test_mask_edges, within_user_percentiles
from recunlearn.graph.sampling import sample_non_edges

MIN_PAIRS = 2000
MAX_PAIRS = 20000
# the raw forgetting figures `evaluate_unlearned` gives every model (the error against Retrain comes later)
FORGETTING_KEYS = (
    "auc_deleted_vs_nonedges",
    "auc_deleted_vs_remaining",
    "mi_bf",
    "mi_ng",
    "mia_member_rate",
    "mia_auc",
)


@dataclass
class ForgettingReference:
    """Everything fixed per request: pairs to score, the ranking mask, user groups, the original scores and the
    fitted attacker."""

    request: np.ndarray
    remaining: np.ndarray
    test: np.ndarray
    test_mask: np.ndarray  # pairs masked in the test ranking (every row of the request is ranked the same way)
    active: np.ndarray  # boolean mask over users: the active group of the fairness gap
    non_edges: np.ndarray
    remaining_sample: np.ndarray
    before: np.ndarray  # original model's scores of the deleted edges
    attack: MembershipInferenceAttack
    ks: tuple


def _n_pairs(request: np.ndarray) -> int:
    return int(min(MAX_PAIRS, max(MIN_PAIRS, len(request))))


def _features(users, items, pairs) -> np.ndarray:
    return attack_features(score_pairs(users, items, pairs), within_user_percentiles(users, items, pairs))


def build_reference(
    original_users: torch.Tensor,
    original_items: torch.Tensor,
    trained_on: np.ndarray,
    request: np.ndarray,
    remaining: np.ndarray,
    split,
    *,
    ks,
    test_mask: str,
    active_fraction: float,
    seed: int,
) -> ForgettingReference:
    """The fixed pairs, mask, groups and attacker of one request; non-edges avoid every known pair; seeded.

    A request that cannot be judged (nothing to forget, nothing left, no user with a test pair) is refused with
    one RecUnlearnError instead of giving NaN rows.

    Args:
        original_users: final user embeddings of the model unlearned from, on its training graph.
        original_items: its final item embeddings.
        trained_on: (E, 2) edges that model was trained on (attack members are drawn from them).
        request: (E_del, 2) edges to forget.
        remaining: (E_r, 2) trained_on minus request (the remaining-edge sample is drawn from them).
        split: the dataset's split (`train`, `valid`, `test`): no non-edge is one of its pairs; `valid` is masked
            under the "known" convention, `test` scored, `train` gives the user activity of the fairness groups.
        ks: cut-offs k of Recall/NDCG.
        test_mask: ranking-mask convention ("known" or "train", `evaluation.ranking.TEST_MASKS`).
        active_fraction: share of users in the active group (`evaluation.fairness.active_users`).
        seed: seed of the non-edges (seed, seed + 2) and of the samples (seed + 1).
    """
    n_users, n_items = original_users.shape[0], original_items.shape[0]
    if len(request) == 0:
        raise RecUnlearnError("the request has no edges: there is nothing to forget")
    if len(remaining) == 0:
        raise RecUnlearnError(f"the request deletes every one of the {len(trained_on)} training edges: nothing is left")
    if len(split.test) == 0:
        raise RecUnlearnError("no user has a test pair: the utility of an unlearned model cannot be measured")
    mask = test_mask_edges(remaining, split.valid, split.test, n_items, test_mask)
    n = _n_pairs(request)
    exclude = [trained_on, split.train, split.valid, split.test]
    non_edges = sample_non_edges(n_users, n_items, exclude, n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    remaining_sample = remaining[rng.choice(len(remaining), size=min(n, len(remaining)), replace=False)]
    attack_members = trained_on[rng.choice(len(trained_on), size=min(n, len(trained_on)), replace=False)]
    attack_non_members = sample_non_edges(n_users, n_items, exclude, n, seed=seed + 2)
    attack = MembershipInferenceAttack().fit(
        _features(original_users, original_items, attack_members),
        _features(original_users, original_items, attack_non_members),
    )
    before = score_pairs(original_users, original_items, request)
    active = active_users(split.train, n_users, active_fraction)
    return ForgettingReference(
        request, remaining, split.test, mask, active, non_edges, remaining_sample, before, attack, tuple(ks)
    )


def evaluate_unlearned(users: torch.Tensor, items: torch.Tensor, ref: ForgettingReference) -> tuple[dict, dict]:
    """(metrics, score arrays) of one model on one request.

    Metrics: Recall/NDCG at every k under the request's ranking mask, the active/inactive NDCG gap (A-IGF) at
    every k, the forgetting figures of `forgetting_metrics`, and the attacker's member rate on the deleted edges
    and AUC (deleted edges vs the non-edges). Score arrays: the raw scores of the deleted, non-edge and
    remaining pairs and the deleted edges' within-user percentiles (`deleted_percentile`), which the compare
    stage turns into the forgetting error against Retrain.
    """
    evaluated, per_user = ranking_per_user(users, items, ref.test_mask, ref.test, ref.ks)
    metrics = {key: float(values.mean()) for key, values in per_user.items()}
    metrics["n_users"] = int(len(evaluated))
    for k in sorted(set(ref.ks)):
        metrics.update(group_gap(evaluated, per_user, ref.active, f"ndcg@{k}"))
    scores = {
        "deleted": score_pairs(users, items, ref.request),
        "non_edges": score_pairs(users, items, ref.non_edges),
        "remaining": score_pairs(users, items, ref.remaining_sample),
        "deleted_percentile": within_user_percentiles(users, items, ref.request),
    }
    metrics.update(forgetting_metrics(ref.before, scores["deleted"], scores["non_edges"], scores["remaining"]))
    deleted = attack_features(scores["deleted"], scores["deleted_percentile"])
    non_edges = attack_features(scores["non_edges"], within_user_percentiles(users, items, ref.non_edges))
    metrics["deleted_percentile_mean"] = float(scores["deleted_percentile"].mean())
    metrics["mia_member_rate"] = ref.attack.member_rate(deleted)
    metrics["mia_auc"] = ref.attack.auc(deleted, non_edges)
    return metrics, scores
