"""Request sets: generation per protocol, and validation of request files a user brings."""

import numpy as np
import pandas as pd
import pytest

from recunlearn.data.preprocess import build_split
from recunlearn.data.requests import generate_request, load_request, request_ids, write_request
from recunlearn.data.split import Split
from recunlearn.errors import RequestError


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(1)
    n = 1500
    data = pd.DataFrame(
        {
            "user": (rng.zipf(1.6, n) % 50 + 1).astype(str),
            "item": rng.integers(1, 40, n).astype(str),
            "rating": 1.0,
            "timestamp": 0,
        }
    )
    settings = {"rating_threshold": None, "kcore": 0, "ratios": {"train": 0.8, "valid": 0.1, "test": 0.1}, "seed": 0}
    parts, users, items, _ = build_split(data, settings, "x")
    return Split(len(users), len(items), parts["train"], parts["valid"], parts["test"], users, items)


def keys(edges, split):
    return set((edges[:, 0] * split.n_items + edges[:, 1]).tolist())


def test_request_ids_follow_config():
    cfg = {"random_edges": [0.01, 0.05], "users": {"kinds": ["core", "edge"], "fractions": [0.1]}, "single_users": 2}
    assert request_ids(cfg) == [
        *["random-0.01", "random-0.05", "users-core-0.1", "users-edge-0.1"],
        *["user-1-of-2", "user-2-of-2"],
    ]


def test_single_user_requests_delete_every_edge_of_one_distinct_user_each(split):
    count = 4
    requests = [generate_request(split, f"user-{i}-of-{count}", seed=0) for i in range(1, count + 1)]
    users = [np.unique(r[:, 0]) for r in requests]
    assert all(len(u) == 1 for u in users) and len({int(u[0]) for u in users}) == count
    for req, (user,) in zip(requests, users):
        assert keys(req, split) == keys(split.train[split.train[:, 0] == user], split)
    # the set is one draw: a user keeps its place whatever is generated first, and another seed draws others
    assert np.array_equal(generate_request(split, "user-3-of-4", seed=0), requests[2])
    assert {int(np.unique(generate_request(split, f"user-{i}-of-4", seed=1)[:, 0])[0]) for i in range(1, 5)} != {
        int(u[0]) for u in users
    }
    with pytest.raises(RequestError, match="user-5-of-4"):
        generate_request(split, "user-5-of-4", seed=0)


def test_random_edges_are_training_edges_of_the_right_size(split):
    req = generate_request(split, "random-0.05", seed=0)
    assert len(req) == round(0.05 * len(split.train))
    assert keys(req, split) <= keys(split.train, split) and len(keys(req, split)) == len(req)
    assert np.array_equal(req, generate_request(split, "random-0.05", seed=0))
    assert not np.array_equal(req, generate_request(split, "random-0.05", seed=1))


def test_core_users_are_most_active_edge_users_least(split):
    degree = np.bincount(split.train[:, 0], minlength=split.n_users)
    core = np.unique(generate_request(split, "users-core-0.1", seed=0)[:, 0])
    edge = np.unique(generate_request(split, "users-edge-0.1", seed=0)[:, 0])
    active = np.flatnonzero(degree > 0)
    assert len(core) == len(edge) == round(0.1 * len(active))
    assert degree[core].min() >= np.sort(degree[active])[::-1][len(core) - 1]
    assert degree[edge].max() <= np.sort(degree[active])[len(edge) - 1]
    req = generate_request(split, "users-core-0.1", seed=0)
    assert len(req) == degree[core].sum()  # every edge of the chosen users


def raw_request(tmp_path, rows, header="user\titem"):
    path = tmp_path / "req.tsv"
    path.write_text(header + "\n" + "".join(f"{u}\t{i}\n" for u, i in rows))
    return path


def train_pairs_raw(split, n):
    return [(split.user_ids[u], split.item_ids[i]) for u, i in split.train[:n]]


def test_valid_raw_and_internal_requests_round_trip(split, tmp_path):
    edges = load_request(raw_request(tmp_path, train_pairs_raw(split, 5)), split)
    assert np.array_equal(edges, split.train[:5])
    write_request(tmp_path / "internal.tsv", split.train[:5])
    assert np.array_equal(load_request(tmp_path / "internal.tsv", split), split.train[:5])


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("999999", "1")], "unknown user(s) 999999"),
        ([("USER", "nope")], "unknown item(s) nope"),
    ],
)
def test_unknown_ids_are_named(split, tmp_path, rows, message):
    rows = [(split.user_ids[0] if u == "USER" else u, i) for u, i in rows]
    with pytest.raises(RequestError, match=r"req.tsv: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_request(raw_request(tmp_path, rows), split)


def test_pair_not_in_training_set(split, tmp_path):
    train = keys(split.train, split)
    user, item = next(
        (u, i) for u in range(split.n_users) for i in range(split.n_items) if u * split.n_items + i not in train
    )
    with pytest.raises(RequestError, match=r"req.tsv: 1 pair\(s\) are not in the training set"):
        load_request(raw_request(tmp_path, [(split.user_ids[user], split.item_ids[item])]), split)


def test_duplicates_and_empty(split, tmp_path):
    pair = train_pairs_raw(split, 1)
    with pytest.raises(RequestError, match=r"1 pair\(s\) listed more than once"):
        load_request(raw_request(tmp_path, pair * 2), split)
    with pytest.raises(RequestError, match="the request is empty"):
        load_request(raw_request(tmp_path, []), split)
    (tmp_path / "blank.tsv").write_text("")
    with pytest.raises(RequestError, match="blank.tsv: the request is empty"):
        load_request(tmp_path / "blank.tsv", split)


def test_bad_header_and_internal_ids_out_of_range(split, tmp_path):
    with pytest.raises(RequestError, match="expected a tab-separated header"):
        load_request(raw_request(tmp_path, [("1", "1")], header="u,i"), split)
    with pytest.raises(RequestError, match="unknown internal ids"):
        load_request(raw_request(tmp_path, [(split.n_users, 0)], header="user_idx\titem_idx"), split)
