"""The report notebooks as the session's tiny pipeline run executed them: each writes its declared figures, an
error-free .ipynb and a self-contained .html, and the numbers it records equal the compare stage's tables.
Run again in-process on a folder holding only the compare outputs, they record the same numbers (so they read
nothing else); a failing notebook raises one line and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from recunlearn import cli, report
from recunlearn.config import load_config
from recunlearn.errors import RecUnlearnError
from recunlearn.stages.notebook import execute_notebook

pytestmark = pytest.mark.pipeline
DATASET = "tiny"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _injected(nb) -> dict:
    """The parameters papermill injected into an executed notebook."""
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    values: dict = {}
    exec(cells[0].source, {}, values)  # the cell papermill wrote: plain assignments
    return values


@pytest.fixture(scope="module")
def project(tiny_run, monkeypatch_module):
    """The session's project copy, as the working directory (the config's relative paths start there)."""
    monkeypatch_module.chdir(tiny_run)
    return Path(tiny_run)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def cfg(project):
    """The config the pipeline ran, as its notebook jobs were given it."""
    nb = nbformat.read(project / "results/tiny/notebooks" / f"comparison_{DATASET}.ipynb", as_version=4)
    return load_config(_injected(nb)["config_file"])


@pytest.fixture(scope="module")
def notebooks(project, cfg) -> dict:
    """name -> (executed notebook, its .html, its figures), as the pipeline wrote them."""
    out = {}
    for name in report.NOTEBOOKS:
        stem = project / report.notebook_dir(cfg) / f"{name}_{DATASET}"
        out[name] = (
            nbformat.read(stem.with_suffix(".ipynb"), as_version=4),
            stem.with_suffix(".html"),
            [project / report.figure_dir(cfg) / f for f in report.figure_names(name, DATASET)],
        )
    return out


@pytest.fixture(scope="module")
def records(notebooks) -> dict:
    return {name: report.read_records(nb) for name, (nb, _, _) in notebooks.items()}


@pytest.fixture(scope="module")
def tables(project, cfg) -> dict:
    """backbone -> (comparison.csv, comparison_long.csv) of the run."""
    return {
        b: (
            pd.read_csv(project / cfg["results_dir"] / DATASET / b / "comparison.csv"),
            pd.read_csv(project / cfg["results_dir"] / DATASET / b / "comparison_long.csv"),
        )
        for b in cfg["backbones"]
    }


def test_notebook_jobs_get_the_pipelines_config_file_and_dataset(project, cfg, notebooks):
    for nb, _, _ in notebooks.values():
        assert _injected(nb) == {"config_file": cfg["_path"], "dataset": DATASET}
    assert (project / cfg["_path"]).is_file() and cfg["results_dir"] == "results/tiny"


@pytest.mark.parametrize("name", report.NOTEBOOKS)
def test_notebook_writes_its_declared_outputs(project, cfg, notebooks, capsys, name):
    _, html, figures = notebooks[name]
    assert cli.main(["--config", cfg["_path"], "outputs"]) == 0
    declared = set(capsys.readouterr().out.split())
    stem = f"{report.notebook_dir(cfg)}/{name}_{DATASET}"
    for path in [project / f"{stem}.ipynb", html, *figures]:
        assert str(path.relative_to(project)) in declared, path
    assert [f.name for f in figures] == report.figure_names(name, DATASET)
    for fig in figures:
        assert fig.read_bytes().startswith(PNG_MAGIC), fig


@pytest.mark.parametrize("name", report.NOTEBOOKS)
def test_executed_notebook_has_no_errors_and_html_embeds_figures_and_tables(notebooks, name):
    nb, html, figures = notebooks[name]
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= len(figures)
    text = html.read_text()
    assert text.count("data:image/png;base64,") >= len(figures)
    assert "<table" in text
    assert 'src="results/' not in text  # nothing linked: the file stands alone


def _k(cfg) -> int:
    """The cut-off the notebooks show: the largest of the run's `evaluation.ks`."""
    return max(cfg["evaluation"]["ks"])


def test_comparison_notebook_shows_the_tables_models_and_values(cfg, records, tables, notebooks):
    rec = records["comparison"]
    k = _k(cfg)
    metrics = [f"recall@{k}", f"ndcg@{k}", f"a_igf@{k}", "rank_ks", "mi_bf", "mi_ng"]
    assert rec["k"] == k and rec["metrics"] == metrics
    shown = {"reference", *report.main_methods(cfg["methods"])}
    for b, (table, _) in tables.items():
        models = [m for m in table["model"] if report.method_of(m) in shown]
        assert rec["models"] == report.order_models(models)
        for _, row in table.iterrows():
            for metric in metrics:
                assert rec["means"][b][row["request"]][row["model"]][metric] == pytest.approx(row[metric])
        retrain = table[table["model"] == "retrain"].set_index("request")[f"recall@{k}"]
        assert rec[f"retrain_recall@{k}"][b] == pytest.approx(retrain.to_dict())
        assert set(rec[f"retrain_recall@{k}"][b]) == set(table["request"])
        tested = [f"{m}_p" for m in metrics if f"{m}_p" in table.columns]
        assert tested == [f"recall@{k}_p", f"ndcg@{k}_p", "mi_bf_p", "mi_ng_p"]  # a_igf, rank_ks: no test
        marked = table[tested] < report.ALPHA
        assert len([r for r in rec["significant"] if r[0] == b]) == int(marked.to_numpy().sum())
    text = notebooks["comparison"][1].read_text()
    for needle in (
        f"Recall@{k}",
        f"NDCG@{k}",
        f"A-IGF@{k}",
        "forgetting error",
        "MI-BF",
        "MI-NG",
        "Original",
        "Retrain",
        "UnlearnRec (IE only)",
        "UnlearnRec (IE + fine-tune)",
        "No unlearning",
        "n/a (one seed)",
    ):
        assert needle in text, needle


def test_comparison_tradeoff_records_equal_the_table_for_every_request_and_row(cfg, records, tables):
    """The trade-off figure: per backbone and request, every shown row at x = Recall@k, y = the forgetting error
    (rank KS vs Retrain), size = seconds, exactly as comparison.csv has them; Retrain at y = 0."""
    rec = records["comparison"]
    k = _k(cfg)
    assert rec["tradeoff_axes"] == {"x": f"recall@{k}", "y": "rank_ks", "size": "seconds"}
    assert set(rec["tradeoff"]) == set(tables)
    for b, (table, _) in tables.items():
        requests = list(dict.fromkeys(table["request"]))
        assert set(rec["tradeoff"][b]) == set(requests)
        for request in requests:
            rows = table[table["request"] == request].set_index("model")
            points = rec["tradeoff"][b][request]
            assert set(points) == {m for m in rec["models"] if m in rows.index}  # a JSON object: no order
            assert {"original", "none", "retrain", "unlearnrec/ie_only", "unlearnrec/ie_ft", "sisa"} <= set(points)
            for model, point in points.items():
                row = rows.loc[model]
                assert point == pytest.approx(
                    {"x": row[f"recall@{k}"], "y": row["rank_ks"], "seconds": row["seconds"]}, rel=1e-12
                ), (request, model)
            assert points["retrain"]["y"] == 0.0
            assert all(p["y"] > 0 for m, p in points.items() if m in ("original", "none"))  # they forgot nothing
            assert all(p["seconds"] > 0 for p in points.values())


def test_comparison_tradeoff_figure_is_a_nontrivial_png(notebooks):
    import matplotlib.image

    _, _, figures = notebooks["comparison"]
    (tradeoff,) = [f for f in figures if f.name == f"comparison_tradeoff_{DATASET}.png"]
    data = tradeoff.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    assert width >= 600 and height >= 300
    pixels = matplotlib.image.imread(tradeoff)
    assert pixels.std() > 0.01  # not one flat colour


def test_efficiency_notebook_shows_the_tables_times_sizes_and_preparation(cfg, records, tables):
    rec = records["efficiency"]
    for b, (table, long) in tables.items():
        timed = table[table["model"] != "original"]
        assert rec["models"] == report.order_models(timed["model"])
        for _, row in timed.iterrows():
            assert rec["seconds"][b][row["request"]][row["model"]] == pytest.approx(row["seconds"])
        sized = report.random_requests(list(dict.fromkeys(table["request"])))
        assert sized and set(rec["request_edges"][b]) == set(sized)
        for request in sized:
            assert rec["request_edges"][b][request] == long[long["request"] == request]["request_edges"].mean()
        prepared = long[long["prep_seconds"] > 0]
        assert {r["method"] for r in rec["prep_seconds"]} == {"unlearnrec", "sisa"} == set(prepared["method"])
        for r in rec["prep_seconds"]:
            match = prepared[
                (prepared["method"] == r["method"])
                & (prepared["seed"] == r["seed"])
                & (prepared["unlearned_from"] == r["model kind"])
            ]
            assert r["seconds"] == pytest.approx(match["prep_seconds"].iloc[0])


def test_efficiency_notebook_quotes_speedups_next_to_the_forgetting_error(records, tables):
    rec = records["efficiency"]
    for b, (table, _) in tables.items():
        timed = table[~table["model"].isin(["original", "retrain", "none"])]
        assert {(r, m) for r, per in rec["speedup"][b].items() for m in per} == set(
            zip(timed["request"], timed["model"])
        )
        for _, row in timed.iterrows():
            quote = rec["speedup"][b][row["request"]][row["model"]]
            assert quote["speedup"] == pytest.approx(row["speedup"])
            assert quote["speedup"] == pytest.approx(row["retrain_seconds_to_best"] / row["seconds"], rel=1e-4)
            assert quote["speedup_vs_total"] == pytest.approx(row["retrain_seconds_total"] / row["seconds"])
            assert quote["speedup_vs_total"] >= quote["speedup"]  # Retrain's total includes the patience epochs
            assert quote["rank_ks"] == pytest.approx(row["rank_ks"])


def test_forgetting_notebook_shows_the_adversarial_request_of_the_first_seed(cfg, records, tables):
    rec = records["forgetting"]
    assert rec["request"] == "adversarial-0.5" and rec["seed"] == cfg["seeds"][0]
    for b, (_, long) in tables.items():
        rows = long[(long["request"] == rec["request"]) & (long["seed"] == rec["seed"])].set_index("model")
        assert rec["models"] == report.order_models(rows.index)
        assert rec["deleted_mean"][b] == pytest.approx(rows["deleted_mean"].to_dict())
        assert rec["deleted_mean"][b]["retrain"] < rec["deleted_mean"][b]["original"]  # Retrain forgot the noise


def test_forgetting_notebook_tabulates_the_error_against_retrain_of_every_request(cfg, records, tables):
    rec = records["forgetting"]["forgetting_error"]
    shown = {"reference", *report.main_methods(cfg["methods"])}
    for b, (table, _) in tables.items():
        rows = table[table["model"].map(report.method_of).isin(shown)]
        assert {(r, m) for r, per in rec[b].items() for m in per} == set(zip(rows["request"], rows["model"]))
        for _, row in rows.iterrows():
            got = rec[b][row["request"]][row["model"]]
            assert got == pytest.approx({c: row[c] for c in ("rank_ks", "rank_shift", "auc_error")})
        for request, per in rec[b].items():
            assert per["retrain"] == {"rank_ks": 0.0, "rank_shift": 0.0, "auc_error": 0.0}, request
            assert per["original"]["rank_ks"] > 0 and per["original"]["rank_shift"] > 0  # before unlearning: under


def test_ablation_notebook_shows_the_unlearnrec_rows(cfg, records, tables):
    rec = records["ablation"]
    assert rec["k"] == _k(cfg)
    assert rec["variants"] == report.ablation_methods(cfg["methods"]) == ["unlearnrec"]
    assert rec["models"] == ["unlearnrec/ie_only", "unlearnrec/ie_ft"]
    for b, (table, _) in tables.items():
        rows = table[table["model"].isin(rec["models"])]
        for metric in (f"recall@{_k(cfg)}", "mi_ng", "rank_ks"):
            for _, row in rows.iterrows():
                assert rec[metric][b][row["request"]][row["model"]] == pytest.approx(row[metric])


def _config_elsewhere(project: Path, cfg: dict, folder: Path) -> str:
    """The run's config file with its results in `folder`; the other relative paths still start at the project."""
    raw = yaml.safe_load((project / cfg["_path"]).read_text())
    raw["results_dir"] = str(folder)
    path = folder.parent / f"{folder.name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def test_notebooks_given_only_the_compare_outputs_record_the_same_numbers(project, cfg, records, tmp_path):
    alone = tmp_path / "alone"
    config = _config_elsewhere(project, cfg, alone)
    moved = load_config(config)
    for src, dst in zip(report.notebook_inputs(cfg, DATASET), report.notebook_inputs(moved, DATASET)):
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / src, dst)
    for name in report.NOTEBOOKS:
        assert cli.main(["--config", config, "notebook", "--dataset", DATASET, "--notebook", name]) == 0, name
        ipynb = Path(report.notebook_dir(moved)) / f"{name}_{DATASET}.ipynb"
        assert json.dumps(report.read_records(ipynb), sort_keys=True) == json.dumps(records[name], sort_keys=True)
    # the run's --set overrides (Snakemake's --config) reach the notebook: here one method fewer
    assert (
        cli.main(
            [
                "--config",
                config,
                "--set",
                "methods=[none,unlearnrec]",
                "notebook",
                "--dataset",
                DATASET,
                "--notebook",
                "comparison",
            ]
        )
        == 0
    )
    shown = report.read_records(Path(report.notebook_dir(moved)) / f"comparison_{DATASET}.ipynb")["models"]
    assert "sisa" in records["comparison"]["models"] and shown == [
        m for m in records["comparison"]["models"] if m != "sisa"
    ]


def test_failing_notebook_raises_one_line_and_leaves_nothing(project, cfg, tmp_path):
    empty = tmp_path / "empty"
    moved = load_config(_config_elsewhere(project, cfg, empty))
    figures = Path(report.figure_dir(moved))
    figures.mkdir(parents=True)
    stale = figures / report.figure_names("comparison", DATASET)[0]
    stale.write_bytes(b"old")  # a figure from an earlier run must not survive a failed one
    with pytest.raises(RecUnlearnError) as info:
        execute_notebook(moved, "comparison", DATASET, root=project)
    message = str(info.value)
    assert "\n" not in message and "comparison" in message and "FileNotFoundError" in message
    notebooks = Path(report.notebook_dir(moved))
    assert not notebooks.exists() or not any(notebooks.iterdir())
    assert not any(figures.iterdir())
