"""The profiles plan the same DAG as a local run, and the slurm profile's jobs ask for what their rules declare:
memory and wall time from the config's `resources`, a GPU on the steps that run on `device` (the profile sets
`device=cuda`), none on the data, evaluation and notebook steps. Dry runs only; no Slurm needed."""

from __future__ import annotations

import re

import pytest

from pipeline_helpers import ROOT, TINY_CONFIG, planned_jobs, project_copy, run
from recunlearn.config import load_config

pytestmark = pytest.mark.pipeline
DEVICE_STEPS = {"train", "adversarial", "prepare", "unlearn", "reference"}


def _resources_per_job(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run prints, `all` left out."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", "\n" + output):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        found = re.search(r"^\s*resources: (.*)$", block, re.MULTILINE)
        if head and head.group(1) != "all" and found:
            jobs.append((head.group(1), dict(item.split("=", 1) for item in found.group(1).split(", "))))
    return jobs


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    return project_copy(tmp_path_factory.mktemp("profiles"))


def _dry(copy, *args):
    return run(["snakemake", "-n", "--forceall", "--configfile", TINY_CONFIG, *args], copy).stdout


def test_the_slurm_profile_plans_every_local_job_with_its_rules_resources(copy):
    local = _dry(copy)
    on_slurm = _dry(copy, "--profile", str(ROOT / "workflow/profiles/slurm"))
    assert sorted(map(str, planned_jobs(on_slurm))) == sorted(map(str, planned_jobs(local)))
    cfg = load_config(ROOT / TINY_CONFIG)
    jobs = _resources_per_job(on_slurm)
    assert len(jobs) == len(planned_jobs(local)) and {rule.split("_")[0] for rule, _ in jobs} >= DEVICE_STEPS
    for rule, resources in jobs:
        step = rule.split("_")[0]
        assert resources["gpu"] == ("1" if step in DEVICE_STEPS else "0"), (rule, resources)
        assert resources["mem_mb"] == str(cfg["resources"][step]["mem_mb"]), (rule, resources)
        assert resources["runtime"] == str(cfg["resources"][step]["runtime"]), (rule, resources)
    assert "--set 'device=\"cuda\"' train" in on_slurm


def test_a_cpu_run_asks_for_no_gpu_anywhere(copy):
    jobs = _resources_per_job(_dry(copy, "--profile", str(ROOT / "workflow/profiles/slurm"), "--config", "device=cpu"))
    assert jobs and all(resources["gpu"] == "0" for _, resources in jobs)
    assert all(resources["gpu"] == "0" for _, resources in _resources_per_job(_dry(copy)))
