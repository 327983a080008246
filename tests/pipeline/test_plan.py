"""The plan, its code dependencies, the --set overrides and the stale-dvc.yaml check, in-process (fast tier):
what the Snakefile and dvc.yaml are rendered from."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline_helpers import ROOT, TINY_CONFIG
from recunlearn import cli, report
from recunlearn.config import load_config
from recunlearn.pipeline import deps, dvc, layout
from recunlearn.pipeline.plan import STEPS, build_plan, command


@pytest.fixture(scope="module")
def tiny():
    return load_config(ROOT / TINY_CONFIG)


@pytest.fixture(scope="module")
def plan(tiny):
    return build_plan(tiny)


def _rel(module: str) -> str:
    return str(deps.module_path(module).relative_to(ROOT))


def test_a_module_that_imports_another_has_it_in_its_closure():
    assert "recunlearn.data.split" in deps.direct_imports("recunlearn.stages.data")
    files = deps.closure("recunlearn.stages.data")
    assert _rel("recunlearn.data.split") in files and _rel("recunlearn.stages.data") in files
    # package __init__ files on the way run first, so they are deps too
    assert "src/recunlearn/__init__.py" in files and "src/recunlearn/stages/__init__.py" in files


def test_registries_are_cut_so_a_job_lists_only_its_own_method_and_backbone(plan):
    for stage in plan.jobs("unlearn") + plan.jobs("prepare"):
        method = stage.wildcards["method"]
        listed = {
            f.rsplit("/", 1)[-1][:-3]
            for f in stage.deps
            if f.startswith("src/recunlearn/unlearning/") and f.count("/") == 3
        }
        others = set(plan.cfg["methods"]) - {method} - {"sisa"}  # RecEraser's base class is SISA
        assert not listed & others, (stage.name, listed & others)
        backbones = {f for f in stage.deps if f.startswith("src/recunlearn/backbones/") and "__init__" not in f}
        assert f"src/recunlearn/backbones/{stage.wildcards['backbone']}.py" in backbones


@pytest.mark.parametrize("method", ["gif", "none", "d2dgn", "gnndelete", "receraser"])
def test_editing_a_method_module_changes_only_that_methods_jobs(plan, method):
    module = f"src/recunlearn/unlearning/{method}.py"
    listing = {s.name for s in plan if module in s.deps}
    expected = {s.name for s in plan if s.step in ("prepare", "unlearn") and s.wildcards["method"] == method}
    assert listing == expected and expected


def test_receraser_jobs_list_the_sisa_and_sharding_modules_it_imports(plan):
    """The review found both missing from the hand-kept lists."""
    for stage in plan.jobs("unlearn"):
        if stage.wildcards["method"] == "receraser":
            assert {"src/recunlearn/unlearning/sisa.py", "src/recunlearn/unlearning/sharding.py"} <= set(stage.deps)


def test_reverse_bpr_lists_the_training_module_it_imports(plan):
    shared = {"recunlearn.unlearning._training", "recunlearn.unlearning.finetune"}
    imported = shared & deps.direct_imports("recunlearn.unlearning.reverse_bpr")
    assert imported, "reverse_bpr imports neither _training nor finetune"
    for stage in plan.jobs("unlearn"):
        if stage.wildcards["method"] == "reverse_bpr":
            assert {_rel(m) for m in imported} <= set(stage.deps)


def test_schema_files_are_deps_of_the_jobs_that_read_them(plan):
    top = "src/recunlearn/schemas/config.schema.yaml"
    assert all(top in s.deps for s in plan if s.step not in ("notebook",))
    fragment = deps.SCHEMAS / "methods" / "unlearnrec.yaml"
    if not fragment.is_file():
        pytest.skip("no per-method schema fragments in this tree")
    rel = str(fragment.relative_to(ROOT))
    assert {s.name for s in plan if rel in s.deps} == {
        s.name for s in plan if s.step in ("prepare", "unlearn") and s.wildcards["method"] == "unlearnrec"
    }
    lightgcn = "src/recunlearn/schemas/backbones/lightgcn.yaml"
    assert all(lightgcn in s.deps for s in plan.jobs("train") + plan.jobs("reference"))


def test_building_the_plan_imports_no_torch():
    code = (
        "import sys; from recunlearn.config import load_config; from recunlearn.pipeline.plan import build_plan;"
        f" from recunlearn.pipeline.dvc import render_dvc_yaml; cfg = load_config({str(ROOT / TINY_CONFIG)!r});"
        " build_plan(cfg); render_dvc_yaml(cfg); print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('torch', 'recunlearn') and ('torch' in m or 'unlearning.' in m or 'stages' in m)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pipeline_modules_import_no_stage():
    for path in (deps.SRC / "recunlearn" / "pipeline").glob("*.py"):
        module = f"recunlearn.pipeline.{path.stem}".removesuffix(".__init__")
        assert not {m for m in deps.direct_imports(module) if m.startswith("recunlearn.stages")}, module


def test_every_step_has_jobs_and_job_names_are_what_the_cli_logs_under(plan):
    assert [s for s in STEPS if not plan.jobs(s)] == []
    parser = cli.build_parser()
    for stage in plan:
        args = parser.parse_args(stage.cmd[1:])
        assert cli._stage_name(args) == stage.name
        assert stage.rule_name.startswith(f"{stage.step}_")
    assert len({s.rule_name for s in plan}) == len(plan)


def test_layout_functions_are_their_templates(tiny):
    assert layout.unlearn_metrics(tiny, "tiny", "lightgcn", 0, "random-0.05", "gif") == layout.UNLEARN_METRICS.format(
        results="results/tiny", dataset="tiny", backbone="lightgcn", seed=0, request="random-0.05", method="gif"
    )
    assert (
        layout.pattern(layout.CHECKPOINT, tiny, kind="original")
        == "results/tiny/{dataset}/{backbone}/seed{seed}/original/model.pt"
    )
    assert layout.fields(layout.PREPARED_STATE) == ["results", "dataset", "backbone", "seed", "kind", "method"]


def test_wildcard_constraints_match_exactly_the_planned_values(plan):
    import re

    constraints = plan.wildcard_constraints()
    assert re.fullmatch(constraints["kind"], "retrain/random-0.05")
    assert not re.fullmatch(constraints["kind"], "retrain/random-0.5")
    assert not re.fullmatch(constraints["method"], "reference")
    assert re.fullmatch(constraints["seed"], "0") and not re.fullmatch(constraints["seed"], "1")


def test_compare_reads_every_score_file_and_writes_the_tables_notebooks_read(plan, tiny):
    compare = plan.job("compare", {"dataset": "tiny", "backbone": "lightgcn"})
    scores = {o for s in plan.jobs("unlearn") + plan.jobs("reference") for o in s.outs if o.endswith(".npz")}
    assert scores and scores <= set(compare.deps)
    assert {layout.comparison_long(tiny, "tiny", "lightgcn"), layout.score_summaries(tiny, "tiny", "lightgcn")} <= set(
        compare.outputs
    )
    assert set(report.notebook_inputs(tiny, "tiny")) <= set(compare.outputs)


def test_notebook_jobs_read_the_compare_outputs_their_source_and_the_report_helper(plan, tiny):
    for stage in plan.jobs("notebook"):
        name = stage.wildcards["notebook"]
        code = deps.closure("recunlearn.report", "recunlearn.stages.notebook")
        assert stage.deps == [*report.notebook_inputs(tiny, "tiny"), f"notebooks/{name}.py", *code]
        assert stage.outs == [f"results/tiny/notebooks/{name}_tiny.ipynb", f"results/tiny/notebooks/{name}_tiny.html"]
        assert stage.plots == [f"results/tiny/figures/{f}" for f in report.figure_names(name, "tiny")]


def test_set_overrides_change_the_plan_and_travel_in_every_command():
    cfg = load_config(ROOT / TINY_CONFIG, cli._overrides(["seeds=[0,1]", "methods=[none]", "requests.seed=7"]))
    assert cfg["requests"]["seed"] == 7 and cfg["requests"]["random_edges"]  # merged, not replaced
    plan = build_plan(cfg)
    assert {s.wildcards["seed"] for s in plan.jobs("train")} == {"0", "1"}
    assert {s.wildcards["method"] for s in plan.jobs("unlearn")} == {"none"}
    assert not plan.jobs("prepare")
    for stage in plan:
        assert "--set 'seeds=[0,1]' --set 'methods=[\"none\"]' --set 'requests={\"seed\":7}'" in command(stage)


def test_set_with_a_bad_value_is_one_line_naming_it(capsys):
    assert cli.main(["--config", str(ROOT / TINY_CONFIG), "--set", "seeds", "outputs"]) == 2
    assert (
        capsys.readouterr().err.strip() == "recunlearn: error: --set seeds: expected KEY=VALUE, e.g. --set seeds=[0,1]"
    )
    assert cli.main(["--config", str(ROOT / TINY_CONFIG), "--set", "seeds=[a", "outputs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recunlearn: error: --set seeds=[a: the value is not valid YAML")
    assert cli.main(["--config", str(ROOT / TINY_CONFIG), "--set", "seeds=zero", "outputs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seeds" in err[0]


def test_outputs_command_lists_the_overridden_grid(capsys):
    assert cli.main(["--config", str(ROOT / TINY_CONFIG), "--set", "seeds=[0,1]", "outputs"]) == 0
    out = capsys.readouterr().out.split()
    assert "results/tiny/tiny/lightgcn/seed1/original/model.pt" in out


def test_dvc_yaml_check_and_dvc_run_stages_refuse_a_stale_dvc_yaml(tmp_path, monkeypatch, capsys, tiny):
    """After `dvc exp run -S seeds=[0,1]` the config no longer matches dvc.yaml: one line says what to run, and
    the stage does no work."""
    target = tmp_path / "dvc.yaml"
    target.write_text(dvc.render_dvc_yaml(tiny))
    config = str(ROOT / TINY_CONFIG)
    assert cli.main(["--config", config, "dvc-yaml", "--check", "--output", str(target)]) == 0
    capsys.readouterr()
    expected = (
        f"recunlearn: error: {target} is stale for {config}: run `make dvc-yaml` "
        f"(recunlearn --config {config} --set 'seeds=[0,1]' dvc-yaml) and commit it"
    )
    assert cli.main(["--config", config, "--set", "seeds=[0,1]", "dvc-yaml", "--check", "--output", str(target)]) == 2
    assert capsys.readouterr().err.strip() == expected

    monkeypatch.setenv("DVC_STAGE", "compare_tiny_lightgcn")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # nothing may be written here
    assert (
        cli.main(["--config", config, "--set", "seeds=[0,1]", "compare", "--dataset", "tiny", "--backbone", "lightgcn"])
        == 2
    )
    assert capsys.readouterr().err.strip() == expected.replace(str(target), "dvc.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvc.yaml"]


def test_dvc_yaml_declares_only_params_the_config_file_spells_out(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(
        "results_dir: results/small\ndatasets: [tiny]\ncustom_datasets:\n  tiny:\n"
        "    path: tests/data/tiny.data\n    format: ml-100k\nmethods: [none]\n"
        "requests: {adversarial: {enabled: false}}\n"
    )
    import yaml

    stages = yaml.safe_load(dvc.render_dvc_yaml(load_config(config)))["stages"]
    guard = stages.pop(dvc.GUARD_STAGE)
    declared = {p for s in stages.values() for group in s.get("params", []) for p in group[str(config)]}
    assert declared == {"custom_datasets.tiny", "results_dir", "datasets", "methods", "requests"}
    # the guard tracks the whole file (null = every param) and runs the freshness check
    assert guard == {"cmd": f"recunlearn --config {config} dvc-yaml --check", "params": [{str(config): None}]}


def test_a_key_the_file_did_not_hold_makes_dvc_yaml_stale(tmp_path, capsys):
    """`dvc exp run -S +method_settings.gif.scale=2` adds a key no stage tracked yet: only the guard stage
    re-runs, and its check must fail so the run stops with the one line instead of silently computing nothing."""
    config = tmp_path / "small.yaml"
    base = (
        f"results_dir: {tmp_path}/results\ndatasets: [tiny]\ncustom_datasets:\n  tiny:\n"
        "    path: tests/data/tiny.data\n    format: ml-100k\nmethods: [none, gif]\n"
        "requests: {adversarial: {enabled: false}}\n"
    )
    config.write_text(base)
    target = tmp_path / "dvc.yaml"
    target.write_text(dvc.render_dvc_yaml(load_config(config)))
    config.write_text(base + "method_settings: {gif: {scale: 2.0}}\n")
    assert cli.main(["--config", str(config), "dvc-yaml", "--check", "--output", str(target)]) == 2
    assert "is stale for" in capsys.readouterr().err


def test_a_param_path_through_an_alias_whose_name_holds_a_dot_resolves():
    from recunlearn.pipeline.plan import lookup

    cfg = {"method_settings": {"unlearnrec": {"epochs": 5}, "unlearnrec_lu_0.1": {"lambda_u": 0.1, "base": "x"}}}
    assert lookup(cfg, "method_settings.unlearnrec_lu_0.1") == {"lambda_u": 0.1, "base": "x"}
    assert lookup(cfg, "method_settings.unlearnrec_lu_0.1.lambda_u") == 0.1
    assert lookup(cfg, "method_settings.unlearnrec.epochs") == 5
    with pytest.raises(KeyError):
        lookup(cfg, "method_settings.unlearnrec_lu_0.2")


def test_the_ablation_config_plans(tmp_path):
    """Its aliases carry dots (`unlearnrec_lu_0.1`): every job's params must still resolve."""
    cfg = load_config(ROOT / "config/ablation.yaml")
    plan = build_plan(cfg)
    for stage in plan:
        plan.param_values(stage.step, stage.wildcards)
    methods = {s.wildcards["method"] for s in plan.jobs("prepare")}
    assert {"unlearnrec_lu_0.1", "unlearnrec_no_withdraw", "unlearnrec_no_propagation"} <= methods


def test_the_ml1m_config_plans_the_grid_the_ml1m_issue_asks_for_and_moves_to_a_gpu_by_one_key():
    cfg = load_config(ROOT / "config/ml1m.yaml")
    assert cfg["datasets"] == ["ml-1m"] and cfg["backbone_settings"]["lightgcn"]["dim"] == 128
    assert cfg["backbone_settings"]["lightgcn"]["layers"] == 3 and cfg["requests"]["adversarial"]["ratio"] == 1.0
    plan = build_plan(cfg)
    requests = {s.wildcards["request"] for s in plan.jobs("reference")}
    assert requests == {"adversarial-1", "random-0.003", "users-random-0.05"}
    assert {"none", "unlearnrec", "gif", "ifru", "scif"} <= {s.wildcards["method"] for s in plan.jobs("unlearn")}
    on_cuda = build_plan(load_config(ROOT / "config/ml1m.yaml", {"device": "cuda"}))
    assert [s.wildcards for s in on_cuda] == [s.wildcards for s in plan]  # the same jobs, only the device moves
    assert on_cuda.resources("train")["gpu"] == 1 and plan.resources("train")["gpu"] == 0


DEVICE_STEPS = {"train", "adversarial", "prepare", "unlearn", "reference"}  # the steps that run on `device`


def test_every_step_has_scheduler_resources_and_only_device_steps_take_a_gpu_on_cuda():
    on_cpu = load_config(ROOT / TINY_CONFIG)
    on_cuda = load_config(ROOT / TINY_CONFIG, {"device": "cuda", "resources": {"train": {"mem_mb": 12345}}})
    assert set(on_cpu["resources"]) == set(STEPS)
    for step in STEPS:
        assert build_plan(on_cpu).resources(step)["gpu"] == 0, step
        wanted = build_plan(on_cuda).resources(step)
        assert wanted["gpu"] == (1 if step in DEVICE_STEPS else 0), step
        assert wanted["mem_mb"] == on_cuda["resources"][step]["mem_mb"] and wanted["runtime"] >= 1
    assert build_plan(on_cuda).resources("train")["mem_mb"] == 12345


def test_a_bad_resource_is_one_line_naming_it(capsys):
    assert cli.main(["--config", str(ROOT / TINY_CONFIG), "--set", "resources.train.mem_mb=0", "outputs"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "resources.train.mem_mb: 0 is less than the minimum of 1" in err, err
