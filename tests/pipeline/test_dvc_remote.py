"""Results that come back without rerunning: the tiny run recorded for DVC (`dvc commit`, as `make run` does),
pushed to a local-directory remote, pulled into a fresh git clone that has no results and no cache, and then both
tools agree there is nothing to do (README, "Scaling": the commands a lab runs between a cluster and a laptop)."""

from __future__ import annotations

import shutil

import pytest

from pipeline_helpers import GRID_CONFIG, RESULTS, produced_files, run

pytestmark = pytest.mark.pipeline
GIT = ["git", "-c", "user.name=tests", "-c", "user.email=tests@example.org"]


def test_dvc_push_then_pull_into_a_fresh_clone_restores_every_result(tiny_run, tmp_path):
    cluster = tmp_path / "cluster"
    shutil.copytree(tiny_run, cluster, symlinks=True)
    remote = tmp_path / "remote"
    run(["dvc", "commit", "--force", "--quiet"], cluster)
    run(["dvc", "remote", "add", "--default", "shared", str(remote)], cluster)
    run(["git", "add", "-A"], cluster)
    run([*GIT, "commit", "-qm", "results of the tiny run"], cluster)
    run(["dvc", "push", "--quiet"], cluster)
    assert any(remote.rglob("*")), "dvc push wrote nothing to the remote"

    laptop = tmp_path / "laptop"
    run(["git", "clone", "-q", str(cluster), str(laptop)], tmp_path)
    assert not (laptop / ".dvc" / "cache").exists()
    run(["dvc", "pull", "--quiet"], laptop)
    run(["snakemake", "--touch", "--cores", "1", "--quiet", "--configfile", GRID_CONFIG], laptop)

    expected = produced_files(cluster, RESULTS)
    assert expected and produced_files(laptop, RESULTS) == expected
    assert [rel for rel in sorted(expected) if (laptop / rel).read_bytes() != (cluster / rel).read_bytes()] == []
    assert "Data and pipelines are up to date" in run(["dvc", "status"], laptop).stdout
    dry = run(["snakemake", "-n", "--cores", "1", "--configfile", GRID_CONFIG], laptop)
    assert "Nothing to be done" in dry.stdout + dry.stderr
