"""Which trained models the plan holds and which model each request is unlearned from.

Three kinds of trained model per (dataset, backbone, seed):
- `original`: trained on the clean training split. It is the model to unlearn from for random-edge and
  user-wise requests, and the Retrain reference of the adversarial protocol (whose remaining graph is the
  clean graph).
- `attacked`: trained on the clean split plus the adversarial noise edges; the model to unlearn from for the
  adversarial request.
- `retrain/<request>`: trained from scratch on the remaining graph of a random-edge or user-wise request.

Pure functions of request ids and the configuration: no files, no torch.
"""

from __future__ import annotations

from recunlearn.data.requests import request_ids

ADVERSARIAL_PREFIX = "adversarial-"


def is_adversarial(request_id: str) -> bool:
    return request_id.startswith(ADVERSARIAL_PREFIX)


def adversarial_id(ratio: float) -> str:
    return f"{ADVERSARIAL_PREFIX}{ratio:g}"


def original_kind(request_id: str) -> str:
    """The trained model a request is unlearned from."""
    return "attacked" if is_adversarial(request_id) else "original"


def retrain_kind(request_id: str) -> str:
    """The model trained without the request: the clean original for the adversarial request."""
    return "original" if is_adversarial(request_id) else f"retrain/{request_id}"


def adversarial_request_ids(cfg: dict) -> list[str]:
    adv = cfg["requests"]["adversarial"]
    return [adversarial_id(adv["ratio"])] if adv["enabled"] else []


def evaluated_request_ids(cfg: dict) -> list[str]:
    """Every request the comparison covers: the adversarial one first, then random-edge and user-wise ones."""
    return adversarial_request_ids(cfg) + request_ids(cfg["requests"])
