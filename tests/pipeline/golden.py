"""The tiny run's metrics with wall-clock fields removed: what must stay the same across refactors.

Structure, integers and strings must be identical; floats equal to FLOAT_RTOL/FLOAT_ATOL. The same code gives
float32 results that differ in about the sixth digit on another CPU (PyTorch picks kernels by the vector units it
finds; measured in docs/decisions.md), while any change to a method moves
its metrics by orders of magnitude more.

`python tests/pipeline/golden.py RESULTS_DIR` rewrites tests/data/golden_tiny.json from a finished tiny run;
the pipeline tests compare a fresh run's metrics with it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_tiny.json"
# wall-clock: seconds anywhere in a key (seconds_to_best, retrain_seconds_total, ...) and anything derived from
# them (speed-up, break-even), per-part timings
FLOAT_RTOL = 1e-4
FLOAT_ATOL = 1e-5
WALL_CLOCK = re.compile(r"seconds|_s$|^timings$|speedup$|break_even_requests$", re.IGNORECASE)


def without_wall_clock(node):
    if isinstance(node, dict):
        return {k: without_wall_clock(v) for k, v in node.items() if not WALL_CLOCK.search(str(k))}
    if isinstance(node, list):
        return [without_wall_clock(v) for v in node]
    return node


def mismatches(expected, produced, path: str = "") -> list[str]:
    """JSON paths where `produced` differs from `expected`: any structural, integer or string difference, or
    floats beyond the tolerance above."""
    if isinstance(expected, dict) and isinstance(produced, dict):
        only = sorted(set(expected) ^ set(produced))
        common = sorted(set(expected) & set(produced))
        return [f"{path}/{k} (in one file only)" for k in only] + [
            m for k in common for m in mismatches(expected[k], produced[k], f"{path}/{k}")
        ]
    if isinstance(expected, list) and isinstance(produced, list):
        if len(expected) != len(produced):
            return [f"{path} (length {len(expected)} != {len(produced)})"]
        return [m for i, (a, b) in enumerate(zip(expected, produced)) for m in mismatches(a, b, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(produced, float):
        close = math.isclose(expected, produced, rel_tol=FLOAT_RTOL, abs_tol=FLOAT_ATOL)
        return [] if close else [f"{path} ({expected!r} != {produced!r})"]
    same = type(expected) is type(produced) and expected == produced
    return [] if same else [f"{path} ({expected!r} != {produced!r})"]


def file_mismatches(golden: dict[str, str], produced: dict[str, str], files) -> list[str]:
    """`mismatches` over the canonical JSON texts of `files` (keys of both mappings), prefixed by file."""
    return [m for f in sorted(files) for m in mismatches(json.loads(golden[f]), json.loads(produced[f]), f)]


def metrics_files(results: Path) -> dict[str, str]:
    """relative path -> canonical JSON text (sorted keys) of every metrics/report/summary JSON under `results`."""
    out = {}
    for path in sorted(results.rglob("*.json")):
        if "logs" in path.parts:
            continue
        data = without_wall_clock(json.loads(path.read_text()))
        out[str(path.relative_to(results))] = json.dumps(data, sort_keys=True)
    return out


if __name__ == "__main__":
    files = metrics_files(Path(sys.argv[1]))
    GOLDEN.write_text(json.dumps(files, indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(files)} files)")
