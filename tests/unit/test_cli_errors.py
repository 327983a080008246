"""Bad input through the real CLI: one clear message naming the file or key, exit status 2, no partial output."""
from __future__ import annotations

import hashlib
import shutil

import pytest
import yaml

from pipeline_helpers import ROOT, run

TINY = ROOT / "tests/data/tiny.data"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project(tmp_path, data_file, checksum=None):
    """A config with one custom dataset pointing at `data_file`, results in tmp_path/results."""
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["custom_datasets"]["tiny"].update(path=str(data_file), sha256=checksum or sha(data_file))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(tmp_path, config, *args):
    """Run the CLI; return (exit code, the error message). Exactly one error line may be printed."""
    proc = run(["recunlearn", "--config", str(config), *args], tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("recunlearn: error:")]
    assert len(errors) <= 1, proc.stderr
    return proc.returncode, errors[0] if errors else proc.stderr


def outputs(tmp_path, sub):
    base = tmp_path / "results" / sub
    return sorted(p.name for p in base.rglob("*") if p.is_file()) if base.exists() else []


def test_valid_input_passes_end_to_end(tmp_path):
    config = project(tmp_path, TINY)
    for step in ("download", "preprocess", "requests"):
        code, err = cli(tmp_path, config, step, "--dataset", "tiny")
        assert code == 0, err
    assert "train.tsv" in outputs(tmp_path, "tiny/split")


def test_invalid_config_names_key_and_writes_nothing(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("train: {batch_size: -4}\n")
    code, err = cli(tmp_path, config, "download", "--dataset", "ml-100k")
    assert code == 2
    assert err.splitlines() == [err] and "bad.yaml: train.batch_size" in err
    assert not (tmp_path / "results").exists()


def test_checksum_mismatch_names_file_and_leaves_no_raw_folder(tmp_path):
    config = project(tmp_path, TINY, checksum="0" * 64)
    code, err = cli(tmp_path, config, "download", "--dataset", "tiny")
    assert code == 2 and "sha256" in err and "tiny.data" in err and "0" * 64 in err
    assert len(err.splitlines()) == 1
    assert outputs(tmp_path, "raw") == []


@pytest.mark.parametrize("damage, problem", [
    (lambda text: text[: len(text) // 2 - 3], "line"),              # truncated in the middle of a line
    (lambda text: text.replace("\t5\t", "\tfive\t", 1), "five"),    # non-numeric rating
    (lambda text: "", "empty"),                                      # empty file
])
def test_malformed_raw_file_names_file_and_leaves_no_split(tmp_path, damage, problem):
    bad = tmp_path / "broken.data"
    bad.write_text(damage(TINY.read_text()))
    config = project(tmp_path, bad)
    code, err = cli(tmp_path, config, "download", "--dataset", "tiny")
    if code == 0:  # the file itself downloads; parsing must refuse it
        code, err = cli(tmp_path, config, "preprocess", "--dataset", "tiny")
    assert code == 2 and "broken.data" in err and problem in err.lower(), err
    assert len(err.splitlines()) == 1
    assert outputs(tmp_path, "tiny") == []


def test_bad_request_file_names_file_and_problem(tmp_path):
    config = project(tmp_path, TINY)
    for step in ("download", "preprocess"):
        assert cli(tmp_path, config, step, "--dataset", "tiny")[0] == 0
    request = tmp_path / "forget.tsv"
    request.write_text("user\titem\n1\t999999\n")
    code, err = cli(tmp_path, config, "validate-request", "--dataset", "tiny", str(request))
    assert code == 2 and "forget.tsv" in err and "unknown item(s) 999999" in err
    request.write_text("user\titem\n")
    code, err = cli(tmp_path, config, "validate-request", "--dataset", "tiny", str(request))
    assert code == 2 and "empty" in err
