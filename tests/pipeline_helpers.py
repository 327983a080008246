"""Helpers for tests that run the real Snakemake and DVC pipelines in a temporary copy of the project."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "src", "notebooks", "tests/data", "pyproject.toml")


def env() -> dict:
    """The venv's bin first on PATH (DVC and Snakemake call `recunlearn` and `python` from PATH)."""
    result = dict(os.environ)
    result["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{result.get('PATH', '')}"
    result["RECUNLEARN_OFFLINE"] = "1"
    return result


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def project_copy(dest: Path, config: str = "config/tiny.yaml") -> Path:
    """A git + DVC repository holding the project's pipeline files, with dvc.yaml generated for `config`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    run(["git", "init", "-q"], dest)
    run(["dvc", "init", "-q"], dest)
    run(["dvc", "config", "core.analytics", "false"], dest)
    run(["recunlearn", "--config", config, "dvc-yaml"], dest)
    return dest


def produced_files(root: Path, results: str) -> set[str]:
    """Every file under the results folder, relative to root, without logs and tool metadata."""
    base = root / results
    return {str(p.relative_to(root)) for p in base.rglob("*")
            if p.is_file() and "/logs/" not in str(p) and p.name not in (".gitignore", ".snakemake_timestamp")}
