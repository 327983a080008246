"""Preprocessing: binarisation, deduplication, k-core, contiguous ids and the seeded per-user split."""

import numpy as np
import pandas as pd
import pytest

from recunlearn.data.preprocess import build_split, contiguous_ids, kcore, per_user_cut, write_split
from recunlearn.data.split import load_split

SETTINGS = {"rating_threshold": None, "kcore": 0, "ratios": {"train": 0.8, "valid": 0.1, "test": 0.1}, "seed": 3}


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).astype(
        {"user": str, "item": str, "rating": float, "timestamp": np.int64}
    )


def random_frame(n_users=40, n_items=30, n=900, seed=0):
    rng = np.random.default_rng(seed)
    return frame(
        zip(
            rng.integers(1, n_users + 1, n),
            rng.integers(1, n_items + 1, n),
            rng.integers(1, 6, n),
            rng.integers(0, 10**6, n),
        )
    )


def test_binarise_threshold_and_duplicates():
    rows = [("1", "a", 5, 0), ("1", "a", 4, 1), ("1", "b", 2, 0), ("2", "a", 3, 0)]
    _, _, _, stats = build_split(frame(rows), dict(SETTINGS, rating_threshold=3), "x")
    assert stats["raw"]["interactions"] == 4
    assert stats["binarised"]["interactions"] == 3  # (1,b) rated 2 dropped
    assert stats["deduplicated"]["interactions"] == 2  # (1,a) twice counts once


def test_kcore_leaves_only_k_core():
    data = random_frame(n=700)
    core = kcore(data.drop_duplicates(["user", "item"]), 8)
    assert len(core) > 0
    assert core.groupby("user").size().min() >= 8 and core.groupby("item").size().min() >= 8
    assert len(core) < len(data.drop_duplicates(["user", "item"]))  # something was filtered


def test_contiguous_ids_sort_numerically():
    edges, users, items = contiguous_ids(frame([("10", "2", 1, 0), ("9", "10", 1, 0)]))
    assert list(users) == ["9", "10"] and list(items) == ["2", "10"]
    assert edges.tolist() == [[1, 0], [0, 1]]


def test_split_partitions_every_edge_per_user_and_keeps_training_edge():
    parts, users, items, stats = build_split(random_frame(), SETTINGS, "x")
    all_edges = np.concatenate([parts["train"], parts["valid"], parts["test"]])
    keys = all_edges[:, 0] * len(items) + all_edges[:, 1]
    assert len(np.unique(keys)) == len(keys) == stats["interactions"]
    assert set(parts["train"][:, 0]) == set(range(len(users)))  # every user keeps a training edge
    per_user = np.bincount(all_edges[:, 0])
    test_per_user = np.bincount(parts["test"][:, 0], minlength=len(users))
    assert np.all(np.abs(test_per_user - np.rint(per_user * 0.1)) <= 1)
    assert stats["density"] == pytest.approx(stats["interactions"] / (len(users) * len(items)))


def test_single_interaction_user_stays_in_train():
    part = per_user_cut(np.array([[0, 0], [1, 0], [1, 1]]), [0.5, 0.0, 0.5], seed=0)
    assert part[0] == 0 and sorted(part[1:].tolist()) == [0, 2]


def test_given_test_split_is_kept():
    data = random_frame()
    data = data.drop_duplicates(["user", "item"]).reset_index(drop=True)
    data["split"] = np.where(np.arange(len(data)) % 5 == 0, "test", "train")
    parts, _, _, _ = build_split(data, SETTINGS, "x")
    assert len(parts["test"]) == (data["split"] == "test").sum()


def test_same_seed_byte_identical_other_seed_differs(tmp_path):
    data = random_frame()
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_split(tmp_path / name, *build_split(data, dict(SETTINGS, seed=seed), "x"))
    for f in ("train.tsv", "valid.tsv", "test.tsv", "users.tsv", "items.tsv", "stats.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "test.tsv").read_bytes() != (tmp_path / "c" / "test.tsv").read_bytes()
    split = load_split(tmp_path / "a")
    assert split.n_users == 40 and len(split.train) + len(split.valid) + len(split.test) > 0


def test_failed_write_leaves_no_folder(tmp_path):
    parts, users, items, stats = build_split(random_frame(), SETTINGS, "x")
    parts["train"] = "not an array"
    with pytest.raises((TypeError, AttributeError, IndexError, ValueError)):
        write_split(tmp_path / "out", parts, users, items, stats)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []
