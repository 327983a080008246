"""The real Snakemake DAG and DVC stages on the tiny config: same files from nothing, nothing to do twice."""
from __future__ import annotations

import csv
import json
import io

import pytest
import yaml

from pipeline_helpers import ROOT, produced_files, project_copy, run

pytestmark = pytest.mark.pipeline
CONFIG = "config/tiny.yaml"
RESULTS = "results/tiny"


@pytest.fixture(scope="module")
def snakemake_run(tmp_path_factory):
    root = project_copy(tmp_path_factory.mktemp("smk"))
    run(["snakemake", "--cores", "2", "--configfile", CONFIG], root)
    return root


@pytest.fixture(scope="module")
def dvc_run(tmp_path_factory):
    root = project_copy(tmp_path_factory.mktemp("dvc"))
    run(["dvc", "repro", "-q"], root)
    return root


def planned_outputs(root) -> set[str]:
    out = run(["recunlearn", "--config", CONFIG, "outputs"], root).stdout.split()
    return set(out)


def expand_dirs(root, outputs: set[str]) -> set[str]:
    files = set()
    for out in outputs:
        path = root / out
        files |= {str(p.relative_to(root)) for p in path.rglob("*")
                  if p.is_file() and p.name != ".snakemake_timestamp"} if path.is_dir() else {out}
    return files


def test_snakemake_builds_every_planned_output_and_then_has_nothing_to_do(snakemake_run):
    assert produced_files(snakemake_run, RESULTS) == expand_dirs(snakemake_run, planned_outputs(snakemake_run))
    dry = run(["snakemake", "--cores", "2", "--configfile", CONFIG, "-n"], snakemake_run)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_dvc_builds_the_same_files_and_then_is_up_to_date(dvc_run, snakemake_run):
    assert produced_files(dvc_run, RESULTS) == produced_files(snakemake_run, RESULTS)
    status = run(["dvc", "status"], dvc_run)
    assert "up to date" in status.stdout
    again = run(["dvc", "repro"], dvc_run)
    assert "didn't change, skipping" in again.stdout and "Running stage" not in again.stdout


def test_deterministic_outputs_are_byte_identical_across_tools(dvc_run, snakemake_run):
    """Same config and seeds: the data files and trained metrics (minus wall-clock) match exactly."""
    for rel in produced_files(dvc_run, RESULTS):
        if rel.endswith(".tsv"):
            assert (dvc_run / rel).read_bytes() == (snakemake_run / rel).read_bytes(), rel


def test_dvc_metrics_show_lists_the_statistics(dvc_run):
    shown = run(["dvc", "metrics", "show"], dvc_run).stdout
    assert "split/stats.json" in shown and "interactions" in shown


def detailed_summary(root) -> dict[str, dict]:
    """Snakemake's view of the DAG: output file -> (rule, inputs, command)."""
    text = run(["snakemake", "--configfile", CONFIG, "--detailed-summary", "--cores", "1"], root).stdout
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    return {r["output_file"]: {"rule": r["rule"], "inputs": set(r["input-file(s)"].split(",")) - {"-", ""},
                               "cmd": r["shellcmd"].strip()} for r in rows}


def test_snakemake_and_dvc_dags_agree(snakemake_run):
    """Every DVC stage has a Snakemake rule with the same command, inputs and outputs, and vice versa."""
    smk = detailed_summary(snakemake_run)
    stages = yaml.safe_load((snakemake_run / "dvc.yaml").read_text())["stages"]
    dvc_outputs = {}
    for name, stage in stages.items():
        outs = list(stage.get("outs", [])) + [next(iter(m)) for m in stage.get("metrics", [])] + \
            [next(iter(p)) for p in stage.get("plots", [])]
        for out in outs:
            dvc_outputs[out] = {"rule": name,
                                "inputs": set(stage["deps"]), "cmd": stage["cmd"]}
    smk = {k.rstrip("/"): v for k, v in smk.items() if k.startswith(RESULTS)}
    assert set(smk) == set(dvc_outputs)
    for out, expected in dvc_outputs.items():
        assert smk[out]["rule"] == expected["rule"], out
        assert smk[out]["inputs"] == expected["inputs"], out
        assert smk[out]["cmd"].replace("'", "") == expected["cmd"], out


def test_committed_dvc_yaml_matches_default_config():
    run(["recunlearn", "--config", "config/config.yaml", "dvc-yaml", "--check"], ROOT)


def test_changed_param_reruns_only_dependent_stages(tmp_path):
    """Changing the request seed re-runs the request stage and what depends on it, not the download/split."""
    root = project_copy(tmp_path / "p")
    target = "results/tiny/tiny/requests/summary.json"
    run(["snakemake", target, "--cores", "1", "--configfile", CONFIG], root)
    cfg = yaml.safe_load((root / CONFIG).read_text())
    cfg["requests"]["seed"] = 99
    (root / CONFIG).write_text(yaml.safe_dump(cfg))
    dry = run(["snakemake", target, "-n", "--cores", "1", "--configfile", CONFIG], root).stdout
    assert "requests_tiny" in dry and "preprocess_tiny" not in dry and "download_tiny" not in dry


def test_sgl_and_simgcl_run_through_the_same_pipeline_with_one_config_change(tmp_path):
    """Only `backbones` changes (plus a smaller request grid to keep the test short)."""
    root = project_copy(tmp_path / "p")
    cfg = yaml.safe_load((root / CONFIG).read_text())
    cfg["backbones"] = ["sgl", "simgcl"]
    cfg["requests"]["users"]["kinds"] = []
    cfg["requests"]["adversarial"]["enabled"] = False
    cfg["methods"] = ["none", "unlearnrec"]
    (root / CONFIG).write_text(yaml.safe_dump(cfg))
    run(["snakemake", "--cores", "2", "--configfile", CONFIG], root)
    popularity = json.loads((root / RESULTS / "tiny/popularity.json").read_text())["recall@20"]
    for backbone, readout in (("sgl", "mean"), ("simgcl", "mean_1_to_L")):
        metrics = json.loads((root / RESULTS / f"tiny/{backbone}/seed0/original/metrics.json").read_text())
        assert metrics["backbone"] == backbone and metrics["readout"] == readout
        assert metrics["test"]["recall@20"] > popularity
        table = (root / RESULTS / f"tiny/{backbone}/comparison.csv").read_text()
        assert "unlearnrec/ie_ft" in table and "retrain" in table


def test_report_and_plots_render(snakemake_run, dvc_run):
    """`snakemake --report` writes one self-contained HTML file; `dvc plots show` renders the declared plots."""
    run(["snakemake", "--configfile", CONFIG, "--report", "report.html"], snakemake_run)
    html = (snakemake_run / "report.html").read_text(errors="ignore")
    assert len(html) > 100_000 and "comparison_tiny.png" in html
    run(["dvc", "plots", "show", "-o", "plots"], dvc_run)
    index = (dvc_run / "plots" / "index.html").read_text()
    assert "forgetting_tiny" in index and "history.csv" in index


def test_deleting_a_figure_reruns_only_its_notebook(snakemake_run):
    figure = snakemake_run / RESULTS / "figures" / "efficiency_tiny.png"
    figure.unlink()
    dry = run(["snakemake", "--cores", "1", "--configfile", CONFIG, "-n"], snakemake_run).stdout
    jobs = [line.split()[1].rstrip(":") for line in dry.splitlines() if line.startswith(("rule ", "localrule "))]
    assert sorted(set(jobs) - {"all"}) == ["notebook_tiny_efficiency"]
    run(["snakemake", "--cores", "1", "--configfile", CONFIG], snakemake_run)
    assert figure.stat().st_size > 0


def test_changing_one_ie_weight_reruns_only_the_ie_and_its_dependants(snakemake_run):
    """Edit one UnlearnRec weight in the config file (in place, as a user would): only the IE preparation, the
    UnlearnRec unlearning stages, the table and the notebooks are out of date."""
    path = snakemake_run / CONFIG
    original = path.read_text()
    cfg = yaml.safe_load(original)
    cfg["method_settings"]["unlearnrec"]["lambda_u"] = 0.123
    try:
        path.write_text(yaml.safe_dump(cfg))
        dry = run(["snakemake", "--cores", "1", "--configfile", CONFIG, "-n"], snakemake_run).stdout
    finally:
        path.write_text(original)
    jobs = {line.split()[1].rstrip(":") for line in dry.splitlines() if line.startswith(("rule ", "localrule "))}
    jobs -= {"all"}
    assert any(job.startswith("prepare_") for job in jobs), dry
    assert all(job.startswith(("prepare_", "unlearn_", "compare_", "notebook_")) for job in jobs), jobs
    assert all("unlearnrec" in job for job in jobs if job.startswith(("prepare_", "unlearn_"))), jobs


def test_forget_a_user_request_with_raw_ids(snakemake_run, tmp_path):
    """The real-use path: raw ids in, unlearned model + report out; a bad request is refused, nothing written."""
    from recunlearn.data.split import load_split

    split = load_split(snakemake_run / RESULTS / "tiny/split")
    request = tmp_path / "forget.tsv"
    request.write_text("user\titem\n" + "".join(f"{split.user_ids[u]}\t{split.item_ids[i]}\n" for u, i in split.train[:4]))
    out = tmp_path / "out"
    proc = run(["recunlearn", "--config", CONFIG, "forget", "--dataset", "tiny", "--backbone", "lightgcn", "--seed", "0",
                "--request-file", str(request), "--out", str(out)], snakemake_run)
    report = json.loads((out / "report.json").read_text())
    assert report["request_edges"] == 4 and report["variant"] == "ie_ft" and report["seconds"] > 0
    assert {"mi_bf", "mi_ng", "df_auc", "mia_member_rate"} <= set(report["forgetting"])
    assert json.loads(proc.stdout)["request_edges"] == 4
    remaining = (out / "remaining_train.tsv").read_text().count("\n") - 1
    assert remaining == len(split.train) - 4 and (out / "model.pt").stat().st_size > 0

    request.write_text("user\titem\n999999\t1\n")
    bad = run(["recunlearn", "--config", CONFIG, "forget", "--dataset", "tiny", "--backbone", "lightgcn", "--seed",
               "0", "--request-file", str(request), "--out", str(tmp_path / "bad")], snakemake_run, check=False)
    assert bad.returncode == 2 and "forget.tsv: unknown user(s) 999999" in bad.stderr
    assert not (tmp_path / "bad").exists()
