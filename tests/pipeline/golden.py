"""The tiny run's metrics with wall-clock fields removed: what must stay byte-identical across refactors.

`python tests/pipeline/golden.py RESULTS_DIR` rewrites tests/data/golden_tiny.json from a finished tiny run;
the pipeline tests compare a fresh run's metrics with it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_tiny.json"
# wall-clock: seconds anywhere in a key (seconds_to_best, retrain_seconds_total, ...) and anything derived from
# them (speed-up, break-even), per-part timings
WALL_CLOCK = re.compile(r"seconds|_s$|^timings$|speedup$|break_even_requests$", re.IGNORECASE)


def without_wall_clock(node):
    if isinstance(node, dict):
        return {k: without_wall_clock(v) for k, v in node.items() if not WALL_CLOCK.search(str(k))}
    if isinstance(node, list):
        return [without_wall_clock(v) for v in node]
    return node


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
