"""Forgetting metrics: how far the deleted edges' scores moved, and whether they still look like training edges.

Independent of any unlearning method: everything here takes final user/item embeddings or plain score arrays,
so the same code measures UnlearnRec, every baseline and Retrain (the reference values). All of it is vectorised,
because the authors' per-check Python loop over non-edges dominated their evaluation time (docs/decisions.md,
section "Evaluation").

Conventions (docs/method.md, section "Metrics"):
- a score is the inner product of the final user and item embeddings;
- MI-BF = mean sigmoid(score before) / mean sigmoid(score after) over the deleted edges (> 1: scores fell);
- MI-NG = mean sigmoid(non-edge score after) / mean sigmoid(deleted score after) (>= 1: deleted edges score no
  higher than random non-edges);
- auc_deleted_vs_nonedges = P(deleted score > non-edge score) + 0.5 P(tie): 0.5 means the deleted edges look
  like random non-edges, below 0.5 that they score *below* them (Retrain on adversarial edges does this). It is
  not GNNDelete's Df-AUC, which is
- auc_deleted_vs_remaining = P(deleted score > remaining-edge score) + 0.5 P(tie) (GNNDelete's and D2DGN's
  Df-AUC, deleted edges as the positive class): 0.5 means the deleted edges still look like training edges;
- the forgetting error (`forgetting_error`) is the distance of a model's deleted-edge behaviour from Retrain's
  on the same request: 0 = behaves as if retrained, and under- and over-forgetting both count. Fixed thresholds
  (MI-NG >= 1, AUC <= 0.5) are not a target: Retrain itself is far from them in both directions.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "score_pairs",
    "sigmoid",
    "average_ranks",
    "ks_statistic",
    "rank_auc",
    "score_summary",
    "forgetting_metrics",
    "forgetting_error",
    "attack_features",
    "MembershipInferenceAttack",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
ERROR_KEYS = ("rank_ks", "rank_shift", "auc_error")  # what `forgetting_error` returns


def score_pairs(user_emb, item_emb, pairs: np.ndarray) -> np.ndarray:
    """Inner products user_emb[u] . item_emb[i] for each row (u, i) of `pairs`, as float64 numpy.

    Accepts torch tensors (any device; no gradient kept) or numpy arrays.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if isinstance(user_emb, torch.Tensor):
        with torch.no_grad():
            idx = torch.as_tensor(pairs, device=user_emb.device)
            s = (user_emb[idx[:, 0]] * item_emb[idx[:, 1]]).sum(-1)
        return s.detach().cpu().double().numpy()
    user_emb, item_emb = np.asarray(user_emb), np.asarray(item_emb)
    return np.einsum("ij,ij->i", user_emb[pairs[:, 0]], item_emb[pairs[:, 1]]).astype(np.float64)


def sigmoid(x) -> np.ndarray:
    """Numerically stable logistic function on numpy arrays."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def average_ranks(values) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks (`scipy.stats.rankdata`'s default).

    Written with numpy because importing `scipy.stats` costs seconds per pipeline job; the unit tests keep scipy
    as the oracle.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]]) if len(x) else np.zeros(0, dtype=np.int64)
    counts = np.diff(np.r_[starts, len(x)])
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def ks_statistic(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_x |F_a(x) - F_b(x)| (`scipy.stats.ks_2samp(a, b).statistic`)."""
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    at = np.concatenate([a, b])
    gap = np.searchsorted(a, at, side="right") / len(a) - np.searchsorted(b, at, side="right") / len(b)
    return float(np.abs(gap).max())


def rank_auc(positive_scores, negative_scores) -> float:
    """AUC = P(pos > neg) + 0.5 P(pos == neg), via the Mann-Whitney U statistic on average ranks (O(n log n))."""
    pos = np.asarray(positive_scores, dtype=np.float64).ravel()
    neg = np.asarray(negative_scores, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("AUC needs at least one score in each group")
    ranks = average_ranks(np.concatenate([pos, neg]))  # ties count one half
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def score_summary(scores) -> dict:
    """n, mean, std, quantiles of raw scores and the mean of their sigmoid."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(s) == 0:
        return {"n": 0}
    out = {"n": int(len(s)), "mean": float(s.mean()), "std": float(s.std()), "mean_sigmoid": float(sigmoid(s).mean())}
    for q, v in zip(QUANTILES, np.quantile(s, QUANTILES)):
        out[f"q{int(round(q * 100)):02d}"] = float(v)
    return out


def forgetting_metrics(
    scores_deleted_before, scores_deleted_after, scores_nonedges_after, scores_remaining_after=None
) -> dict:
    """All forgetting numbers of one unlearned model from score arrays (see the module docstring).

    `scores_deleted_before`: the original model's scores of the deleted edges (for MI-BF; may be None for a
    model that has no "before", e.g. Retrain is compared through its own "after" values only).
    """
    after = np.asarray(scores_deleted_after, dtype=np.float64).ravel()
    non = np.asarray(scores_nonedges_after, dtype=np.float64).ravel()
    out = {"deleted_after": score_summary(after), "nonedges_after": score_summary(non)}
    sig_after = sigmoid(after).mean()
    if scores_deleted_before is not None:
        before = np.asarray(scores_deleted_before, dtype=np.float64).ravel()
        out["deleted_before"] = score_summary(before)
        out["mi_bf"] = float(sigmoid(before).mean() / sig_after)
    if scores_remaining_after is not None:
        out["remaining_after"] = score_summary(scores_remaining_after)
        out["auc_deleted_vs_remaining"] = rank_auc(after, scores_remaining_after)
    out["mi_ng"] = float(sigmoid(non).mean() / sig_after)
    out["auc_deleted_vs_nonedges"] = rank_auc(after, non)
    return out


def forgetting_error(percentiles, retrain_percentiles, auc: float, retrain_auc: float) -> dict:
    """How far a model's treatment of the deleted edges is from Retrain's on the same request and pairs.

    - `auc_error` = |auc_deleted_vs_nonedges - Retrain's|;
    - `rank_ks` = the two-sample Kolmogorov-Smirnov statistic between the deleted edges' within-user
      percentiles under the model and under Retrain (0 = the same distribution, 1 = disjoint);
    - `rank_shift` = mean percentile of the model - Retrain's: > 0 the deleted items still rank higher than
      after retraining (under-forgetting), < 0 lower (over-forgetting).

    Args:
        percentiles: the model's within-user percentiles of the deleted edges.
        retrain_percentiles: Retrain's, of the same edges.
        auc: the model's auc_deleted_vs_nonedges.
        retrain_auc: Retrain's, on the same non-edges.
    """
    a = np.asarray(percentiles, dtype=np.float64).ravel()
    b = np.asarray(retrain_percentiles, dtype=np.float64).ravel()
    if len(a) == 0 or len(b) == 0:
        raise ValueError("the forgetting error needs the deleted edges' percentiles of both models")
    return {
        "auc_error": abs(float(auc) - float(retrain_auc)),
        "rank_ks": ks_statistic(a, b),
        "rank_shift": float(a.mean() - b.mean()),
    }


def attack_features(scores, percentiles) -> np.ndarray:
    """(n, 2) attacker features of n pairs: the raw score and its within-user percentile."""
    return np.column_stack([np.asarray(scores, dtype=np.float64).ravel(), np.asarray(percentiles).ravel()])


class MembershipInferenceAttack:
    """A logistic-regression attacker on per-pair features: "was (u, i) a training edge of this model?".

    Features (`attack_features`): the raw score and its within-user percentile. Fitted once on the ORIGINAL model
    (members = a sample of its training edges, non-members = sampled non-edges), then applied to the deleted
    edges of an unlearned model: `member_rate` is the fraction it still calls members (Retrain gives the
    reference rate), `auc` how well it tells deleted edges from non-edges. Why these features: the score is the
    only signal a recommender leaks per pair, and its percentile within the user's ranking survives a change
    of score scale (an unlearning method that shrinks every score would otherwise fool a raw-score threshold).
    The classes are re-weighted to equal total weight so the fit does not depend on the sample sizes, features
    are standardised, and a small L2 penalty keeps the fit finite when the classes are separable.
    """

    def __init__(self, l2: float = 1e-3, max_iter: int = 100):
        self.l2, self.max_iter = float(l2), int(max_iter)
        self.theta = None
        self.mean = self.scale = None

    @staticmethod
    def _matrix(features) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        return x.reshape(-1, 1) if x.ndim == 1 else x

    def fit(self, member_features, nonmember_features) -> MembershipInferenceAttack:
        """Fit on (n, f) feature rows of members and non-members (1-D arrays are one feature)."""
        m, nm = self._matrix(member_features), self._matrix(nonmember_features)
        if len(m) == 0 or len(nm) == 0:
            raise ValueError("the attack needs member and non-member features")
        x = np.concatenate([m, nm])
        y = np.concatenate([np.ones(len(m)), np.zeros(len(nm))])
        sw = np.concatenate([np.full(len(m), 0.5 / len(m)), np.full(len(nm), 0.5 / len(nm))])
        self.mean = x.mean(0)
        self.scale = np.where(x.std(0) > 0, x.std(0), 1.0)
        feats = np.column_stack([(x - self.mean) / self.scale, np.ones(len(x))])
        theta = np.zeros(feats.shape[1])  # Newton's method on the weighted, L2-penalised log-likelihood
        reg = np.diag([self.l2] * (feats.shape[1] - 1) + [0.0])
        for _ in range(self.max_iter):
            p = sigmoid(feats @ theta)
            grad = feats.T @ (sw * (p - y)) + reg @ theta
            hess = (feats * (sw * p * (1 - p))[:, None]).T @ feats + reg + 1e-12 * np.eye(len(theta))
            step = np.linalg.solve(hess, grad)
            theta -= step
            if np.abs(step).max() < 1e-10:
                break
        self.theta = theta
        return self

    def member_probability(self, features) -> np.ndarray:
        if self.theta is None:
            raise RuntimeError("fit the attack before using it")
        x = self._matrix(features)
        return sigmoid(((x - self.mean) / self.scale) @ self.theta[:-1] + self.theta[-1])

    def member_rate(self, features) -> float:
        """Fraction of the rows predicted as members (probability >= 0.5); NaN for no rows."""
        x = self._matrix(features)
        return float((self.member_probability(x) >= 0.5).mean()) if len(x) else float("nan")

    def auc(self, positive_features, negative_features) -> float:
        """AUC of the member probability, `positive_features` as the positive class."""
        return rank_auc(self.member_probability(positive_features), self.member_probability(negative_features))

    def state(self) -> dict:
        return {
            "weights": self.theta[:-1].tolist(),
            "bias": float(self.theta[-1]),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }
