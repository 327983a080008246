"""The tiny pipeline through a real Slurm (`make test-slurm`, which starts one with scripts/slurm-localhost.sh):
every job goes through sbatch with the slurm profile, the accounting lists each one as completed with the memory
and GPUs its rule asked for, and the results equal the local run's (the golden file is that run's metrics).

Skipped, saying how to get one, when no Slurm answers on this machine (the default `make test`)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from pipeline.golden import GOLDEN, file_mismatches, metrics_files
from pipeline_helpers import GRID_CONFIG, RESULTS, ROOT, planned_jobs, project_copy, run

SETUP = ROOT / "scripts" / "slurm-localhost.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
GRID_DEPENDENT = {"tiny/requests/summary.json", "tiny/lightgcn/comparison.json", "tiny/lightgcn/scores.json"}
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/")


def _slurm_answers() -> bool:
    return subprocess.run(["bash", str(SETUP), "--check"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        not _slurm_answers(),
        reason="no Slurm answers on this machine (sinfo/sacct): `make test-slurm` installs and starts one",
    ),
]


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    """A project copy after the pipeline grid ran through Slurm: (root, snakemake's output, planned jobs).

    The machine has no CUDA, so the run keeps `device=cpu` (the profile's `device=cuda` is replaced) and asks for
    the node's GPU on the training jobs with --set-resources: the request that a cuda config makes by itself."""
    root = project_copy(tmp_path_factory.mktemp("slurm"))
    common = ["--configfile", GRID_CONFIG, "--config", "device=cpu"]
    planned = planned_jobs(run(["snakemake", "-n", "--cores", "1", *common], root).stdout)
    proc = run(
        [
            "snakemake",
            "--profile",
            str(PROFILE),
            *common,
            "--set-resources",
            "train:gpu=1",
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--seconds-between-status-checks",
            "1",
        ],
        root,
    )
    return root, proc.stdout + proc.stderr, planned


def _accounting(job_ids: list[str]) -> dict[str, dict[str, str]]:
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "--format=JobID,State,AllocTRES,Comment"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    return {r[0]: {"state": r[1], "tres": r[2], "comment": r[3]} for r in rows}


def test_every_job_went_through_sbatch_and_sacct_lists_it_completed(slurm_run):
    root, output, planned = slurm_run
    submitted = SUBMITTED.findall(output)
    assert sorted(rule for _, rule in submitted) == sorted(rule for rule, _ in planned)
    accounted = _accounting([job for job, _ in submitted])
    assert set(accounted) == {job for job, _ in submitted}
    for job, rule in submitted:
        row = accounted[job]
        assert row["state"] == "COMPLETED", (job, rule, row)
        assert row["comment"].startswith(f"rule_{rule}"), (job, rule, row)


def test_each_job_got_the_memory_and_gpus_its_rule_asked_for(slurm_run):
    from recunlearn.config import load_config

    root, output, _ = slurm_run
    cfg = load_config(root / GRID_CONFIG)
    submitted = SUBMITTED.findall(output)
    accounted = _accounting([job for job, _ in submitted])
    for job, rule in submitted:
        step = rule.split("_")[0]
        tres = dict(item.split("=", 1) for item in accounted[job]["tres"].split(","))
        assert tres["mem"] == f"{cfg['resources'][step]['mem_mb']}M", (rule, tres)
        assert tres.get("gres/gpu") == ("1" if step == "train" else None), (rule, tres)


def test_the_results_equal_the_local_run(slurm_run):
    """Wall-clock fields aside, every metrics file equals the golden file (floats to its tolerance), which is the
    local tiny run's (the pipeline tier checks that a local run reproduces it)."""
    root, _, _ = slurm_run
    golden = json.loads(GOLDEN.read_text())
    produced = metrics_files(root / RESULTS)
    compared = set(produced) - GRID_DEPENDENT
    assert compared and compared <= set(golden)
    assert file_mismatches(golden, produced, compared) == []
    again = run(["snakemake", "-n", "--cores", "1", "--configfile", GRID_CONFIG, "--config", "device=cpu"], root)
    assert "Nothing to be done" in again.stdout + again.stderr
