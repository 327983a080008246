"""Helpers for tests that run the real Snakemake and DVC pipelines in a temporary copy of the project.

`GRID_CONFIG` is the pipeline tier's grid: the tiny config with only the methods and requests the DAG contract
needs (a method without preparation, two with; the adversarial request and one random-edge request), written
into every copy by `project_copy`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("workflow", "config", "src", "notebooks", "tests/data", "pyproject.toml")
TINY_CONFIG = "config/tiny.yaml"
GRID_CONFIG = "config/tiny_grid.yaml"
RESULTS = "results/tiny"
GRID = {
    "methods": ["none", "unlearnrec", "sisa"],
    "requests": {"random_edges": [0.05], "users": {"kinds": []}, "single_users": 0, "adversarial": {"enabled": True}},
}


def env() -> dict:
    """The venv's bin first on PATH (DVC and Snakemake call `recunlearn` and `python` from PATH)."""
    result = dict(os.environ)
    result["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{result.get('PATH', '')}"
    result["RECUNLEARN_OFFLINE"] = "1"
    return result


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def write_grid_config(root: Path) -> Path:
    """config/tiny_grid.yaml in `root`: the tiny config with the pipeline tier's methods and requests."""
    from recunlearn.config import merge_overrides

    raw = yaml.safe_load((root / TINY_CONFIG).read_text()) or {}
    path = root / GRID_CONFIG
    path.write_text(
        "# The pipeline tests' grid (tests/pipeline_helpers.py): config/tiny.yaml with fewer methods and "
        "requests.\n" + yaml.safe_dump(merge_overrides(raw, GRID), sort_keys=False)
    )
    return path


def project_copy(dest: Path, config: str = GRID_CONFIG) -> Path:
    """A git + DVC repository holding the project's pipeline files and the grid config, with dvc.yaml generated
    for `config`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    write_grid_config(dest)
    run(["git", "init", "-q"], dest)
    run(["dvc", "init", "-q"], dest)
    run(["dvc", "config", "core.analytics", "false"], dest)
    run(["recunlearn", "--config", config, "dvc-yaml"], dest)
    return dest


def produced_files(root: Path, results: str = RESULTS) -> set[str]:
    """Every file under the results folder, relative to root, without logs and tool metadata."""
    base = root / results
    return {
        str(p.relative_to(root))
        for p in base.rglob("*")
        if p.is_file() and "/logs/" not in str(p) and p.name not in (".gitignore", ".snakemake_timestamp")
    }


def planned_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a `snakemake -n` run prints, `all` left out."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", "\n" + output):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        if not head or head.group(1) == "all":
            continue
        found = re.search(r"^\s*wildcards: (.*)$", block, re.MULTILINE)
        wildcards = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
        jobs.append((head.group(1), wildcards))
    return jobs
