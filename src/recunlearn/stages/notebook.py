"""Run a report notebook (notebooks/<name>.py, a jupytext percent script) as a pipeline stage.

Papermill injects the notebook's two parameters, `config_file` (the path the CLI's `--config` named) and
`dataset`, and the kernel's environment carries the CLI's `--set` overrides; the notebook derives everything
else from that config through `recunlearn.report`, and reads only
the compare stage's outputs (`report.notebook_inputs`). The kernel is `python3` (this venv) and runs in the
project folder. The executed notebook is kept as .ipynb plus a self-contained .html, with the figures under
their declared names. A failing cell raises a one-line `RecUnlearnError` and leaves neither notebook, HTML nor
figures behind, like every other stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from pathlib import Path

from recunlearn.errors import RecUnlearnError
from recunlearn.io import atomic_path
from recunlearn.report import OVERRIDES_ENV, RECORD_MIME, check_notebook, figure_dir, figure_names, notebook_dir


def notebook_parameters(cfg: dict, dataset: str) -> dict:
    """The papermill parameters of a notebook stage: the config file the pipeline runs and the dataset."""
    if dataset not in cfg["datasets"]:
        raise RecUnlearnError(f"--dataset: '{dataset}' is not in the datasets of {cfg['_path']}")
    return {"config_file": str(cfg["_path"]), "dataset": dataset}


@contextlib.contextmanager
def _overrides_for_kernel(cfg: dict):
    """The run's `--set` overrides in the kernel's environment, where `report.open_run` applies them: the two
    notebook parameters name the config file, and the overrides must not be lost on the way."""
    previous = os.environ.get(OVERRIDES_ENV)
    os.environ[OVERRIDES_ENV] = json.dumps(cfg.get("_overrides") or {})
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(OVERRIDES_ENV, None)
        else:
            os.environ[OVERRIDES_ENV] = previous


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def execute_notebook(cfg: dict, name: str, dataset: str, root: str | Path | None = None) -> None:
    """Execute notebooks/<name>.py for `dataset` of the run `cfg` describes; write
    <notebook_dir>/<name>_<dataset>.{ipynb,html} and the notebook's figures.

    `root` is the project folder (default: the working directory, where the pipeline's relative paths start);
    the kernel runs there, so `cfg["_path"]` and the results folder may be relative to it.
    """
    import jupytext
    import nbformat
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbconvert import HTMLExporter

    check_notebook(name)
    params = notebook_parameters(cfg, dataset)
    root = Path(root) if root is not None else Path.cwd()
    stem = root / notebook_dir(cfg) / f"{name}_{dataset}"
    outputs = [
        stem.with_suffix(".ipynb"),
        stem.with_suffix(".html"),
        *(root / figure_dir(cfg) / f for f in figure_names(name, dataset)),
    ]
    figures = outputs[2:]
    source = root / "notebooks" / f"{name}.py"
    if not source.is_file():
        raise RecUnlearnError(f"{source}: notebook source not found")
    try:
        for path in outputs:  # an output of an earlier run must not pass for this run's
            path.unlink(missing_ok=True)
        try:
            with _overrides_for_kernel(cfg):
                nb = papermill.execute_notebook(
                    jupytext.read(source),
                    None,
                    parameters=params,
                    kernel_name="python3",
                    cwd=str(root),
                    log_output=False,
                    progress_bar=False,
                )
        except papermill.PapermillExecutionError as exc:
            raise RecUnlearnError(
                f"notebook {name} (dataset {dataset}): cell [{exc.exec_count}] failed: "
                f"{exc.ename}: {_one_line(exc.evalue)}"
            ) from None
        except NoSuchKernel as exc:
            raise RecUnlearnError(
                f"notebook {name}: {_one_line(exc)}; run `python -m ipykernel install "
                "--sys-prefix --name python3` in the venv"
            ) from None
        missing = [str(f) for f in figures if not f.is_file() or f.stat().st_size == 0]
        if missing:
            raise RecUnlearnError(
                f"notebook {name} (dataset {dataset}) did not write its figure(s) {', '.join(missing)}"
            )
    except BaseException:
        for path in figures:  # a failed run must not leave figures that look current
            path.unlink(missing_ok=True)
        raise
    with warnings.catch_warnings():  # recorded numbers have no HTML form, by design: they are for read_records
        warnings.filterwarnings("ignore", message=f".*{re.escape(RECORD_MIME)}.*not able to be represented")
        html, _ = HTMLExporter(embed_images=True).from_notebook_node(nb)  # rendered before anything is written
    with atomic_path(stem.with_suffix(".ipynb")) as tmp:
        nbformat.write(nb, str(tmp))
    with atomic_path(stem.with_suffix(".html")) as tmp:
        tmp.write_text(html, encoding="utf-8")
