"""Read raw rating files into one table shape, refusing anything malformed with the file and line named.

Every parser returns a DataFrame with columns ``user`` (str), ``item`` (str), ``rating`` (float64) and
``timestamp`` (int64, 0 when the file has none), one row per data line of the file, in file order; the
``lightgcn`` parser gives one row per (user, item) pair and adds ``split`` ("train"/"test"). Ids stay strings:
the raw files disagree on what an id is (RecBole's ML-1M copy keys items by title), and mapping them to
contiguous integers is the preprocessing step's job.

Formats (:data:`FORMATS`):

* ``ml-100k``: MovieLens ``u.data``, ``user<TAB>item<TAB>rating<TAB>timestamp``, no header.
* ``ml-1m``: MovieLens ``ratings.dat``, ``user::item::rating::timestamp``, no header.
* ``atomic``: a RecBole ``.inter`` file: tab-separated with a ``name:type`` header such as
  ``user_id:token  item_id:token  rating:float  timestamp:float``. Columns are found by field name: ``user...``
  is the user, ``item...``/``movie...`` (e.g. ``movie_title``) the item, ``rating`` and ``timestamp`` are
  optional (rating 1.0 and timestamp 0 when absent), other columns are ignored. CRLF line ends are fine.
* ``csv``: MovieLens ``ratings.csv`` with header ``userId,movieId,rating,timestamp`` (``user_id``/``item_id``
  style names are accepted too; rating and timestamp optional as above).
* ``lightgcn``: ``train.txt``/``test.txt``, one line per user: ``user item item ...`` (space-separated
  non-negative integers). Pass ``{"train": path, "test": path}`` (a bare path is read as the train split);
  the ``split`` column keeps the published split so a caller may reuse it. Blank lines are skipped, as the
  LightGCN loaders do; a user with no items contributes no rows. Rating is 1.0, timestamp 0.

Bad input (empty file, missing header, wrong number of fields, empty field, non-numeric or non-finite rating,
non-integer timestamp) raises one :class:`DataError` naming the file, the line and the problem. The tabular
formats are read by pandas' C parser with every field as a string and then validated column-wise, so large
files stay fast (docs/decisions.md, section "Graph utilities and data"); only on error is the file re-scanned
line by line to describe the bad line.
Files are read as UTF-8 (a BOM is ignored); a file that is not valid UTF-8 is read as Latin-1, which never
fails and keeps distinct ids distinct.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.errors import EmptyDataError, ParserError, ParserWarning

from recunlearn.data.registry import FORMATS
from recunlearn.errors import DataError

COLUMNS = ("user", "item", "rating", "timestamp")
LIGHTGCN_SPLITS = ("train", "test")


def parse(fmt: str, paths: Mapping[str, str | Path] | str | Path) -> pd.DataFrame:
    """Parse the raw file(s) of format `fmt`; `paths` is one path or a mapping role -> path.

    Single-file formats take a path or a one-entry mapping (the key is ignored); ``lightgcn`` takes
    ``{"train": ..., "test": ...}`` (either may be left out) or a bare path read as the train split.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown raw format {fmt!r}; known formats: {', '.join(FORMATS)}")
    files = {"train": Path(paths)} if isinstance(paths, (str, Path)) else {k: Path(v) for k, v in paths.items()}
    if fmt == "lightgcn":
        return _parse_lightgcn(files)
    if len(files) != 1:
        raise DataError(
            f"format {fmt!r} reads exactly one file, got {len(files)}: {', '.join(str(p) for p in files.values())}"
        )
    return _TABLE_PARSERS[fmt](next(iter(files.values())))


def read_raw(raw_dir: str | Path) -> pd.DataFrame:
    """Parse what :func:`recunlearn.data.acquire.acquire` wrote, after re-checking each file's sha256.

    The re-check costs a fraction of a second and catches a raw file edited or damaged after acquisition.
    """
    raw_dir = Path(raw_dir)
    manifest_path = raw_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        records = manifest["files"]
        formats = {rec["format"] for rec in records}
        files = {rec["role"]: raw_dir / rec["filename"] for rec in records}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{manifest_path}: missing or invalid manifest ({type(exc).__name__}: {exc})") from None
    if len(formats) != 1:
        raise DataError(f"{manifest_path}: files have different formats {sorted(formats)}")
    for rec in records:
        _verify_sha256(raw_dir / rec["filename"], rec.get("sha256"))
    return parse(formats.pop(), files)


def _verify_sha256(path: Path, expected: str | None) -> None:
    """Refuse a raw file whose bytes no longer match the manifest."""
    if not path.is_file():
        raise DataError(f"{path}: raw file listed in manifest.json is missing")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if expected and digest.hexdigest() != expected:
        raise DataError(f"{path}: sha256 mismatch: manifest says {expected}, file has {digest.hexdigest()}")


# ---------------------------------------------------------------------------------------------------------
# Tabular formats


def _parse_ml100k(path: Path) -> pd.DataFrame:
    """u.data: four tab-separated fields, no header."""
    return _table(path, "\t", 4, header_lines=0, roles={0: "user", 1: "item", 2: "rating", 3: "timestamp"})


def _parse_ml1m(path: Path) -> pd.DataFrame:
    """ratings.dat: four '::'-separated fields, no header."""
    return _table(path, "::", 4, header_lines=0, roles={0: "user", 1: "item", 2: "rating", 3: "timestamp"})


def _parse_csv(path: Path) -> pd.DataFrame:
    """ratings.csv: comma-separated with a userId,movieId[,rating][,timestamp] header."""
    header = _first_line(path).split(",")
    roles = _roles_by_name([h.strip().lower() for h in header], _csv_role)
    if "user" not in roles.values() or "item" not in roles.values():
        raise DataError(
            f"{path}: line 1: missing header: expected 'userId,movieId,rating,timestamp', "
            f"found {','.join(header)[:80]!r}"
        )
    return _table(path, ",", len(header), header_lines=1, roles=roles)


def _parse_atomic(path: Path) -> pd.DataFrame:
    """RecBole .inter: tab-separated with a name:type header; columns are chosen by field name."""
    header = _first_line(path).split("\t")
    if not all(":" in h for h in header):
        raise DataError(
            f"{path}: line 1: missing header: expected RecBole 'name:type' fields such as "
            f"'user_id:token', found {chr(9).join(header)[:80]!r}"
        )
    roles = _roles_by_name([h.split(":", 1)[0].strip().lower() for h in header], _atomic_role)
    missing = {"user", "item"} - set(roles.values())
    if missing:
        raise DataError(
            f"{path}: line 1: header has no {' or '.join(sorted(missing))} field "
            f"(expected user_id:... and item_id:...), found {chr(9).join(header)[:80]!r}"
        )
    return _table(path, "\t", len(header), header_lines=1, roles=roles)


def _csv_role(name: str) -> str | None:
    """Map a ratings.csv column name to our column (None: ignore the column)."""
    aliases = {
        "userid": "user",
        "user_id": "user",
        "user": "user",
        "movieid": "item",
        "itemid": "item",
        "item_id": "item",
        "movie_id": "item",
        "item": "item",
        "rating": "rating",
        "timestamp": "timestamp",
    }
    return aliases.get(name)


def _atomic_role(name: str) -> str | None:
    """Map a RecBole field name to our column by prefix (user_id, item_id, movie_title, ...)."""
    if name.startswith("user"):
        return "user"
    if name.startswith(("item", "movie")):
        return "item"
    return name if name in ("rating", "timestamp") else None


def _roles_by_name(names: list[str], role_of: Callable[[str], str | None]) -> dict[int, str]:
    """Column position -> our column; the first column claiming a role wins, later ones are ignored."""
    roles: dict[int, str] = {}
    for pos, name in enumerate(names):
        role = role_of(name)
        if role is not None and role not in roles.values():
            roles[pos] = role
    return roles


def _table(path: Path, sep: str, n_fields: int, header_lines: int, roles: dict[int, str]) -> pd.DataFrame:
    """Read a delimited file as strings, validate it, and convert it to the common columns.

    Args:
        path: the raw file.
        sep: field separator ("\t", "::", ",").
        n_fields: fields every data line must have.
        header_lines: lines to skip before the data (0 or 1).
        roles: column position -> our column ("user", "item", "rating", "timestamp").
    """
    raw = _read_strings(path, sep, n_fields, header_lines)
    first_line = header_lines + 1
    out = {}
    for pos, role in roles.items():
        if role in ("user", "item"):
            out[role] = raw[pos].astype("str")
        elif role == "rating":
            out[role] = _numbers(raw[pos], path, "rating", first_line, whole=False)
        else:
            out[role] = _numbers(raw[pos], path, "timestamp", first_line, whole=True)
    out.setdefault("rating", np.ones(len(raw), dtype="float64"))
    out.setdefault("timestamp", np.zeros(len(raw), dtype="int64"))
    return pd.DataFrame({c: out[c] for c in COLUMNS}).reset_index(drop=True)


def _read_strings(path: Path, sep: str, n_fields: int, header_lines: int) -> pd.DataFrame:
    """All data lines as a string DataFrame with columns 0..n_fields-1; any malformed line is a DataError.

    pandas' C parser only takes a one-character separator, so '::' is read as ':' with empty fillers in
    between (which must stay empty). Pandas pads short lines with "" and warns about (or rejects) long ones;
    warnings are turned into errors so no line is silently cut.
    """
    _require_content(path)
    stride = len(sep)
    n_physical = (n_fields - 1) * stride + 1
    encoding = _encoding(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ParserWarning)
            table = pd.read_csv(
                path,
                sep=sep[0],
                header=None,
                names=range(n_physical),
                index_col=False,
                skiprows=header_lines,
                dtype=str,
                na_filter=False,
                quoting=csv.QUOTE_NONE,
                skip_blank_lines=False,
                engine="c",
                encoding=encoding,
            )
    except EmptyDataError:
        raise DataError(f"{path}: no data lines after the header") from None
    except (ParserError, ParserWarning) as exc:
        _diagnose(path, sep, n_fields, header_lines + 1, encoding)
        raise DataError(f"{path}: cannot parse ({_one_line(str(exc))})") from None
    if table.empty:
        raise DataError(f"{path}: no data lines after the header")
    data_cols = list(range(0, n_physical, stride))
    bad = (table[data_cols] == "").any(axis=1)
    fillers = [c for c in range(n_physical) if c not in data_cols]
    if fillers:
        bad |= (table[fillers] != "").any(axis=1)
    if bad.any():
        lineno = header_lines + 1 + int(np.argmax(bad.to_numpy()))
        _diagnose(path, sep, n_fields, lineno, encoding)
        raise DataError(f"{path}: line {lineno}: malformed line")
    table = table[data_cols]
    table.columns = range(n_fields)
    return table


def _diagnose(path: Path, sep: str, n_fields: int, start_line: int, encoding: str) -> None:
    """Scan lines from `start_line` and raise a DataError describing the first malformed one.

    Args:
        path: the raw file.
        sep: field separator.
        n_fields: fields every data line must have.
        start_line: 1-based number of the first data line.
        encoding: the encoding the file was read with.
    """
    with open(path, encoding=encoding, newline=None) as f:
        lines = itertools.islice(f, start_line - 1, None)
        for lineno, line in enumerate(lines, start_line):
            problem = _line_problem(line.rstrip("\n"), sep, n_fields)
            if problem:
                raise DataError(f"{path}: line {lineno}: {problem}")


def _line_problem(line: str, sep: str, n_fields: int) -> str | None:
    """What is wrong with one data line, or None if its fields look right."""
    if not line.strip():
        return f"empty line (expected {n_fields} fields)"
    fields = line.split(sep)
    if len(fields) != n_fields:
        hint = "truncated or malformed" if len(fields) < n_fields else "malformed"
        return f"expected {n_fields} fields separated by {sep!r}, found {len(fields)} ({hint}: {line[:60]!r})"
    for i, value in enumerate(fields, 1):
        if value == "":
            return f"field {i} is empty"
        if len(sep) > 1 and sep[0] in value:
            return f"field {i} {value[:40]!r} contains a stray {sep[0]!r}"
    return None


def _numbers(values: pd.Series, path: Path, what: str, first_line: int, whole: bool) -> np.ndarray:
    """Convert a string column to float64 (rating) or int64 (timestamp), naming the first bad line.

    Args:
        values: the column as strings.
        path: the raw file, for the message.
        what: the column's name, for the message.
        first_line: file line number of the column's first value.
        whole: True for int64 (timestamps), False for finite float64 (ratings).
    """
    converted = pd.to_numeric(values, errors="coerce")
    if whole and pd.api.types.is_integer_dtype(converted.dtype):
        return converted.to_numpy(dtype="int64")
    floats = converted.to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(floats)
    if whole:
        bad |= np.isfinite(floats) & (floats != np.floor(np.where(np.isfinite(floats), floats, 0)))
    if bad.any():
        row = int(np.argmax(bad))
        kind = "an integer" if whole else "a finite number"
        raise DataError(f"{path}: line {first_line + row}: {what} {values.iloc[row][:40]!r} is not {kind}")
    return floats.astype("int64") if whole else floats


def _require_content(path: Path) -> None:
    """An absent or zero-byte file is the commonest kind of broken download: say so plainly."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


def _first_line(path: Path) -> str:
    """The header line, without its line end (CRLF or LF) and without a UTF-8 BOM."""
    _require_content(path)
    with open(path, encoding=_encoding(path), newline=None) as f:
        return f.readline().rstrip("\n")


def _encoding(path: Path) -> str:
    """'utf-8-sig' when the whole file decodes as UTF-8, else 'latin-1' (which always decodes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def _one_line(text: str) -> str:
    return " ".join(text.split())


_TABLE_PARSERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "ml-100k": _parse_ml100k,
    "ml-1m": _parse_ml1m,
    "atomic": _parse_atomic,
    "csv": _parse_csv,
}


# ---------------------------------------------------------------------------------------------------------
# LightGCN adjacency lists

_LIGHTGCN_LINE = re.compile(r"[ \t]*[0-9]+(?:[ \t]+[0-9]+)*[ \t]*")


def _parse_lightgcn(files: Mapping[str, Path]) -> pd.DataFrame:
    """train.txt/test.txt: each line 'user item item ...'; one row per pair, tagged with its split."""
    unknown = set(files) - set(LIGHTGCN_SPLITS)
    if unknown or not files:
        raise DataError(
            f"lightgcn files must be keyed by {' and/or '.join(LIGHTGCN_SPLITS)}, got {sorted(files) or 'nothing'}"
        )
    parts = [_lightgcn_file(files[split], split) for split in LIGHTGCN_SPLITS if split in files]
    return pd.concat(parts, ignore_index=True)


def _lightgcn_file(path: Path, split: str) -> pd.DataFrame:
    """One adjacency-list file; every token must be a non-negative integer id."""
    _require_content(path)
    users: list[str] = []
    items: list[str] = []
    with open(path, encoding=_encoding(path), newline=None) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if not _LIGHTGCN_LINE.fullmatch(line.rstrip("\n")):
                raise DataError(
                    f"{path}: line {lineno}: {_bad_token(line.split())!r} is not a non-negative "
                    "integer id (expected 'user item item ...')"
                )
            tokens = line.split()
            users.extend(itertools.repeat(tokens[0], len(tokens) - 1))
            items.extend(tokens[1:])
    if not items:
        raise DataError(f"{path}: no user-item pairs in the file")
    n = len(items)
    return pd.DataFrame(
        {
            "user": pd.Series(users, dtype="str"),
            "item": pd.Series(items, dtype="str"),
            "rating": np.ones(n, dtype="float64"),
            "timestamp": np.zeros(n, dtype="int64"),
            "split": pd.Series([split] * n, dtype="str"),
        }
    )


def _bad_token(tokens: Iterable[str]) -> str:
    """The first token of a line that is not a plain digit string (for the error message)."""
    return next((t for t in tokens if not (t.isascii() and t.isdigit())), "")[:40]
