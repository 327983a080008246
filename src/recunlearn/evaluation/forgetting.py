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
- Df-AUC = P(deleted score > non-edge score) + 0.5 P(tie), deleted edges as the positive class. 0.5 means
  indistinguishable; below 0.5 means deleted edges score *below* non-edges (Retrain on adversarial edges does
  this), so `df_auc_distance` = 0.5 + |Df-AUC - 0.5| is also reported for "how distinguishable at all".
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

__all__ = [
    "score_pairs",
    "sigmoid",
    "rank_auc",
    "score_summary",
    "forgetting_metrics",
    "MembershipInferenceAttack",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


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


def rank_auc(positive_scores, negative_scores) -> float:
    """AUC = P(pos > neg) + 0.5 P(pos == neg), via the Mann-Whitney U statistic on average ranks (O(n log n))."""
    pos = np.asarray(positive_scores, dtype=np.float64).ravel()
    neg = np.asarray(negative_scores, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("AUC needs at least one score in each group")
    ranks = rankdata(np.concatenate([pos, neg]))  # average ranks: ties count one half
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
    out["mi_ng"] = float(sigmoid(non).mean() / sig_after)
    auc = rank_auc(after, non)
    out["df_auc"] = auc
    out["df_auc_distance"] = 0.5 + abs(auc - 0.5)
    return out


class MembershipInferenceAttack:
    """A 1-D logistic-regression attacker on the raw score: "was (u, i) a training edge of this model?".

    Fitted once on the ORIGINAL model (members = a sample of its training edges, non-members = sampled
    non-edges), then applied to the deleted edges of an unlearned model: `member_rate` is the fraction it still
    calls members (Retrain gives the reference rate). Why this attacker: the score is the only signal a
    recommender leaks per pair, and a logistic model on one feature is a monotone threshold (members are
    predicted where score > threshold = -b / w), fitted by likelihood rather than picked by hand. The classes are
    re-weighted to equal total weight so the threshold does not depend on the sample sizes, the score is
    standardised, and a small L2 penalty keeps the fit finite when the classes are separable.
    """

    def __init__(self, l2: float = 1e-3, max_iter: int = 100):
        self.l2, self.max_iter = float(l2), int(max_iter)
        self.w = self.b = None
        self.mean = self.scale = None

    def fit(self, member_scores, nonmember_scores) -> MembershipInferenceAttack:
        m = np.asarray(member_scores, dtype=np.float64).ravel()
        nm = np.asarray(nonmember_scores, dtype=np.float64).ravel()
        if len(m) == 0 or len(nm) == 0:
            raise ValueError("the attack needs member and non-member scores")
        x = np.concatenate([m, nm])
        y = np.concatenate([np.ones(len(m)), np.zeros(len(nm))])
        sw = np.concatenate([np.full(len(m), 0.5 / len(m)), np.full(len(nm), 0.5 / len(nm))])
        self.mean, self.scale = float(x.mean()), float(x.std()) or 1.0
        z = (x - self.mean) / self.scale
        theta = np.zeros(2)  # (w, b); Newton's method on the weighted, L2-penalised log-likelihood
        feats = np.stack([z, np.ones_like(z)], axis=1)
        reg = np.diag([self.l2, 0.0])
        for _ in range(self.max_iter):
            p = sigmoid(feats @ theta)
            grad = feats.T @ (sw * (p - y)) + reg @ theta
            hess = (feats * (sw * p * (1 - p))[:, None]).T @ feats + reg + 1e-12 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            theta -= step
            if np.abs(step).max() < 1e-10:
                break
        self.w, self.b = float(theta[0]), float(theta[1])
        return self

    def member_probability(self, scores) -> np.ndarray:
        if self.w is None:
            raise RuntimeError("fit the attack before using it")
        z = (np.asarray(scores, dtype=np.float64).ravel() - self.mean) / self.scale
        return sigmoid(self.w * z + self.b)

    @property
    def threshold(self) -> float:
        """Raw score above which a pair is called a member (if w > 0)."""
        return self.mean - self.scale * self.b / self.w if self.w else float("nan")

    def member_rate(self, scores) -> float:
        """Fraction of `scores` predicted as members (probability >= 0.5)."""
        s = np.asarray(scores).ravel()
        return float((self.member_probability(s) >= 0.5).mean()) if len(s) else float("nan")

    def state(self) -> dict:
        return {"w": self.w, "b": self.b, "mean": self.mean, "scale": self.scale, "threshold": self.threshold}
