"""Fixtures for tests that drive the CLI in-process: a tiny project config and a `recunlearn` runner."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
import yaml

from pipeline_helpers import ROOT
from recunlearn import cli

TINY_DATA = ROOT / "tests/data/tiny.data"


@pytest.fixture(scope="session")
def tiny_project():
    """`make(folder, data_file=tiny.data, checksum=None) -> config path`: config/tiny.yaml with its results in
    `folder/results` and its dataset read from `data_file` (checksum: the file's own sha256 unless given)."""

    def make(folder: Path, data_file: Path = TINY_DATA, checksum: str | None = None) -> Path:
        cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
        cfg["results_dir"] = str(folder / "results")
        sha = checksum or hashlib.sha256(Path(data_file).read_bytes()).hexdigest()
        cfg["custom_datasets"]["tiny"].update(path=str(data_file), sha256=sha)
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return make


@pytest.fixture(scope="session")
def recunlearn():
    """`run(config, *args) -> exit status`: `recunlearn --config config *args` in this process.

    `cli.main` points the root logger at the stage's log file; the runner closes that file and gives the root
    logger its previous handlers back, so calls do not leak into each other or into pytest's log capture."""

    def run(config, *args) -> int:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            return cli.main(["--config", str(config), *map(str, args)])
        finally:
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)

    return run
