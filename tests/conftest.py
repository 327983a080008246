"""Suite-wide settings: one torch thread (tiny graphs run ~10x faster than with two contended threads), the
tests folder on sys.path for the shared pipeline helpers, and the session's one tiny Snakemake run and one
`dvc repro` of the same grid."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_DVC_STARTED: dict = {}  # the background `dvc repro` started next to the Snakemake run: root, process


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _wanted(session, fixture: str) -> bool:
    return any(fixture in getattr(item, "fixturenames", ()) for item in session.items)


@pytest.fixture(scope="session")
def tiny_run(request, tmp_path_factory) -> Path:
    """The project copy after `snakemake --cores 2 --configfile config/tiny_grid.yaml` finished: results in
    <copy>/results/tiny, executed notebooks in <copy>/results/tiny/notebooks. Shared by the pipeline and notebook
    tests, so the DAG runs once per session; tests that change it must put it back. When the session also
    needs `dvc_run`, its serial `dvc repro` runs meanwhile in another copy (the Snakemake DAG leaves a core idle
    for much of its run)."""
    from pipeline_helpers import GRID_CONFIG, env, project_copy, run

    if _wanted(request.session, "dvc_run") and not _DVC_STARTED:
        root = project_copy(tmp_path_factory.mktemp("dvc"))
        _DVC_STARTED.update(
            root=root,
            proc=subprocess.Popen(
                ["dvc", "repro", "-q"], cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ),
        )
    root = project_copy(tmp_path_factory.mktemp("tiny_run"))
    run(["snakemake", "--cores", "2", "--configfile", GRID_CONFIG], root)
    return root


@pytest.fixture(scope="session")
def dvc_run(tmp_path_factory) -> Path:
    """A second project copy after `dvc repro` of the same grid (started by `tiny_run` when both are used)."""
    from pipeline_helpers import project_copy, run

    if not _DVC_STARTED:
        root = project_copy(tmp_path_factory.mktemp("dvc"))
        run(["dvc", "repro", "-q"], root)
        return root
    output, _ = _DVC_STARTED["proc"].communicate()
    assert _DVC_STARTED["proc"].returncode == 0, f"dvc repro failed:\n{output[-3000:]}"
    return _DVC_STARTED["root"]
