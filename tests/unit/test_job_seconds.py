"""benchmarks/job_seconds.py: pairs each Snakemake job start with its "Finished" line, per rule."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from pipeline_helpers import ROOT

LOG = """\
Building DAG of jobs...
[Mon Dec  7 15:24:05 2026]
localrule download:
    output: results/raw/ml-1m
    jobid: 1
    wildcards: dataset=ml-1m
[Mon Dec  7 15:24:08 2026]
Finished jobid: 1 (Rule: download)
[Mon Dec  7 15:24:08 2026]
rule train:
    jobid: 2
[Mon Dec  7 15:24:10 2026]
rule train:
    jobid: 3
[Mon Dec  7 15:34:08 2026]
Finished jobid: 2 (Rule: train)
[Mon Dec  7 15:44:10 2026]
Finished jobid: 3 (Rule: train)
[Mon Dec  7 15:44:11 2026]
rule unlearn:
    jobid: 4
"""


@pytest.fixture
def job_seconds():
    spec = importlib.util.spec_from_file_location("job_seconds", ROOT / "benchmarks/job_seconds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_job_is_timed_from_its_start_to_its_finished_line(job_seconds):
    jobs = job_seconds.job_table(LOG.splitlines()).set_index("jobid")
    assert jobs.loc[1, "seconds"] == 3 and jobs.loc[2, "seconds"] == 600 and jobs.loc[3, "seconds"] == 1200
    assert jobs.loc[4, "end"] is None or str(jobs.loc[4, "end"]) == "NaT"


def test_rules_are_summed_in_order_of_first_start_and_unfinished_jobs_counted(job_seconds):
    summary = job_seconds.rule_summary(job_seconds.job_table(LOG.splitlines()))
    assert list(summary.index) == ["download", "train", "unlearn"]
    assert summary.loc["train"].tolist() == [2, 1800, 1200, 0]
    assert summary.loc["unlearn"].tolist() == [0, 0, 0, 1]


def test_the_command_prints_a_table_sums_the_logs_of_a_resumed_run_and_rejects_a_file_that_is_no_log(tmp_path):
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    script = str(ROOT / "benchmarks/job_seconds.py")
    out = subprocess.run([sys.executable, script, str(log)], capture_output=True, text=True, check=True).stdout
    assert "| train | 2 | 1800 | 1200 | 0 |" in out and "3 of 4 started jobs finished" in out
    resumed = tmp_path / "resumed.snakemake.log"
    resumed.write_text(
        LOG.split("Finished jobid: 3 (Rule: train)\n")[1] + "[Mon Dec  7 16:00:11 2026]\nFinished jobid: 4\n"
    )
    out = subprocess.run([sys.executable, script, str(log), str(resumed)], capture_output=True, text=True).stdout
    assert "| unlearn | 1 | 960 | 960 | 1 |" in out and "summed over 2 log(s): 2165 s" in out
    other = tmp_path / "notes.txt"
    other.write_text("nothing here\n")
    failed = subprocess.run([sys.executable, script, str(other)], capture_output=True, text=True)
    assert failed.returncode != 0 and "no Snakemake job starts" in failed.stderr and str(other) in failed.stderr
