"""Wall seconds per rule of one Snakemake run, read from its log (`.snakemake/log/*.snakemake.log`).

Snakemake writes a timestamp line before every job start ("rule X:" or "localrule X:" with its "jobid: N") and
before every "Finished jobid: N". This pairs them and prints, per rule, the number of jobs, their summed seconds
and the longest one, plus the run's elapsed time. With two cores and `threads: 2` jobs run one at a time, so the
summed seconds add up to the elapsed time; with parallel jobs they are job-seconds, not wall time. Jobs without a
"Finished" line (a run stopped early) are listed as unfinished; give every log of a resumed run. Used for the
cost per stage kind in the headers of the configs and the README:

    python benchmarks/job_seconds.py .snakemake/log/*.snakemake.log
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def job_table(lines: list[str]) -> pd.DataFrame:
    """One row per job: rule, jobid, start, end (NaT while unfinished) and seconds."""
    stamp, rule, jobs, ends = None, None, {}, {}
    for line in lines:
        line = line.rstrip("\n")
        if m := _STAMP.match(line):
            stamp = _parse_stamp(m.group(1))
        elif m := _START.match(line):
            rule = (m.group(1), stamp)
        elif (m := _JOBID.match(line)) and rule is not None:
            jobs[int(m.group(1))] = rule
            rule = None
        elif m := _FINISHED.match(line):
            ends[int(m.group(1))] = stamp
    rows = [
        {"rule": name, "jobid": jobid, "start": start, "end": ends.get(jobid)} for jobid, (name, start) in jobs.items()
    ]
    table = pd.DataFrame(rows, columns=["rule", "jobid", "start", "end"])
    table["end"] = pd.to_datetime(table["end"])
    table["seconds"] = (table["end"] - pd.to_datetime(table["start"])).dt.total_seconds()
    return table


def rule_summary(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule, in order of first start: finished jobs, their summed and longest seconds, unfinished jobs."""
    done = jobs.dropna(subset=["seconds"])
    summary = jobs.groupby("rule", sort=False).agg(first=("start", "min"), unfinished=("end", lambda e: e.isna().sum()))
    summary = summary.join(
        done.groupby("rule").agg(jobs=("seconds", "size"), seconds=("seconds", "sum"), longest=("seconds", "max"))
    )
    summary[["jobs", "seconds", "longest"]] = summary[["jobs", "seconds", "longest"]].fillna(0)
    summary = summary.sort_values("first").drop(columns="first")
    return summary.astype({"jobs": int, "unfinished": int})[["jobs", "seconds", "longest", "unfinished"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", type=Path, nargs="+", help="Snakemake logs of one run (several when it was resumed)")
    args = p.parse_args()
    tables, span = [], 0.0
    for log in args.logs:
        if not log.is_file():
            raise SystemExit(f"error: {log}: no such log file")
        jobs = job_table(log.read_text().splitlines())
        if not jobs.empty:  # a run that failed before its first job (a missing tool, say) started none
            tables.append(jobs)
            if pd.notna(last := jobs["end"].max()):
                span += (last - jobs["start"].min()).total_seconds()
    if not tables:
        raise SystemExit(f"error: {', '.join(map(str, args.logs))}: no Snakemake job starts found; Snakemake logs?")
    jobs = pd.concat(tables, ignore_index=True)
    print("| rule | jobs | seconds | longest | unfinished |\n|---|---|---|---|---|")
    for row in rule_summary(jobs).itertuples():
        print(f"| {row.Index} | {row.jobs} | {row.seconds:.0f} | {row.longest:.0f} | {row.unfinished} |")
    print(
        f"\nfirst start to last finish, summed over {len(tables)} log(s): {span:.0f} s ({span / 60:.1f} min); "
        f"{int(jobs['end'].notna().sum())} of {len(jobs)} started jobs finished"
    )


if __name__ == "__main__":
    main()
