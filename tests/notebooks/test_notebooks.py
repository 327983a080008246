"""The report notebooks, executed for real on the tiny pipeline's results: each writes its declared figures, an
error-free .ipynb and a self-contained .html; a failing notebook raises one line and leaves nothing behind."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from pipeline_helpers import project_copy, run
from recunlearn.config import load_config
from recunlearn.errors import RecUnlearnError
from recunlearn.stages.notebook import (NOTEBOOKS, execute_notebook, figure_names, notebook_main, notebook_parameters,
                                  notebook_stage_spec, order_models)

pytestmark = pytest.mark.pipeline
CONFIG = "config/tiny.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project copy with the tiny pipeline's results, built once for the module."""
    root = project_copy(tmp_path_factory.mktemp("nb"))
    run(["snakemake", "--cores", "2", "--configfile", CONFIG], root)
    return root


@pytest.fixture(scope="module")
def cfg(project, monkeypatch_module):
    monkeypatch_module.chdir(project)
    return load_config(CONFIG)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def executed(project, cfg):
    """Every notebook run through the CLI entry point, from a clean slate (the pipeline may have run them too)."""
    specs = {name: notebook_stage_spec(cfg, name, "tiny") for name in NOTEBOOKS}
    for spec in specs.values():
        for rel in spec["outs"] + spec["figures"]:
            (project / rel).unlink(missing_ok=True)
    for name in NOTEBOOKS:
        assert notebook_main(["--notebook", name, "--dataset", "tiny", "--config", CONFIG]) == 0, name
    return specs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_writes_its_declared_figures_as_png(project, executed, name):
    figures = executed[name]["figures"]
    assert [Path(f).name for f in figures] == figure_names(name, "tiny")
    for rel in figures:
        data = (project / rel).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, rel


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_notebook_has_no_errors_and_html_embeds_figures_and_tables(project, executed, name):
    ipynb, html = (project / rel for rel in executed[name]["outs"])
    nb = nbformat.read(ipynb, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "injected-parameters" in json.dumps([c.metadata for c in nb.cells])
    text = html.read_text()
    assert text.count("data:image/png;base64,") >= len(executed[name]["figures"])
    assert "<table" in text
    assert 'src="results/' not in text  # nothing linked: the file stands alone


def test_comparison_table_has_every_model_and_metric_and_says_one_seed(project, executed):
    text = (project / executed["comparison"]["outs"][1]).read_text()
    for needle in ("Recall@20", "NDCG@20", "MI-BF", "MI-NG", "Original", "Retrain", "UnlearnRec (IE only)",
                   "UnlearnRec (IE + fine-tune)", "No unlearning", "n/a (one seed)"):
        assert needle in text, needle


def test_stage_spec_lists_existing_inputs_and_the_sources(project, cfg):
    for name in NOTEBOOKS:
        spec = notebook_stage_spec(cfg, name, "tiny")
        assert f"notebooks/{name}.py" in spec["deps"] and "src/recunlearn/notebooks.py" in spec["deps"]
        missing = [d for d in spec["deps"] if not (project / d).is_file()]
        assert not missing, (name, missing)
        assert spec["outs"] == [f"results/tiny/notebooks/{name}_tiny.ipynb", f"results/tiny/notebooks/{name}_tiny.html"]
    assert any(d.endswith("scores.npz") for d in notebook_stage_spec(cfg, "forgetting", "tiny")["deps"])
    assert any(d.endswith("report.json") for d in notebook_stage_spec(cfg, "efficiency", "tiny")["deps"])


def test_failing_notebook_raises_one_line_and_leaves_nothing(project, cfg):
    out, figs = project / "failed" / "out", project / "failed" / "figures"
    figs.mkdir(parents=True)
    stale = figs / figure_names("comparison", "nope")[0]
    stale.write_bytes(b"old")  # a figure from an earlier run must not survive a failed one
    params = {**notebook_parameters(cfg, "tiny"), "dataset": "nope"}
    with pytest.raises(RecUnlearnError) as info:
        execute_notebook("comparison", out, figs, params, root=project)
    message = str(info.value)
    assert "\n" not in message and "comparison" in message and "FileNotFoundError" in message
    assert not out.exists() or not any(out.iterdir())
    assert not any(figs.iterdir())


def test_cli_entry_refuses_unknown_dataset(project, cfg, capsys):
    assert notebook_main(["--notebook", "comparison", "--dataset", "nope", "--config", CONFIG]) == 2
    assert "nope" in capsys.readouterr().err


def test_unknown_notebook_and_model_order():
    with pytest.raises(RecUnlearnError, match="unknown notebook"):
        figure_names("nope", "tiny")
    assert order_models(["unlearnrec/ie_ft", "retrain", "gif", "original", "unlearnrec/ie_only", "none"]) == [
        "original", "none", "retrain", "unlearnrec/ie_only", "unlearnrec/ie_ft", "gif"]
