"""User-group fairness of a ranking: the utility gap between active and inactive users (CURE4Rec's A-IGF).

Why: unlearning can look harmless on average while it moves the quality of one group, so the comparison shows
the gap of every row next to Retrain's. Active users are the top `fraction` by number of training interactions
(ties broken towards the lower user id, so the groups are deterministic); the rest are inactive. The groups are
fixed per dataset (from the original training split), so every row of a table is split the same way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["active_users", "group_gap"]


def active_users(train_edges: np.ndarray, n_users: int, fraction: float) -> np.ndarray:
    """Boolean mask over users: True for the `fraction` most active (at least one user, at most all but one).

    Args:
        train_edges: (E, 2) training pairs; a user's activity is its number of pairs.
        n_users: number of users.
        fraction: share of users called active, in (0, 1).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"active fraction must be in (0, 1), got {fraction}")
    counts = np.bincount(np.asarray(train_edges, dtype=np.int64).reshape(-1, 2)[:, 0], minlength=n_users)
    n_active = int(min(max(round(fraction * n_users), 1), max(n_users - 1, 1)))
    order = np.lexsort((np.arange(n_users), -counts))  # most interactions first, then lower id
    mask = np.zeros(n_users, dtype=bool)
    mask[order[:n_active]] = True
    return mask


def group_gap(users: np.ndarray, per_user: dict[str, np.ndarray], active: np.ndarray, metric: str) -> dict:
    """`<metric>_active`, `<metric>_inactive` (group means over the evaluated users) and `a_igf@k` = |gap|.

    A group with no evaluated user has no mean: its value and the gap are NaN.

    Args:
        users: evaluated user ids (from `ranking_per_user`).
        per_user: per-user metric values aligned with `users`.
        active: boolean mask over all users (`active_users`).
        metric: the per-user metric compared, e.g. "ndcg@20"; the gap is named after its cut-off.
    """
    values = per_user[metric]
    is_active = active[users]
    means = {}
    for name, sel in (("active", is_active), ("inactive", ~is_active)):
        means[f"{metric}_{name}"] = float(values[sel].mean()) if sel.any() else float("nan")
    k = metric.partition("@")[2]
    return {**means, f"a_igf@{k}": abs(means[f"{metric}_active"] - means[f"{metric}_inactive"])}
