"""The real Snakemake DAG and DVC stages on the pipeline grid (tests/pipeline_helpers.py::GRID): same files from
nothing with both tools, nothing to do twice, the tiny run's metrics unchanged, and the rules addressable by step.
One Snakemake run per session (`tiny_run`, tests/conftest.py) and one `dvc repro` (`dvc_run`); everything else is a
dry run."""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections import Counter

import pytest
import yaml

from pipeline.golden import GOLDEN, file_mismatches, metrics_files
from pipeline_helpers import GRID_CONFIG, RESULTS, ROOT, TINY_CONFIG, planned_jobs, produced_files, project_copy, run

pytestmark = pytest.mark.pipeline
CONFIG = GRID_CONFIG
STEPS = [
    "adversarial",
    "compare",
    "download",
    "notebook",
    "popularity",
    "prepare",
    "preprocess",
    "reference",
    "requests",
    "train",
    "unlearn",
]
# JSON files whose content depends on the grid (which requests and methods exist), so the golden file of the full
# tiny config does not apply to them; and files the golden file predates.
GRID_DEPENDENT = {"tiny/requests/summary.json", "tiny/lightgcn/comparison.json"}
NEWER_THAN_GOLDEN = {"tiny/lightgcn/scores.json"}


def snakemake(root, *args, config=CONFIG):
    return run(["snakemake", "--cores", "1", "--configfile", config, *args], root)


def planned_outputs(root) -> set[str]:
    return set(run(["recunlearn", "--config", CONFIG, "outputs"], root).stdout.split())


def expand_dirs(root, outputs: set[str]) -> set[str]:
    files = set()
    for out in outputs:
        path = root / out
        files |= (
            {str(p.relative_to(root)) for p in path.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp"}
            if path.is_dir()
            else {out}
        )
    return files


def metrics(root) -> dict[str, str]:
    """relative path (under results/tiny) -> canonical JSON without wall-clock fields, as tests/pipeline/golden.py."""
    return metrics_files(root / RESULTS)


def test_snakemake_builds_every_planned_output_and_then_has_nothing_to_do(tiny_run):
    assert produced_files(tiny_run, RESULTS) == expand_dirs(tiny_run, planned_outputs(tiny_run))
    dry = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_every_metrics_file_equals_the_golden_tiny_run(tiny_run):
    """The test that shows a refactor changed no result: wall-clock fields aside, the same JSON (floats to the
    golden file's tolerance)."""
    golden = json.loads(GOLDEN.read_text())
    produced = metrics(tiny_run)
    compared = set(produced) - GRID_DEPENDENT - NEWER_THAN_GOLDEN
    assert compared <= set(golden), sorted(compared - set(golden))
    assert file_mismatches(golden, produced, compared) == []
    # the grid's jobs: 3 models, 4 preparations, 2 requests x (reference + 3 methods), data and adversarial files
    assert sum(k.endswith("metrics.json") for k in compared) == 3 + 2 * 4


def test_every_file_of_a_job_that_runs_a_model_records_its_device_and_threads(tiny_run):
    """Seconds from a CPU and a GPU are not comparable: each model metrics, preparation report, adversarial
    summary and unlearning metrics file says where it was measured (the tiny config: cpu, 1 thread)."""
    results = tiny_run / RESULTS
    files = [
        *results.glob("*/lightgcn/seed*/**/metrics.json"),
        *results.glob("*/lightgcn/seed*/**/prepared/*/report.json"),
        *results.glob("*/lightgcn/seed*/adversarial/summary.json"),
    ]
    assert len(files) == 3 + 2 * 4 + 4 + 1, sorted(map(str, files))  # models, requests x jobs, preparations, attack
    assert all({"device": "cpu", "threads": 1}.items() <= json.loads(f.read_text()).items() for f in files)


def test_dvc_builds_the_same_files_and_then_is_up_to_date(dvc_run, tiny_run):
    assert produced_files(dvc_run, RESULTS) == produced_files(tiny_run, RESULTS)
    status = run(["dvc", "status"], dvc_run)
    assert "up to date" in status.stdout
    again = run(["dvc", "repro"], dvc_run)
    assert "didn't change, skipping" in again.stdout and "Running stage" not in again.stdout


def test_deterministic_outputs_are_byte_identical_across_tools(dvc_run, tiny_run):
    """Same config and seeds: the data files match exactly, and every metrics file (minus wall-clock)."""
    for rel in produced_files(dvc_run, RESULTS):
        if rel.endswith(".tsv"):
            assert (dvc_run / rel).read_bytes() == (tiny_run / rel).read_bytes(), rel
    assert metrics(dvc_run) == metrics(tiny_run)


def test_dvc_metrics_show_lists_the_statistics(dvc_run):
    shown = run(["dvc", "metrics", "show"], dvc_run).stdout
    assert "split/stats.json" in shown and "interactions" in shown


def detailed_summary(root) -> dict[str, dict]:
    """Snakemake's view of the DAG: output file -> (rule, inputs, command)."""
    text = snakemake(root, "--detailed-summary").stdout
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    return {
        r["output_file"]: {
            "rule": r["rule"],
            "inputs": set(r["input-file(s)"].split(",")) - {"-", ""},
            "cmd": r["shellcmd"].strip(),
        }
        for r in rows
    }


def test_snakemake_and_dvc_dags_agree(tiny_run):
    """Every DVC stage has a Snakemake job with the same command, inputs and outputs, and vice versa; a DVC stage
    name starts with the step of the Snakemake rule that runs the job."""
    smk = detailed_summary(tiny_run)
    stages = yaml.safe_load((tiny_run / "dvc.yaml").read_text())["stages"]
    dvc_outputs = {}
    for name, stage in stages.items():
        outs = (
            list(stage.get("outs", []))
            + [next(iter(m)) for m in stage.get("metrics", [])]
            + [next(iter(p)) for p in stage.get("plots", [])]
        )
        for out in outs:
            dvc_outputs[out] = {"stage": name, "inputs": set(stage["deps"]), "cmd": stage["cmd"]}
    smk = {k.rstrip("/"): v for k, v in smk.items() if k.startswith(RESULTS)}
    assert set(smk) == set(dvc_outputs)
    for out, expected in dvc_outputs.items():
        step = smk[out]["rule"].split("_")[0]
        assert step in STEPS and expected["stage"].startswith(f"{step}_"), out
        assert smk[out]["inputs"] == expected["inputs"], out
        assert shlex.split(smk[out]["cmd"]) == shlex.split(expected["cmd"]), out


def test_list_rules_names_the_steps(tiny_run):
    rules = snakemake(tiny_run, "--list-rules").stdout.split()
    assert set(STEPS) | {"all"} <= set(rules)
    assert all(r in STEPS or r == "all" or r.startswith("notebook_") for r in rules) and len(rules) <= 14, rules


def test_forcerun_unlearn_plans_every_unlearn_job(tiny_run):
    jobs = planned_jobs(snakemake(tiny_run, "-n", "--forcerun", "unlearn").stdout)
    unlearn = {(w["request"], w["method"]) for rule, w in jobs if rule == "unlearn"}
    assert unlearn == {(r, m) for r in ("adversarial-0.5", "random-0.05") for m in ("none", "unlearnrec", "sisa")}
    # and what reads them, nothing upstream
    assert {rule.split("_")[0] for rule, _ in jobs} == {"unlearn", "compare", "notebook"}


def _job_counts(output: str) -> Counter:
    return Counter(rule.split("_")[0] for rule, _ in planned_jobs(output))


def test_dry_run_of_the_full_tiny_config(tiny_run):
    counts = _job_counts(snakemake(tiny_run, "-n", "--forceall", config=TINY_CONFIG).stdout)
    assert counts == {
        "download": 1,
        "preprocess": 1,
        "requests": 1,
        "popularity": 1,
        "train": 6,
        "adversarial": 1,
        "prepare": 6,
        "unlearn": 55,  # 5 requests x 11 methods
        "reference": 5,
        "compare": 1,
        "notebook": 4,
    }


def test_dry_run_of_sgl_and_simgcl_through_config_overrides(tiny_run):
    """Only `backbones` changes: every model job exists once per backbone, and the commands say which."""
    dry = snakemake(tiny_run, "-n", "--forceall", "--config", "backbones=[sgl,simgcl]", config=TINY_CONFIG).stdout
    jobs = planned_jobs(dry)
    assert {w["backbone"] for _, w in jobs if "backbone" in w} == {"sgl", "simgcl"}
    assert _job_counts(dry)["train"] == 12 and _job_counts(dry)["unlearn"] == 110
    assert '--set \'backbones=["sgl","simgcl"]\' train --dataset tiny --backbone simgcl' in dry


def test_config_overrides_change_the_plan_and_reach_the_commands(tiny_run):
    """`--config KEY=VALUE` is Snakemake's own override; the stage commands receive it as --set."""
    dry = snakemake(tiny_run, "-n", "--config", "seeds=[0,1]", "methods=[none]").stdout
    jobs = planned_jobs(dry)
    assert {w["seed"] for rule, w in jobs if rule == "train"} == {"1"}  # seed 0 is built already
    assert {w["method"] for rule, w in jobs if rule == "unlearn"} == {"none"}
    assert not [rule for rule, _ in jobs if rule == "prepare"]
    assert "recunlearn --config config/tiny_grid.yaml --set 'seeds=[0,1]' --set 'methods=[\"none\"]' train" in dry


def test_changed_param_reruns_only_dependent_stages(tiny_run):
    """Changing the request seed (here through --config) re-runs the request stage and what depends on it, not the
    download or the split."""
    dry = snakemake(tiny_run, "-n", "--config", "requests={seed: 99}").stdout
    rules = {rule for rule, _ in planned_jobs(dry)}
    assert "requests" in rules and "preprocess" not in rules and "download" not in rules


def test_changing_one_ie_weight_reruns_only_the_ie_and_its_dependants(tiny_run):
    """Edit one UnlearnRec weight in the config file (in place, as a user would): only the IE preparation, the
    UnlearnRec unlearning stages, the table and the notebooks are out of date."""
    path = tiny_run / CONFIG
    original = path.read_text()
    cfg = yaml.safe_load(original)
    cfg["method_settings"]["unlearnrec"]["lambda_u"] = 0.123
    try:
        path.write_text(yaml.safe_dump(cfg))
        dry = snakemake(tiny_run, "-n").stdout
    finally:
        path.write_text(original)
    jobs = planned_jobs(dry)
    assert any(rule == "prepare" for rule, _ in jobs), dry
    assert {rule.split("_")[0] for rule, _ in jobs} <= {"prepare", "unlearn", "compare", "notebook"}
    assert all(w["method"] == "unlearnrec" for rule, w in jobs if rule in ("prepare", "unlearn")), jobs


def test_report_and_plots_render(tiny_run, dvc_run):
    """`snakemake --report` writes one self-contained HTML file; `dvc plots show` renders the declared plots."""
    snakemake(tiny_run, "--report", "report.html")
    html = (tiny_run / "report.html").read_text(errors="ignore")
    assert len(html) > 100_000 and "comparison_tiny.png" in html
    run(["dvc", "plots", "show", "-o", "plots"], dvc_run)
    index = (dvc_run / "plots" / "index.html").read_text()
    assert "forgetting_tiny" in index and "history.csv" in index


def test_deleting_a_figure_reruns_only_its_notebook(tiny_run):
    figure = tiny_run / RESULTS / "figures" / "efficiency_tiny.png"
    figure.unlink()
    jobs = planned_jobs(snakemake(tiny_run, "-n").stdout)
    assert jobs == [("notebook_efficiency", {"notebook": "efficiency", "dataset": "tiny"})]
    snakemake(tiny_run)
    assert figure.stat().st_size > 0


def _forget_command(request, out) -> list[str]:
    """`recunlearn forget` of a request file from the tiny run's LightGCN, seed 0."""
    return ["recunlearn", "--config", CONFIG, "forget", "--dataset", "tiny", "--backbone", "lightgcn", "--seed", "0",
            "--request-file", str(request), "--out", str(out)]  # fmt: skip


def test_forget_a_user_request_with_raw_ids(tiny_run, tmp_path):
    """The real-use path: raw ids in, unlearned model + report out; a bad request is refused, nothing written."""
    from recunlearn.data.split import load_split

    split = load_split(tiny_run / RESULTS / "tiny/split")
    request = tmp_path / "forget.tsv"
    request.write_text(
        "user\titem\n" + "".join(f"{split.user_ids[u]}\t{split.item_ids[i]}\n" for u, i in split.train[:4])
    )
    out = tmp_path / "out"
    proc = run(
        _forget_command(request, str(out)),
        tiny_run,
    )
    report = json.loads((out / "report.json").read_text())
    assert report["request_edges"] == 4 and report["variant"] == "ie_ft" and report["seconds"] > 0
    assert {"mi_bf", "mi_ng", "auc_deleted_vs_nonedges", "mia_member_rate", "mia_auc"} <= set(report["forgetting"])
    assert json.loads(proc.stdout)["request_edges"] == 4
    remaining = (out / "remaining_train.tsv").read_text().count("\n") - 1
    assert remaining == len(split.train) - 4 and (out / "model.pt").stat().st_size > 0

    request.write_text("user\titem\n999999\t1\n")
    bad = run(
        _forget_command(request, str(tmp_path / "bad")),
        tiny_run,
        check=False,
    )
    assert bad.returncode == 2 and "forget.tsv: unknown user(s) 999999" in bad.stderr
    assert not (tmp_path / "bad").exists()


def _loop_metrics(scores, masked: set, test: set, k: int) -> tuple[float, float]:
    """Recall@k and NDCG@k by a plain loop over users and Python sets (independent of evaluation.ranking)."""
    import math

    recalls, ndcgs = [], []
    for user in sorted({u for u, _ in test}):
        truth = {i for u, i in test if u == user}
        ranked = sorted(
            (i for i in range(len(scores[user])) if (user, i) not in masked), key=lambda i: -scores[user][i]
        )
        hits = [1.0 if i in truth else 0.0 for i in ranked[:k]]
        recalls.append(sum(hits) / len(truth))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        ndcgs.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(len(truth), k))))
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


def test_an_independent_loop_over_the_saved_model_reproduces_its_test_metrics_with_train_and_valid_masked(tiny_run):
    from recunlearn.backbones.checkpoint import load_checkpoint
    from recunlearn.data.split import load_split
    from recunlearn.graph.adjacency import normalized_adjacency

    split = load_split(tiny_run / RESULTS / "tiny/split")
    model, _ = load_checkpoint(tiny_run / RESULTS / "tiny/lightgcn/seed0/original/model.pt")
    users, items = model.split(model(normalized_adjacency(split.train, split.n_users, split.n_items, "cpu")))
    scores = (users @ items.T).detach().tolist()
    test = {tuple(e) for e in split.test.tolist()}
    known = {tuple(e) for e in split.train.tolist()} | {tuple(e) for e in split.valid.tolist()}
    saved = json.loads((tiny_run / RESULTS / "tiny/lightgcn/seed0/original/metrics.json").read_text())["test"]
    recall, ndcg = _loop_metrics(scores, known - test, test, 20)
    assert saved["recall@20"] == pytest.approx(recall, abs=1e-9) and saved["ndcg@20"] == pytest.approx(ndcg, abs=1e-9)
    train_only, _ = _loop_metrics(scores, {tuple(e) for e in split.train.tolist()} - test, test, 20)
    assert train_only != pytest.approx(recall, abs=1e-6)  # the two conventions differ on this run


def test_sgl_and_simgcl_train_through_the_same_pipeline_with_one_config_change(tmp_path):
    """Only `backbones` changes (passed as --config; `evaluation.ks` too, which shows the override reaches the
    stage commands): the two backbones beat the popularity floor with their own readout."""
    root = project_copy(tmp_path / "p")
    targets = [f"{RESULTS}/tiny/{b}/seed0/original/metrics.json" for b in ("sgl", "simgcl")]
    run(
        [
            "snakemake",
            f"{RESULTS}/tiny/popularity.json",
            *targets,
            "--cores",
            "2",
            "--configfile",
            CONFIG,
            "--config",
            "backbones=[sgl,simgcl]",
            "evaluation={ks: [5, 20]}",
        ],
        root,
    )
    popularity = json.loads((root / RESULTS / "tiny/popularity.json").read_text())
    assert {"recall@5", "recall@20"} <= set(popularity) and "recall@10" not in popularity
    for backbone, readout in (("sgl", "mean"), ("simgcl", "mean_1_to_L")):
        trained = json.loads((root / RESULTS / f"tiny/{backbone}/seed0/original/metrics.json").read_text())
        assert trained["backbone"] == backbone and trained["readout"] == readout
        assert trained["test"]["recall@20"] > popularity["recall@20"]


def test_committed_dvc_yaml_matches_default_config():
    run(["recunlearn", "--config", "config/config.yaml", "dvc-yaml", "--check"], ROOT)


def test_dvc_exp_run_on_a_grid_key_stops_with_one_line_saying_what_to_run(dvc_run):
    """`dvc exp run -S seeds=[0,1]` edits the config but not dvc.yaml: the first stage DVC re-runs says how to
    regenerate it, and nothing is computed."""
    config = dvc_run / CONFIG
    original = config.read_text()
    run(["git", "add", "-A"], dvc_run)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "grid"], dvc_run)
    try:
        proc = run(["dvc", "exp", "run", "-S", f"{CONFIG}:seeds=[0,1]"], dvc_run, check=False)
    finally:
        config.write_text(original)
    assert proc.returncode != 0
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("recunlearn: error:")]
    assert ours == [
        f"recunlearn: error: dvc.yaml is stale for {CONFIG}: run `make dvc-yaml` "
        f"(recunlearn --config {CONFIG} dvc-yaml) and commit it"
    ]
    assert not (dvc_run / RESULTS / "tiny/lightgcn/seed1").exists()
