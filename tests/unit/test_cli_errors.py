"""Bad input through the CLI: one clear message naming the file or key, exit status 2, no partial output.

The commands run in-process (`cli.main`); one smoke test starts the installed console script."""

from __future__ import annotations

import pytest

from pipeline_helpers import ROOT, run
from recunlearn.cli import main

TINY = ROOT / "tests/data/tiny.data"


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    """Run each command from tmp_path, as the console script would be run from a project folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(recunlearn, capsys):
    """`cli(config, *args) -> (exit status, the error line)`. Exactly one error line may be printed, and a
    failing command prints nothing on stdout."""

    def call(config, *args):
        code = recunlearn(config, *args)
        out, err = capsys.readouterr()
        errors = [line for line in err.splitlines() if line.startswith("recunlearn: error:")]
        assert len(errors) <= 1, err
        if code != 0:
            assert out == "", out
        return code, errors[0] if errors else err

    return call


def outputs(tmp_path, sub):
    base = tmp_path / "results" / sub
    return sorted(p.name for p in base.rglob("*") if p.is_file()) if base.exists() else []


def test_valid_input_passes_end_to_end(tmp_path, tiny_project, cli):
    config = tiny_project(tmp_path)
    for step in ("download", "preprocess", "requests"):
        code, err = cli(config, step, "--dataset", "tiny")
        assert code == 0, err
    assert "train.tsv" in outputs(tmp_path, "tiny/split")


def test_invalid_config_names_key_and_writes_nothing(tmp_path, cli):
    config = tmp_path / "bad.yaml"
    config.write_text("train: {batch_size: -4}\n")
    code, err = cli(config, "download", "--dataset", "ml-100k")
    assert code == 2
    assert err.splitlines() == [err] and "bad.yaml: train.batch_size" in err
    assert not (tmp_path / "results").exists()


def test_checksum_mismatch_names_file_and_leaves_no_raw_folder(tmp_path, tiny_project, cli):
    config = tiny_project(tmp_path, TINY, checksum="0" * 64)
    code, err = cli(config, "download", "--dataset", "tiny")
    assert code == 2 and "sha256" in err and "tiny.data" in err and "0" * 64 in err
    assert len(err.splitlines()) == 1
    assert outputs(tmp_path, "raw") == []


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda text: text[: len(text) // 2 - 3], "line"),  # truncated in the middle of a line
        (lambda text: text.replace("\t5\t", "\tfive\t", 1), "five"),  # non-numeric rating
        (lambda text: "", "empty"),  # empty file
    ],
)
def test_malformed_raw_file_names_file_and_leaves_no_split(tmp_path, tiny_project, cli, damage, problem):
    bad = tmp_path / "broken.data"
    bad.write_text(damage(TINY.read_text()))
    config = tiny_project(tmp_path, bad)
    code, err = cli(config, "download", "--dataset", "tiny")
    if code == 0:  # the file itself downloads; parsing must refuse it
        code, err = cli(config, "preprocess", "--dataset", "tiny")
    assert code == 2 and "broken.data" in err and problem in err.lower(), err
    assert len(err.splitlines()) == 1
    assert outputs(tmp_path, "tiny") == []


def test_bad_request_file_names_file_and_problem(tmp_path, tiny_project, cli, recunlearn, capsys):
    config = tiny_project(tmp_path)
    for step in ("download", "preprocess"):
        assert cli(config, step, "--dataset", "tiny")[0] == 0
    request = tmp_path / "forget.tsv"
    first_edge = (tmp_path / "results/tiny/split/train.tsv").read_text().splitlines()[1]
    request.write_text(f"user_idx\titem_idx\n{first_edge}\n")
    assert recunlearn(config, "validate-request", "--dataset", "tiny", request) == 0
    assert capsys.readouterr().out == f"{request}: valid request of 1 training edges (1 users, 1 items)\n"
    request.write_text("user\titem\n1\t999999\n")
    code, err = cli(config, "validate-request", "--dataset", "tiny", request)
    assert code == 2 and "forget.tsv" in err and "unknown item(s) 999999" in err
    request.write_text("user\titem\n")
    code, err = cli(config, "validate-request", "--dataset", "tiny", request)
    assert code == 2 and "empty" in err


def test_unknown_command_or_missing_option_is_a_usage_error(tmp_path, capsys):
    for argv in (["no-such-step"], ["download"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "usage: recunlearn" in capsys.readouterr().err


@pytest.mark.smoke
def test_console_script_runs_and_exits_2_with_one_line_on_a_bad_request(tmp_path, tiny_project, recunlearn, capsys):
    """The installed `recunlearn` entry point: --help lists the commands; a bad request gives status 2, one line."""
    config = tiny_project(tmp_path)
    for step in ("download", "preprocess"):
        assert recunlearn(config, step, "--dataset", "tiny") == 0
    capsys.readouterr()
    assert "forget" in run(["recunlearn", "--help"], tmp_path).stdout
    bad = tmp_path / "bad.tsv"
    bad.write_text("user\titem\n1\t999999\n")
    proc = run(
        ["recunlearn", "--config", str(config), "validate-request", "--dataset", "tiny", str(bad)],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"recunlearn: error: {bad}: unknown item(s) 999999"]
