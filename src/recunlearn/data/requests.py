"""Deletion requests: generating the evaluated request sets, and reading/validating request files.

A request is a set of training edges to forget, stored as a TSV. Files the pipeline writes use internal ids
(header `user_idx<TAB>item_idx`); files a user brings use raw ids (header `user<TAB>item`) and are mapped through
the split's id maps. Either way `load_request` refuses, in one message naming the file, a request that is empty,
names unknown users or items, lists pairs that are not training edges, or repeats a pair.

Request ids name the protocol and its size, and are the file names:
`random-0.01` (1% of training edges), `users-core-0.05` / `users-edge-0.05` / `users-random-0.05` (all edges of 5%
of users: the most active, the least active, or uniformly chosen), `user-1-of-3` (every edge of one user, the
first of three drawn uniformly: single-user requests, where a sharded method retrains one shard). Adversarial
requests need a trained model and are produced by `recunlearn.data.adversarial`. The protocols are described in
docs/method.md, section "Requests used in evaluation".
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from recunlearn.data.split import EDGE_HEADER, Split, write_edges
from recunlearn.errors import RequestError
from recunlearn.graph.edges import edge_keys, from_keys

RAW_HEADER = ("user", "item")
MAX_EXAMPLES = 3


def random_edges_id(fraction: float) -> str:
    return f"random-{fraction:g}"


def users_id(kind: str, fraction: float) -> str:
    return f"users-{kind}-{fraction:g}"


def single_user_id(index: int, count: int) -> str:
    return f"user-{index}-of-{count}"


SINGLE_USER_SET = "user"  # the generator stream of the single-user set: one draw of `count` distinct users


def request_ids(requests_cfg: dict) -> list[str]:
    """Every non-adversarial request id the configuration asks for, in a stable order."""
    ids = [random_edges_id(f) for f in requests_cfg["random_edges"]]
    users = requests_cfg["users"]
    ids += [users_id(kind, f) for kind in users["kinds"] for f in users["fractions"]]
    count = requests_cfg["single_users"]
    ids += [single_user_id(i, count) for i in range(1, count + 1)]
    return ids


def _rng(seed: int, request_id: str) -> np.random.Generator:
    """A generator per request id, so adding a request set never changes the others."""
    return np.random.Generator(np.random.PCG64([seed, zlib.crc32(request_id.encode())]))


def sample_random_edges(train: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """round(fraction * |E|) distinct training edges drawn uniformly (at least one)."""
    size = max(1, int(round(fraction * len(train))))
    chosen = np.sort(rng.choice(len(train), size=size, replace=False))
    return train[chosen]


def choose_users(train: np.ndarray, n_users: int, kind: str, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Users with at least one training edge: the most active ('core'), least active ('edge') or random ones.

    Ties in activity are broken by a seeded random key, so the choice is reproducible and unbiased by id order.

    Args:
        train: (E, 2) training edges (they define activity).
        n_users: number of users.
        kind: "core", "edge" or "random".
        fraction: share of the active users to choose (at least one).
        rng: the request's own generator.
    """
    degree = np.bincount(train[:, 0], minlength=n_users)
    active = np.flatnonzero(degree > 0)
    size = max(1, int(round(fraction * len(active))))
    if kind == "random":
        return np.sort(rng.choice(active, size=size, replace=False))
    tie = rng.random(len(active))
    sign = -1 if kind == "core" else 1
    order = np.lexsort((tie, sign * degree[active]))
    return np.sort(active[order[:size]])


def user_requests(train: np.ndarray, users: np.ndarray) -> np.ndarray:
    return train[np.isin(train[:, 0], users)]


def generate_request(split: Split, request_id: str, seed: int) -> np.ndarray:
    """The edges of one request id, deterministic in (split, id, seed)."""
    rng = _rng(seed, request_id)
    kind, *rest = request_id.split("-")
    if kind == "random":
        return sample_random_edges(split.train, float(rest[0]), rng)
    if kind == "users":
        users = choose_users(split.train, split.n_users, rest[0], float(rest[1]), rng)
        return user_requests(split.train, users)
    if kind == SINGLE_USER_SET and len(rest) == 3 and rest[1] == "of":
        index, count = int(rest[0]), int(rest[2])
        active = np.flatnonzero(np.bincount(split.train[:, 0], minlength=split.n_users) > 0)
        if not 1 <= index <= count <= len(active):
            raise RequestError(f"request '{request_id}': needs 1 <= index <= count <= {len(active)} active users")
        # one draw for the whole set (its own stream), so the set's users are distinct and each id keeps its user
        chosen = _rng(seed, single_user_id(1, count)).choice(active, size=count, replace=False)
        return user_requests(split.train, chosen[index - 1 : index])
    raise RequestError(f"unknown request id '{request_id}'")


def write_request(path: Path, edges: np.ndarray) -> None:
    write_edges(path, edges)


# ---------------------------------------------------------------------------------------------------------------
# Reading and validating request files
# ---------------------------------------------------------------------------------------------------------------


def _examples(rows) -> str:
    rows = list(rows)
    shown = [f"({u}, {i})" for u, i in rows[:MAX_EXAMPLES]]
    return ", ".join(shown) + (" ..." if len(rows) > MAX_EXAMPLES else "")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise RequestError(f"{path}: request file not found")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    except pd.errors.EmptyDataError:
        raise RequestError(f"{path}: the request is empty (no header, no pairs)") from None
    except pd.errors.ParserError as exc:
        raise RequestError(f"{path}: malformed request file ({str(exc).splitlines()[0]})") from None
    header = tuple(frame.columns)
    if header not in (RAW_HEADER, EDGE_HEADER):
        raise RequestError(
            f"{path}: expected a tab-separated header 'user<TAB>item' (raw ids) or "
            f"'user_idx<TAB>item_idx' (internal ids), found {header}"
        )
    if len(frame) == 0:
        raise RequestError(f"{path}: the request is empty (a header but no pairs)")
    return frame


def _to_internal(frame: pd.DataFrame, split: Split, path: Path) -> np.ndarray:
    """Map the file's ids to internal ids, refusing unknown ones."""
    if tuple(frame.columns) == EDGE_HEADER:
        values = pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce") for c in EDGE_HEADER})
        bad = (
            values.isna().any(axis=1)
            | (values < 0).any(axis=1)
            | (values["user_idx"] >= split.n_users)
            | (values["item_idx"] >= split.n_items)
        )
        if bad.any():
            raise RequestError(
                f"{path}: {int(bad.sum())} pair(s) name unknown internal ids, e.g. "
                f"{_examples(frame[bad].itertuples(index=False))}"
            )
        return values.to_numpy(dtype=np.int64)
    users = pd.Index(split.user_ids.astype(str)).get_indexer(frame["user"])
    items = pd.Index(split.item_ids.astype(str)).get_indexer(frame["item"])
    problems = []
    if (users < 0).any():
        problems.append(f"unknown user(s) {', '.join(sorted(set(frame['user'][users < 0]))[:MAX_EXAMPLES])}")
    if (items < 0).any():
        problems.append(f"unknown item(s) {', '.join(sorted(set(frame['item'][items < 0]))[:MAX_EXAMPLES])}")
    if problems:
        raise RequestError(f"{path}: " + "; ".join(problems))
    return np.stack([users, items], axis=1).astype(np.int64)


def validate_request(edges: np.ndarray, split: Split, path: Path, raw: pd.DataFrame | None = None) -> np.ndarray:
    """Refuse duplicates and pairs that are not training edges; return the edges sorted."""
    keys = edge_keys(edges, split.n_items)
    unique, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        dup = unique[counts > 1]
        raise RequestError(
            f"{path}: {len(dup)} pair(s) listed more than once, e.g. {_examples([_show(k, split) for k in dup])}"
        )
    train_keys = edge_keys(split.train, split.n_items)
    missing = ~np.isin(keys, train_keys)
    if missing.any():
        raise RequestError(
            f"{path}: {int(missing.sum())} pair(s) are not in the training set, e.g. "
            f"{_examples([_show(k, split) for k in keys[missing]])}"
        )
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    return edges[order]


def _show(key: int, split: Split) -> tuple[str, str]:
    """A pair as raw ids, for messages a user can act on."""
    user, item = from_keys([key], split.n_items)[0]
    return split.user_ids[user], split.item_ids[item]


def load_request(path: str | Path, split: Split) -> np.ndarray:
    """Read a request file (raw or internal ids) and validate it against the split's training set."""
    path = Path(path)
    frame = _read_table(path)
    edges = _to_internal(frame, split, path)
    return validate_request(edges, split, path)
