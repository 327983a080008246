"""Raw interactions -> one canonical table -> binarised, deduplicated, k-core filtered, split per user.

The steps and their order are fixed so that the same raw file, settings and seed give byte-identical output:
1. binarise: keep rows with rating >= threshold (None keeps every rating: any rating is an interaction);
2. drop duplicate (user, item) pairs, keeping the first occurrence in file order;
3. optional k-core filtering (repeat until every user and item has at least k interactions);
4. contiguous ids: raw ids sorted (numerically when they are all integers), saved as id maps;
5. per-user seeded split: each user's interactions are shuffled with the seed and cut by the ratios, keeping at
   least one training interaction per user. Datasets that ship their own test split (LightGCN format) keep it;
   validation is then cut from the training part with the same rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recunlearn.data.split import write_edges, write_id_map
from recunlearn.errors import DataError
from recunlearn.io import atomic_dir, write_json


def binarise(frame: pd.DataFrame, threshold: float | None) -> pd.DataFrame:
    """Keep interactions whose rating reaches the threshold; None keeps all."""
    if threshold is None:
        return frame
    return frame[frame["rating"] >= threshold]


def drop_duplicate_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item): repeated ratings of the same pair are one interaction."""
    return frame.drop_duplicates(subset=["user", "item"], keep="first")


def kcore(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Drop users and items with fewer than k interactions until none is left (0 or 1 disables)."""
    if k <= 1:
        return frame
    while True:
        user_deg = frame.groupby("user")["item"].transform("size")
        item_deg = frame.groupby("item")["user"].transform("size")
        keep = (user_deg >= k) & (item_deg >= k)
        if keep.all():
            return frame
        frame = frame[keep]


def _sorted_ids(values: pd.Series) -> np.ndarray:
    """Unique raw ids in a stable order: numeric order when every id is an integer, else string order."""
    unique = pd.unique(values.astype(str))
    as_num = pd.to_numeric(pd.Series(unique), errors="coerce")
    if not as_num.isna().any() and (as_num % 1 == 0).all():
        order = np.argsort(as_num.to_numpy(), kind="stable")
    else:
        order = np.argsort(unique.astype(str), kind="stable")
    return unique[order].astype(object)


def contiguous_ids(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map raw ids to 0..n-1; return (edges (E,2) int64, user raw ids, item raw ids)."""
    user_ids, item_ids = _sorted_ids(frame["user"]), _sorted_ids(frame["item"])
    users = pd.Index(user_ids).get_indexer(frame["user"].astype(str))
    items = pd.Index(item_ids).get_indexer(frame["item"].astype(str))
    return np.stack([users, items], axis=1).astype(np.int64), user_ids, item_ids


def per_user_cut(edges: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Assign each edge a part index 0..len(fractions)-1, per user, after a seeded shuffle.

    Part 0 is the training part: the later parts take round(n * fraction) of each user's n interactions and are
    shrunk so that the user keeps at least one training interaction.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    keys = rng.random(len(edges))
    order = np.lexsort((keys, edges[:, 0]))
    users_sorted = edges[order, 0]
    starts = np.searchsorted(users_sorted, users_sorted, side="left")
    position = np.arange(len(edges)) - starts
    counts = np.bincount(users_sorted)[users_sorted]
    room = counts - 1  # interactions that may leave the training part
    part = np.zeros(len(edges), dtype=np.int64)
    taken = np.zeros(len(edges), dtype=np.int64)
    for index in range(len(fractions) - 1, 0, -1):  # test first, then valid: tiny users keep test before valid
        size = np.minimum(np.rint(counts * fractions[index]).astype(np.int64), room - taken)
        size = np.maximum(size, 0)
        chosen = (position >= taken) & (position < taken + size)
        part[chosen] = index
        taken += size
    result = np.empty(len(edges), dtype=np.int64)
    result[order] = part
    return result


def split_edges(edges: np.ndarray, ratios: dict, seed: int, given_test: np.ndarray | None = None) -> dict:
    """Split edges into train/valid/test; `given_test` (a boolean mask) keeps a dataset's own test split."""
    if given_test is None:
        part = per_user_cut(edges, [ratios["train"], ratios["valid"], ratios["test"]], seed)
        return {name: _sort(edges[part == i]) for i, name in enumerate(("train", "valid", "test"))}
    rest = edges[~given_test]
    valid_share = ratios["valid"] / (ratios["train"] + ratios["valid"])
    part = per_user_cut(rest, [1 - valid_share, valid_share], seed)
    return {"train": _sort(rest[part == 0]), "valid": _sort(rest[part == 1]), "test": _sort(edges[given_test])}


def _sort(edges: np.ndarray) -> np.ndarray:
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]


def _counts(frame: pd.DataFrame) -> dict:
    return {"users": int(frame["user"].nunique()), "items": int(frame["item"].nunique()), "interactions": len(frame)}


def build_split(frame: pd.DataFrame, settings: dict, source: str) -> tuple[dict, np.ndarray, np.ndarray, dict]:
    """Run steps 1-5 on a canonical table; return (parts, user ids, item ids, statistics)."""
    stats = {"raw": _counts(frame)}
    frame = binarise(frame, settings["rating_threshold"])
    stats["binarised"] = _counts(frame)
    frame = drop_duplicate_pairs(frame)
    stats["deduplicated"] = _counts(frame)
    frame = kcore(frame, settings["kcore"])
    stats["kcore"] = _counts(frame)
    if len(frame) == 0:
        raise DataError(f"{source}: no interactions left after binarisation and k-core filtering")
    edges, user_ids, item_ids = contiguous_ids(frame)
    given = (frame["split"].to_numpy() == "test") if "split" in frame else None
    parts = split_edges(edges, settings["ratios"], settings["seed"], given)
    n_users, n_items = len(user_ids), len(item_ids)
    stats.update({name: {"interactions": len(edges_)} for name, edges_ in parts.items()})
    stats.update(
        {
            "users": n_users,
            "items": n_items,
            "interactions": int(len(edges)),
            "density": float(len(edges) / (n_users * n_items)),
        }
    )
    return parts, user_ids, item_ids, stats


def write_split(folder: Path, parts: dict, user_ids: np.ndarray, item_ids: np.ndarray, stats: dict) -> None:
    """Write the split folder as a whole: it appears complete or not at all.

    Args:
        folder: the split folder; replaced as a whole if it exists.
        parts: split name ("train", "valid", "test") -> (E, 2) internal-id edges.
        user_ids: raw id of each internal user id.
        item_ids: raw id of each internal item id.
        stats: what `build_split` counted, written as stats.json.
    """
    with atomic_dir(folder) as tmp:
        for name, edges in parts.items():
            write_edges(tmp / f"{name}.tsv", edges)
        write_id_map(tmp / "users.tsv", user_ids)
        write_id_map(tmp / "items.tsv", item_ids)
        write_json(tmp / "stats.json", stats)
