"""The report helper the notebooks import, the notebooks' parameter cells and the notebook command's refusals,
without running a kernel: names and order of rows, the run a notebook opens, recorded numbers read back."""

from __future__ import annotations

import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from recunlearn import cli, report
from recunlearn.errors import RecUnlearnError
from recunlearn.stages.notebook import notebook_parameters

ROOT = Path(__file__).resolve().parents[2]


def test_labels_and_paper_order():
    assert report.label("unlearnrec/ie_ft") == "UnlearnRec (IE + fine-tune)"
    assert report.label("none") == "No unlearning (remaining graph)"
    assert report.label("unlearnrec_no_lu/ie_only") == "unlearnrec_no_lu (IE only)"
    assert report.order_models(["unlearnrec/ie_ft", "retrain", "gif", "original", "unlearnrec/ie_only", "none"]) == [
        "original",
        "none",
        "retrain",
        "unlearnrec/ie_only",
        "unlearnrec/ie_ft",
        "gif",
    ]


def test_method_filters_and_request_choices():
    methods = ["none", "unlearnrec", "unlearnrec_no_lu", "sisa"]
    assert report.main_methods(methods) == ["none", "unlearnrec", "sisa"]
    assert report.ablation_methods(methods) == ["unlearnrec", "unlearnrec_no_lu"]
    assert [report.method_of(m) for m in ("original", "retrain", "none", "unlearnrec_no_lu/ie_ft")] == [
        "reference",
        "reference",
        "none",
        "unlearnrec_no_lu",
    ]
    assert report.forgetting_request(["random-0.05", "adversarial-0.5"]) == "adversarial-0.5"
    assert report.forgetting_request(["users-core-0.1", "random-0.05"]) == "users-core-0.1"
    with pytest.raises(RecUnlearnError, match="at least one request"):
        report.forgetting_request([])
    assert report.random_requests(["random-0.1", "adversarial-1", "random-0.01"]) == ["random-0.01", "random-0.1"]


def test_unknown_notebook_is_refused():
    with pytest.raises(RecUnlearnError, match="unknown notebook 'nope'"):
        report.figure_names("nope", "tiny")
    assert report.figure_names("efficiency", "tiny") == ["efficiency_tiny.png", "efficiency_size_tiny.png"]
    assert report.figure_names("comparison", "tiny") == ["comparison_tiny.png", "comparison_tradeoff_tiny.png"]


@pytest.mark.parametrize("name", report.NOTEBOOKS)
def test_every_figure_name_holds_its_notebooks_name(name):
    """The notebook rules of workflow/rules/report.smk match `{notebook}` in every output, figures included: a
    figure named without its notebook (e.g. 'tradeoff_tiny.png') would stop Snakemake from parsing the workflow."""
    assert all(f.startswith(f"{name}_") for f in report.figure_names(name, "tiny"))


def test_recorded_values_read_back_from_a_notebook(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    import numpy as np

    report.record("recall", np.float64(0.25))
    report.record("table", {"a": (1, float("nan")), 2: float("inf")})
    assert all(raw for _, raw in shown)
    outputs = [nbformat.v4.new_output("display_data", data=obj) for obj, _ in shown]
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x", outputs=outputs), nbformat.v4.new_markdown_cell("text")]
    )
    nbformat.validate(nb)
    assert report.read_records(nb) == {"recall": 0.25, "table": {"a": [1, None], "2": "inf"}}


def test_parameters_cell_holds_only_the_config_file_and_dataset():
    for name in report.NOTEBOOKS:
        nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, name
        assert cells[0].source.splitlines() == ['config_file = "config/config.yaml"', 'dataset = "ml-100k"'], name
        imports = {
            m
            for c in nb.cells
            if c.cell_type == "code"
            for m in re.findall(r"^(?:from|import) (recunlearn[\w.]*)", c.source, re.M)
        }
        assert imports == {"recunlearn"} and "from recunlearn import report" in nb_text(nb), name


def nb_text(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


@pytest.fixture
def tiny_config(tmp_path):
    """config/tiny.yaml with its results in tmp_path, so refusals cannot touch the repository's results."""
    raw = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    raw["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_open_run_finds_the_project_from_a_subfolder_and_refuses_other_datasets(tiny_config, tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    run = report.open_run("tiny.yaml", "tiny")
    assert run.root == tmp_path and run.dataset == "tiny"
    assert run.backbones == ["lightgcn"] and run.seeds == [0] and "adversarial-0.5" in run.requests
    with pytest.raises(RecUnlearnError, match="'nope' is not in the datasets"):
        report.open_run("tiny.yaml", "nope")
    with pytest.raises(RecUnlearnError, match="missing.yaml: configuration file not found"):
        report.open_run("missing.yaml", "tiny")


def test_a_notebook_reads_only_the_compare_outputs(tiny_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = report.open_run("tiny.yaml", "tiny")
    with pytest.raises(RecUnlearnError, match="not a notebook input"):
        run._input(f"{run.cfg['results_dir']}/tiny/lightgcn/seed0/unlearn/random-0.05/none/metrics.json")
    inputs = report.notebook_inputs(run.cfg, "tiny")
    assert {Path(p).name for p in inputs} == {
        "comparison.csv",
        "comparison.md",
        "comparison.json",
        "comparison_long.csv",
        "scores.json",
    }


def test_notebook_stage_parameters_are_the_config_path_and_dataset(tiny_config):
    from recunlearn.config import load_config

    cfg = load_config(tiny_config)
    assert notebook_parameters(cfg, "tiny") == {"config_file": str(tiny_config), "dataset": "tiny"}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--dataset", "nope", "--notebook", "comparison"], "'nope'"),
        (["--dataset", "tiny", "--notebook", "nope"], "unknown notebook 'nope'"),
    ],
)
def test_notebook_command_refuses_unknown_dataset_or_notebook_in_one_line(tiny_config, tmp_path, capsys, argv, needle):
    assert cli.main(["--config", str(tiny_config), "notebook", *argv]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("recunlearn: error:")]
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "results" / "notebooks").exists() and not (tmp_path / "results" / "figures").exists()


def test_the_runs_overrides_reach_the_notebook_through_the_kernels_environment(tiny_config, tmp_path, monkeypatch):
    from recunlearn.config import load_config
    from recunlearn.stages.notebook import _overrides_for_kernel

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(report.OVERRIDES_ENV, raising=False)
    cfg = load_config(tiny_config, {"methods": ["none"], "seeds": [0, 1]})
    with _overrides_for_kernel(cfg):
        run = report.open_run("tiny.yaml", "tiny")
    assert run.methods == ["none"] and run.seeds == [0, 1]
    assert report.OVERRIDES_ENV not in os.environ
    assert report.open_run("tiny.yaml", "tiny").methods == load_config(tiny_config)["methods"]
