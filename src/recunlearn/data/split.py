"""The preprocessed dataset on disk: train/valid/test interactions with contiguous ids, and the id maps.

A split folder holds `train.tsv`, `valid.tsv`, `test.tsv` (header `user_idx<TAB>item_idx`, internal ids),
`users.tsv` and `items.tsv` (header `idx<TAB>raw_id`) and `stats.json`. Everything downstream (training,
requests, unlearning, evaluation) reads it through `load_split`, which checks the files are complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recunlearn.errors import DataError
from recunlearn.io import atomic_path

SPLITS = ("train", "valid", "test")
EDGE_HEADER = ("user_idx", "item_idx")


@dataclass
class Split:
    """Interactions as (E, 2) int64 arrays of (user, item) internal ids, plus the raw-id maps."""

    n_users: int
    n_items: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    user_ids: np.ndarray  # raw id (str) of internal user i
    item_ids: np.ndarray  # raw id (str) of internal item i

    def fingerprint(self) -> str:
        """sha256 over the three edge arrays: identifies the data a checkpoint was trained on."""
        h = hashlib.sha256()
        for arr in (self.train, self.valid, self.test):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        return h.hexdigest()


def write_edges(path: Path, edges: np.ndarray) -> None:
    """Write an edge array as a TSV with the internal-id header, atomically and byte-reproducibly."""
    frame = pd.DataFrame(np.asarray(edges, dtype=np.int64).reshape(-1, 2), columns=list(EDGE_HEADER))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def read_edges(path: Path) -> np.ndarray:
    """Read an internal-id edge TSV written by `write_edges`; a damaged file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=np.int64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a valid edge file ({str(exc).splitlines()[0]})") from None
    if tuple(frame.columns) != EDGE_HEADER:
        raise DataError(f"{path}: expected header {'/'.join(EDGE_HEADER)}, found {'/'.join(map(str, frame.columns))}")
    return frame.to_numpy(dtype=np.int64).reshape(-1, 2)


def write_id_map(path: Path, raw_ids: np.ndarray) -> None:
    frame = pd.DataFrame({"idx": np.arange(len(raw_ids)), "raw_id": raw_ids})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def read_id_map(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    frame = pd.read_csv(path, sep="\t", dtype={"idx": np.int64, "raw_id": str}, keep_default_na=False)
    if list(frame.columns) != ["idx", "raw_id"] or not np.array_equal(frame["idx"].to_numpy(), np.arange(len(frame))):
        raise DataError(f"{path}: expected columns idx/raw_id with idx = 0..n-1")
    return frame["raw_id"].to_numpy(dtype=object)


def load_split(folder: str | Path) -> Split:
    """Load a split folder written by `recunlearn.data.preprocess`."""
    folder = Path(folder)
    user_ids = read_id_map(folder / "users.tsv")
    item_ids = read_id_map(folder / "items.tsv")
    parts = {name: read_edges(folder / f"{name}.tsv") for name in SPLITS}
    for name, edges in parts.items():
        if len(edges) and (edges[:, 0].max() >= len(user_ids) or edges[:, 1].max() >= len(item_ids) or edges.min() < 0):
            raise DataError(f"{folder / (name + '.tsv')}: ids outside the id maps")
    return Split(len(user_ids), len(item_ids), parts["train"], parts["valid"], parts["test"], user_ids, item_ids)
