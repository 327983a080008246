"""Evaluation: full-ranking utility metrics (forgetting metrics live in their own modules)."""

from recunlearn.evaluation.ranking import evaluate_popularity, evaluate_ranking, popularity_scores

__all__ = ["evaluate_ranking", "evaluate_popularity", "popularity_scores"]
